#!/bin/sh
# check_ops on the cuda backend: exit 77 (skip) without a CUDA build or a device.
builddir=$(dirname "${ZEROLAB:-./zerolab}")
ZL_TEST_BACKEND=cuda exec "$builddir/tests/gpu/check_ops"
