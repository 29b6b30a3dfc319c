#!/bin/sh
# check_ops on the cpu backend: the GPU op test's harness, run on every build.
# ($ZEROLAB is the built binary, in the build directory's top: make check sets it.)
builddir=$(dirname "${ZEROLAB:-./zerolab}")
ZL_TEST_BACKEND=cpu exec "$builddir/tests/gpu/check_ops"
