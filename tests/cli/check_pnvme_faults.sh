#!/bin/sh
# ZeRO-Infinity's swap files of the parameters (offload_param.device "nvme") under faults: a full disk, an
# unwritable folder, a file truncated mid-run, and a clean run (tests/cli/nvme_faults.sh).
ZL_SWAP=param
. "${ZL_SRCDIR:-.}/tests/cli/nvme_faults.sh"
