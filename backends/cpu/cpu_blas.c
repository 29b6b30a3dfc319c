/* The OpenBLAS kernel, chosen by the CPU's features: see cpu_blas.h. */
#define _GNU_SOURCE /* RTLD_DEFAULT */
#include "backends/cpu/cpu_blas.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"

const char *zl_isa_name(zl_isa_level level)
{
    static const char *const names[] = {"SSE", "AVX", "AVX2", "AVX-512"};
    return level >= ZL_ISA_SSE && level <= ZL_ISA_AVX512 ? names[level] : "?";
}

zl_isa_level zl_cpu_isa_level(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        return ZL_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return ZL_ISA_AVX2;
    if (__builtin_cpu_supports("avx")) return ZL_ISA_AVX;
#endif
    return ZL_ISA_SSE;
}

/* OpenBLAS's x86-64 kernels (its corename strings) by the ISA their sgemm needs; every
 * other name (Prescott, Core2, Nehalem, Atom, Opteron, Barcelona, ...) is SSE. */
static const struct {
    const char *name;
    zl_isa_level level;
} kernels[] = {
    {"SkylakeX", ZL_ISA_AVX512},    {"Cooperlake", ZL_ISA_AVX512},
    {"SapphireRapids", ZL_ISA_AVX512},
    {"Haswell", ZL_ISA_AVX2},       {"Zen", ZL_ISA_AVX2},          {"Excavator", ZL_ISA_AVX2},
    {"Sandybridge", ZL_ISA_AVX},    {"Bulldozer", ZL_ISA_AVX},     {"Piledriver", ZL_ISA_AVX},
    {"Steamroller", ZL_ISA_AVX},
};

zl_isa_level zl_blas_kernel_level(const char *corename)
{
    for (size_t i = 0; corename && i < sizeof kernels / sizeof kernels[0]; i++)
        if (!strcasecmp(corename, kernels[i].name)) return kernels[i].level;
    return ZL_ISA_SSE;
}

/* The library's best kernel for a CPU of each level (measured: docs/benchmarks.md). */
static const char *const best_kernel[] = {NULL, "Sandybridge", "Haswell", "SkylakeX"};

const char *zl_blas_better_kernel(const char *chosen, zl_isa_level cpu, const char *forced,
                                  const char **why)
{
    if (forced && *forced) {
        *why = "OPENBLAS_CORETYPE asks for it";
        return NULL;
    }
    zl_isa_level lib = zl_blas_kernel_level(chosen);
    if (lib >= cpu) {
        *why = "the library's choice for this CPU";
        return NULL;
    }
    *why = "switched by zerolab: the library chose a kernel below this CPU's vector ISA";
    return best_kernel[cpu];
}

/* ---- the library ---------------------------------------------------------------------- */

typedef char *(*name_fn)(void);
typedef void (*void_fn)(void);

static struct {
    pthread_once_t once;
    char report[256];
} g = {PTHREAD_ONCE_INIT, ""};

const char *zl_cpu_blas_kernel(void)
{
    name_fn corename = (name_fn)(uintptr_t)dlsym(RTLD_DEFAULT, "openblas_get_corename");
    const char *name = corename ? corename() : NULL;
    return name && *name ? name : "unknown";
}

/* "OpenBLAS 0.3.21" from its build string ("OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH ..."). */
static void library_name(char *buf, size_t size, bool *dynamic)
{
    name_fn config = (name_fn)(uintptr_t)dlsym(RTLD_DEFAULT, "openblas_get_config");
    const char *c = config ? config() : NULL;
    *dynamic = c && strstr(c, "DYNAMIC_ARCH");
    if (!c) {
        snprintf(buf, size, "a BLAS other than OpenBLAS");
        return;
    }
    const char *sp = strchr(c, ' ');
    sp = sp ? strchr(sp + 1, ' ') : NULL;
    int n = sp ? (int)(sp - c) : (int)strlen(c);
    snprintf(buf, size, "%.*s", n, c);
}

bool zl__cpu_blas_switch(const char *corename)
{
    void_fn quit = (void_fn)(uintptr_t)dlsym(RTLD_DEFAULT, "gotoblas_dynamic_quit");
    void_fn init = (void_fn)(uintptr_t)dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init");
    if (!quit || !init) return false;
    /* The library's start-up, again: it reads the kernel from OPENBLAS_CORETYPE. The
     * variable is put back afterwards, so that nothing later (a child process, a report)
     * takes zerolab's choice for the user's. */
    const char *old = getenv("OPENBLAS_CORETYPE");
    char *saved = old ? strdup(old) : NULL;
    setenv("OPENBLAS_CORETYPE", corename, 1);
    quit();
    init();
    if (saved) setenv("OPENBLAS_CORETYPE", saved, 1);
    else unsetenv("OPENBLAS_CORETYPE");
    free(saved);
    return !strcasecmp(zl_cpu_blas_kernel(), corename);
}

static void setup_once(void)
{
    char lib[64];
    bool dynamic;
    library_name(lib, sizeof lib, &dynamic);
    zl_isa_level cpu = zl_cpu_isa_level();
    char chosen[32];
    snprintf(chosen, sizeof chosen, "%s", zl_cpu_blas_kernel());
    const char *why, *better = zl_blas_better_kernel(chosen, cpu, getenv("OPENBLAS_CORETYPE"), &why);
    if (better && !dynamic) {
        snprintf(g.report, sizeof g.report, "%s, kernel %s (%s; this CPU has %s, but the library "
                 "is built for one CPU and cannot switch)", lib, chosen,
                 zl_isa_name(zl_blas_kernel_level(chosen)), zl_isa_name(cpu));
        return;
    }
    if (better && zl__cpu_blas_switch(better)) {
        snprintf(g.report, sizeof g.report, "%s, kernel %s (%s): the library chose %s (%s) on a "
                 "CPU it does not know; this CPU has %s", lib, better, zl_isa_name(cpu), chosen,
                 zl_isa_name(zl_blas_kernel_level(chosen)), zl_isa_name(cpu));
        return;
    }
    if (better) { /* the switch failed: back to the library's own choice */
        zl__cpu_blas_switch(chosen);
        why = "the library could not switch to a better one";
    }
    snprintf(g.report, sizeof g.report, "%s, kernel %s (%s)", lib, zl_cpu_blas_kernel(), why);
}

void zl_cpu_blas_setup(void) { pthread_once(&g.once, setup_once); }

const char *zl_cpu_blas_report(void)
{
    zl_cpu_blas_setup(); /* what runs is what the setup leaves */
    return g.report;
}
