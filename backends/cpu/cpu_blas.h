/* Which OpenBLAS kernel runs sgemm, chosen by what the CPU can do.
 *
 * Debian's OpenBLAS is built with DYNAMIC_ARCH: it carries kernels for many x86-64 cores
 * and picks one when it loads, from the CPU's family and model numbers. A CPU newer than
 * the library's table (Debian 12 ships 0.3.21; an Emerald Rapids Xeon is one) falls back
 * to Prescott, its SSE3 kernel: 34 GFLOP/s at 2 threads where the SkylakeX kernel it
 * also ships runs about 300 (docs/benchmarks.md). A table of model numbers is what
 * failed, so zerolab decides by features instead: it ranks a kernel by the widest vector
 * ISA it needs (SSE 0, AVX 1, AVX2 + FMA 2, AVX-512 3) and the CPU by the widest it has;
 * when the library's kernel is below the CPU, it switches to the library's best kernel for
 * the CPU's level (SkylakeX, Haswell, Sandybridge), before any BLAS call. A kernel at the
 * CPU's level (a Zen core's, Cooperlake's) is kept: it was chosen for this CPU. The rule
 * is deterministic on purpose: every rank of a run, and every run on one machine, gets
 * the same kernel, so results do not depend on a timing race.
 *
 * OPENBLAS_CORETYPE, OpenBLAS's own setting, wins: when set, zerolab changes nothing.
 *
 * The switch uses two functions DYNAMIC_ARCH builds export (gotoblas_dynamic_quit and
 * gotoblas_dynamic_init: the library's own start-up, run again with the kernel named in
 * OPENBLAS_CORETYPE), found at run time; an OpenBLAS built for one CPU, or another BLAS,
 * lacks them and keeps its kernel, and the report says so. */
#ifndef ZL_BACKENDS_CPU_CPU_BLAS_H
#define ZL_BACKENDS_CPU_CPU_BLAS_H

#include <stdbool.h>
#include <stddef.h>

/* The vector ISA levels of x86-64 that decide the kernel. */
typedef enum zl_isa_level {
    ZL_ISA_SSE = 0,
    ZL_ISA_AVX = 1,
    ZL_ISA_AVX2 = 2,   /* AVX2 and FMA */
    ZL_ISA_AVX512 = 3, /* AVX-512 F, BW, VL and DQ (what SkylakeX's kernels use) */
} zl_isa_level;

/* "SSE", "AVX", "AVX2", "AVX-512" */
const char *zl_isa_name(zl_isa_level level);

/* The widest level this CPU and its OS support (CPUID and XCR0, through the compiler's
 * __builtin_cpu_supports). */
zl_isa_level zl_cpu_isa_level(void);

/* The level an OpenBLAS kernel needs, by the name openblas_get_corename() gives
 * ("Prescott", "Haswell", "SkylakeX", ...; unknown names: SSE). */
zl_isa_level zl_blas_kernel_level(const char *corename);

/* The decision, pure (tests inject every input): the library chose `chosen` on a CPU of
 * level `cpu`, and OPENBLAS_CORETYPE is `forced` (NULL: unset). Returns the kernel to
 * switch to, or NULL to keep `chosen`; *why says why, in a clause for the report. */
const char *zl_blas_better_kernel(const char *chosen, zl_isa_level cpu, const char *forced,
                                  const char **why);

/* Once per process, before the first BLAS call (the cpu backend's setup, core/device.c):
 * detect, decide, switch. Thread-safe and idempotent. */
void zl_cpu_blas_setup(void);

/* One line for banners: "OpenBLAS 0.3.21, kernel SkylakeX (...why...)", after the setup
 * (which it runs if nothing has yet). */
const char *zl_cpu_blas_report(void);

/* Switch OpenBLAS to kernel `corename` now (what setup does; tests use it to stand in for
 * a library that fell back). False, changing nothing, when the library cannot switch. */
bool zl__cpu_blas_switch(const char *corename);

/* The kernel OpenBLAS runs now ("SkylakeX"; "unknown" for a BLAS that cannot say). */
const char *zl_cpu_blas_kernel(void);

#endif
