#!/bin/sh
# ZeRO-Infinity's swap files of the optimizer state (offload_optimizer.device "nvme") under faults: a full disk, an
# unwritable folder, a file truncated mid-run, and a clean run (tests/cli/nvme_faults.sh).
ZL_SWAP=optimizer
. "${ZL_SRCDIR:-.}/tests/cli/nvme_faults.sh"
