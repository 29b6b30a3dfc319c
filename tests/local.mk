# tests: Check-based unit tests. Each module's fragment appends its test programs to
# ZL_UNIT_TESTS; they all link the library and the shared helpers in check_util.c.
if HAVE_CHECK
check_PROGRAMS += $(ZL_UNIT_TESTS)
TESTS += $(ZL_UNIT_TESTS)
noinst_LIBRARIES = tests/libzltest.a
tests_libzltest_a_SOURCES = tests/unit/check_util.c tests/unit/check_util.h
endif

# End-to-end tests of the zerolab command (shell scripts; $ZEROLAB points at the binary).
TEST_EXTENSIONS = .sh
SH_LOG_COMPILER = $(SHELL)
TESTS += tests/cli/check_cli.sh
EXTRA_DIST += tests/cli/check_cli.sh
