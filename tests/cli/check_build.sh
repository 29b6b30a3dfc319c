#!/bin/sh
# What the build hands to other programs: zerolab.pc must link a static libzerolab.a as
# built (MPICH when the MPI communicator is in it; the CUDA libraries and their rpath only
# in a CUDA build), and a build without CUDA carries no path into a CUDA toolkit.
# Runs in the build directory (make check); $ZL_SRCDIR is the source tree.
set -u
srcdir=${ZL_SRCDIR:-.}
failures=0 checks=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

[ -f zerolab.pc ] && [ -f zl_build.h ] && [ -f libzerolab.a ] || { echo "run from the build directory"; exit 99; }
have() { grep -q "^#define $1 1" zl_build.h; }

# --- zerolab.pc's static link list --------------------------------------------------
checks=$((checks + 1))
req=$(sed -n 's/^Requires.private:[[:space:]]*//p' zerolab.pc)
if have ZL_HAVE_MPI; then
    case " $req " in *" mpich "*) ok "Requires.private has mpich ($req)" ;;
                     *) fail "MPI build, but zerolab.pc's Requires.private lacks mpich: '$req'" ;; esac
else
    case " $req " in *mpich*) fail "build without MPI, but zerolab.pc requires mpich: '$req'" ;;
                     *) ok "no MPI, no mpich in zerolab.pc" ;; esac
fi

checks=$((checks + 1))
if have ZL_HAVE_CUDA; then
    ok "CUDA build (rpath into the toolkit expected)"
elif grep -qi cuda zerolab.pc; then
    fail "build without CUDA, but zerolab.pc names it: $(grep -i cuda zerolab.pc)"
elif command -v readelf >/dev/null && readelf -d zerolab | grep -Ei 'rpath|runpath' | grep -qi cuda; then
    fail "build without CUDA, but ./zerolab carries $(readelf -d zerolab | grep -Ei 'rpath|runpath')"
else
    ok "no CUDA flags in a build without CUDA"
fi

# --- the documented link, against the build tree -------------------------------------
# `cc prog.c $(pkg-config --cflags zerolab) $(pkg-config --libs --static zerolab)`, with the
# .pc's directories pointed at this tree instead of the install prefix.
checks=$((checks + 1))
if command -v pkg-config >/dev/null; then
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/zl_build.XXXXXX") || exit 99
    trap 'rm -rf "$tmp"' EXIT INT TERM
    libs=$(PKG_CONFIG_PATH=.${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH} \
           pkg-config --define-variable=libdir="$PWD" --libs --static zerolab 2>"$tmp/pc.err")
    if [ $? -ne 0 ]; then
        fail "pkg-config --libs --static zerolab: $(cat "$tmp/pc.err")"
    # The build's own compiler and flags (a sanitizer build's library needs its runtime).
    elif ${ZL_CC:-cc} ${ZL_CFLAGS:-} -std=c11 -I"$srcdir/src" -I"$srcdir" -I. "$srcdir/docs/examples/train_minimal.c" \
            -o "$tmp/example" ${ZL_LDFLAGS:-} $libs >"$tmp/cc.out" 2>&1; then
        ok "docs/examples/train_minimal.c links with pkg-config --libs --static"
    else
        fail "the documented static link failed:"; head -n 20 "$tmp/cc.out"
    fi
else
    ok "pkg-config missing: link check skipped"
fi

# --- the GPU code compiles with warnings as errors (CI has the toolkit, no GPU) -------------
# nvcc's flags carry -Werror unless the user replaced them; the C files of the CUDA backend
# and the NCCL communicator (and the discrete backend that stands in for a GPU's memory
# rules) are compiled again here with -Werror.
if have ZL_HAVE_CUDA; then
    checks=$((checks + 1))
    case " ${ZL_NVCCFLAGS:-} " in
    *" -Werror "*) ok "nvcc compiles the .cu files with -Werror ($ZL_NVCCFLAGS)" ;;
    *) ok "NVCCFLAGS were given without -Werror: the .cu files' warnings are not errors in this build" ;;
    esac
    for f in backends/cuda/cuda_alloc.c src/comm/comm_nccl.c backends/discrete/discrete.c; do
        checks=$((checks + 1))
        if ${ZL_CC:-cc} -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Wno-unused-parameter \
               -Wno-sign-compare -Werror -fsyntax-only \
               -I"$srcdir/src" -I"$srcdir" -I. ${ZL_CUDA_CPPFLAGS:-} "$srcdir/$f" >"${TMPDIR:-/tmp}/zl_werror.$$" 2>&1; then
            ok "$f compiles with the build's warnings as errors"
        else
            fail "$f has warnings (-Werror):"; head -n 20 "${TMPDIR:-/tmp}/zl_werror.$$"
        fi
        rm -f "${TMPDIR:-/tmp}/zl_werror.$$"
    done
fi

echo "$((checks - failures)) of $checks build checks passed"
[ "$failures" -eq 0 ]
