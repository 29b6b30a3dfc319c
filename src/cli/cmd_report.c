/* zerolab report: DeepSpeed's ds_report for zerolab. What this build has ("built") and what
 * of it can run on this machine ("usable"), then the environment a bug report needs.
 *
 *   --------------------------------------------------
 *   zerolab feature report
 *   --------------------------------------------------
 *   feature ....................... built .. usable
 *   MPI ........................... [YES] ....... [OKAY]
 *   [WARNING] <feature>: why it is [NO]
 *   --------------------------------------------------
 *   zerolab general environment info:
 *   zerolab version ............... 0.1.0
 *   git revision .................. 1a2b3c4 (-dirty; "unknown" outside a git checkout)
 *
 * Everything read from /proc or /sys may be missing (a container, not Linux): it reads
 * "unknown", never an error. The report always exits 0. */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "zl_build.h"
#include "zl_revision.h" /* ZL_GIT_REVISION: generated at build time (src/cli/local.mk) */

#ifdef ZL_HAVE_MPI
#include <mpi.h>
#endif
#ifdef ZL_HAVE_CUDA
#include <cuda_runtime.h>
#include <nccl.h>

#include "backends/cuda/cuda_probe.h"
#endif

#include "backends/cpu/cpu.h"
#include "backends/cpu/cpu_blas.h"
#include "base/hostmem.h"
#include "cli/cli.h"
#include "io/aio.h"

#define RULE "--------------------------------------------------"
#define DOTS "......................................................................"
#define NAME_WIDTH 32 /* the longest name and a few dots */

/* "name ...... value", the dotted style of `zerolab config` (config_print.c). */
static void dotted(const char *name, const char *value)
{
    int dots = NAME_WIDTH - (int)strlen(name);
    printf("%s %.*s %s\n", name, dots > 0 ? dots : 0, DOTS, value);
}

typedef struct {
    const char *name;
    bool built, usable;
    char why[200]; /* for a [NO]: the reason */
} feature;

static void row(const feature *f, bool warnings)
{
    char cols[64];
    const char *b = f->built ? "[YES]" : "[NO]";
    /* the usable column starts at the same place whatever the built column's width */
    snprintf(cols, sizeof cols, "%s %.*s %s", b, 12 - (int)strlen(b), DOTS,
             f->usable ? "[OKAY]" : "[NO]");
    dotted(f->name, cols);
    if (warnings && (!f->built || !f->usable) && f->why[0])
        printf("[WARNING] %s: %s\n", f->name, f->why);
}

#if defined(__x86_64__) && defined(__GNUC__)
#define ZL_X86 1
#endif

static bool cpu_has(const char *what)
{
#ifdef ZL_X86
    __builtin_cpu_init();
    if (!strcmp(what, "avx512bf16")) return __builtin_cpu_supports("avx512bf16");
    if (!strcmp(what, "amx-bf16")) return __builtin_cpu_supports("amx-bf16");
#endif
    (void)what;
    return false;
}

/* Try the async I/O backends the build has: the kernel may refuse them (io_uring disabled
 * by sysctl or seccomp, aio-max-nr exhausted). Starting an engine is the only real test. */
static void aio_feature(feature *f)
{
    f->built = zl_aio_backend_built(ZL_AIO_LIBURING) || zl_aio_backend_built(ZL_AIO_LIBAIO);
    f->usable = false;
    if (!f->built) {
        snprintf(f->why, sizeof f->why,
                 "configure found neither liburing nor libaio; NVMe offload uses the "
                 "threads backend (install liburing-dev or libaio-dev and reconfigure)");
        return;
    }
    zl_aio_config cfg;
    zl_aio_config_default(&cfg);
    const zl_aio_backend backends[] = {ZL_AIO_LIBURING, ZL_AIO_LIBAIO};
    for (int i = 0; i < 2; i++) {
        if (!zl_aio_backend_built(backends[i])) continue;
        zl_aio *aio = NULL;
        if (zl_aio_create(&aio, &cfg, backends[i]) == ZL_OK) {
            zl_aio_destroy(aio);
            f->usable = true;
            return;
        }
        snprintf(f->why, sizeof f->why, "%s", zl_last_error());
        zl_error_clear();
    }
}

static void feature_report(bool warnings)
{
    feature fs[8];
    int n = 0;
    memset(fs, 0, sizeof fs);

    fs[n] = (feature){.name = "cpu backend (OpenBLAS)", .built = true, .usable = true};
    n++;

    feature *f = &fs[n++];
    f->name = "oneDNN bf16 GEMMs";
#ifdef ZL_HAVE_ONEDNN
    f->built = true;
#endif
    f->usable = f->built && zl__cpu_gemm_lp_onednn_usable();
    snprintf(f->why, sizeof f->why, "%s",
             !f->built ? "configure found no oneDNN: bf16 GEMMs widen to fp32 on OpenBLAS"
                       : "oneDNN's ISA lacks avx512_core_bf16 on this CPU: bf16 GEMMs widen "
                         "to fp32 on OpenBLAS");

    f = &fs[n++];
    f->name = "MPI";
#ifdef ZL_HAVE_MPI
    f->built = true;
#endif
    f->usable = f->built;
    snprintf(f->why, sizeof f->why, "configure found no MPI: runs have one rank only");

    f = &fs[n++];
    f->name = "async I/O (NVMe offload)";
    aio_feature(f);

    f = &fs[n++];
    f->name = "CUDA backend";
    int gpus = 0;
#ifdef ZL_HAVE_CUDA
    f->built = true;
    gpus = zl_cuda_device_count();
#endif
    f->usable = gpus > 0;
    snprintf(f->why, sizeof f->why, "%s",
             !f->built ? "configure found no CUDA toolkit (nvcc, cudart, cuBLAS, NCCL)"
                       : "no CUDA device visible (no driver, or CUDA_VISIBLE_DEVICES)");

    f = &fs[n++];
    f->name = "NCCL";
#if defined(HAVE_LIBNCCL) && defined(ZL_HAVE_CUDA)
    f->built = true;
#endif
    f->usable = f->built && gpus > 0;
    snprintf(f->why, sizeof f->why, "%s",
             !f->built ? "built without CUDA (NCCL comes with it)" : "no CUDA device visible");

    /* the vector paths are compiled in on x86-64 (target attributes) and chosen at run
     * time by what the CPU has (backends/cpu) */
    f = &fs[n++];
    f->name = "AVX-512 vector paths";
#ifdef ZL_X86
    f->built = true;
#endif
    f->usable = f->built && zl_cpu_isa_level() == ZL_ISA_AVX512;
    snprintf(f->why, sizeof f->why, !f->built ? "not an x86-64 build" : "this CPU's widest ISA is %s",
             zl_isa_name(zl_cpu_isa_level()));

    f = &fs[n++];
    f->name = "bf16 vector paths";
#ifdef ZL_X86
    f->built = true;
#endif
    f->usable = f->built && cpu_has("avx512bf16");
    snprintf(f->why, sizeof f->why, "%s",
             !f->built ? "not an x86-64 build" : "this CPU lacks AVX512-BF16");

    printf(RULE "\nzerolab feature report\n" RULE "\n");
    printf("NOTE: built means compiled into this zerolab (configure found it); usable means\n"
           "      it can run on this machine now.\n" RULE "\n");
    dotted("feature", "built ....... usable");
    printf(RULE "\n");
    for (int i = 0; i < n; i++) row(&fs[i], warnings);
}

/* The value after "key<spaces>:" in a /proc file's first matching line, into buf. */
static bool proc_field(const char *path, const char *key, char *buf, size_t size)
{
    FILE *fp = fopen(path, "r");
    if (!fp) return false;
    char line[512];
    bool found = false;
    size_t klen = strlen(key);
    while (!found && fgets(line, sizeof line, fp)) {
        if (strncmp(line, key, klen) != 0) continue;
        char *p = line + klen;
        while (*p == ' ' || *p == '\t') p++;
        if (*p != ':') continue;
        p++;
        while (*p == ' ' || *p == '\t') p++;
        p[strcspn(p, "\n")] = 0;
        snprintf(buf, size, "%s", p);
        found = true;
    }
    fclose(fp);
    return found;
}

static void gib(char *buf, size_t size, double bytes)
{
    snprintf(buf, size, "%.1f GiB", bytes / (1024.0 * 1024 * 1024));
}

static void environment_report(bool warnings)
{
    char v[512], w[256];
    printf(RULE "\nzerolab general environment info:\n");
    dotted("zerolab version", PACKAGE_VERSION);
    dotted("git revision", ZL_GIT_REVISION);
    ssize_t len = readlink("/proc/self/exe", v, sizeof v - 1);
    if (len > 0) v[len] = 0;
    dotted("zerolab install path", len > 0 ? v : "unknown");
#if defined(__clang__)
    dotted("compiler", "clang " __clang_version__);
#elif defined(__GNUC__)
    dotted("compiler", "gcc " __VERSION__);
#else
    dotted("compiler", "unknown");
#endif
    dotted("BLAS", zl_cpu_blas_report());
#ifdef _OPENMP
    snprintf(v, sizeof v, "_OPENMP %d, max threads %d", (int)_OPENMP, omp_get_max_threads());
    dotted("OpenMP", v);
#else
    dotted("OpenMP", "not built");
#endif
#ifdef ZL_HAVE_MPI
    {
        /* allowed before MPI_Init (MPI 3.0): the report never starts MPI */
        char lib[MPI_MAX_LIBRARY_VERSION_STRING];
        int n = 0;
        if (MPI_Get_library_version(lib, &n) == MPI_SUCCESS) {
            lib[n < (int)sizeof lib ? n : (int)sizeof lib - 1] = 0;
            lib[strcspn(lib, "\n")] = 0; /* some libraries add many lines of build info */
            for (char *p = lib; *p; p++)
                if (*p == '\t') *p = ' ';
            dotted("MPI library", lib);
        } else {
            dotted("MPI library", "unknown");
        }
    }
#else
    dotted("MPI library", "not built");
#endif
#ifdef ZL_HAVE_CUDA
    snprintf(v, sizeof v, "%d.%d (CUDART_VERSION %d)", CUDART_VERSION / 1000,
             CUDART_VERSION % 1000 / 10, CUDART_VERSION);
    dotted("CUDA (compiled with)", v);
    snprintf(v, sizeof v, "%d.%d.%d", NCCL_MAJOR, NCCL_MINOR, NCCL_PATCH);
    dotted("NCCL (compiled with)", v);
#else
    dotted("CUDA (compiled with)", "not built");
    dotted("NCCL (compiled with)", "not built");
#endif
    dotted("CPU", proc_field("/proc/cpuinfo", "model name", v, sizeof v) ? v : "unknown");
    /* AMX as the CPU reports it: a process must still ask the kernel for its tiles
     * (arch_prctl), which oneDNN does for itself; zerolab's own kernels do not use it. */
    snprintf(v, sizeof v, "AVX-512 %s, AVX512-BF16 %s, AMX-BF16 in the CPU %s (widest ISA %s)",
             zl_cpu_isa_level() == ZL_ISA_AVX512 ? "yes" : "no",
             cpu_has("avx512bf16") ? "yes" : "no", cpu_has("amx-bf16") ? "yes" : "no",
             zl_isa_name(zl_cpu_isa_level()));
    dotted("CPU features", v);
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;
    int mine = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : -1;
    if (online > 0 && mine > 0)
        snprintf(v, sizeof v, "%ld online, %d for this process", online, mine);
    else if (online > 0)
        snprintf(v, sizeof v, "%ld online", online);
    else
        snprintf(v, sizeof v, "unknown");
    dotted("cores", v);
    if (proc_field("/proc/meminfo", "MemTotal", w, sizeof w))
        gib(v, sizeof v, strtod(w, NULL) * 1024.0); /* "N kB" */
    else
        snprintf(v, sizeof v, "unknown");
    dotted("memory total", v);
    zl_hostmem hm;
    if (zl_hostmem_available(&hm) == ZL_OK) {
        gib(w, sizeof w, (double)hm.available_nbytes);
        snprintf(v, sizeof v, "%s (%s)", w, hm.source);
    } else {
        zl_error_clear();
        snprintf(v, sizeof v, "unknown");
    }
    dotted("memory available", v);
    struct statvfs sv;
    double shm = -1;
    if (statvfs("/dev/shm", &sv) == 0) shm = (double)sv.f_blocks * (double)sv.f_frsize;
    if (shm >= 0) {
        snprintf(v, sizeof v, "%.2f MB", shm / (1024.0 * 1024));
    } else {
        snprintf(v, sizeof v, "unknown");
    }
    dotted("shared memory (/dev/shm) size", v);
    /* DeepSpeed's warning: too small a /dev/shm fails dataloaders and NCCL in containers */
    if (warnings && shm >= 0 && shm < 512.0 * 1024 * 1024)
        printf("[WARNING] /dev/shm size might be too small, if running in docker increase "
               "to at least --shm-size='1gb'\n");
#ifdef ZL_HAVE_CUDA
    snprintf(v, sizeof v, "%d", zl_cuda_device_count());
    dotted("GPUs visible", v);
#else
    dotted("GPUs visible", "0 (built without CUDA)");
#endif
}

static void report_usage(FILE *out)
{
    fprintf(out, "usage: zerolab report [--hide_operator_status] [--hide_errors_and_warnings]\n"
                 "\n"
                 "What this build has and can use here, and the environment (DeepSpeed's\n"
                 "ds_report):\n"
                 "  --hide_operator_status      leave out the feature table\n"
                 "  --hide_errors_and_warnings  leave out the [WARNING] lines\n");
}

int zl_cmd_report(int argc, char **argv)
{
    bool features = true, warnings = true;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--hide_operator_status")) {
            features = false;
        } else if (!strcmp(argv[i], "--hide_errors_and_warnings")) {
            warnings = false;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            report_usage(stdout);
            return ZL_EXIT_OK;
        } else {
            fprintf(stderr, "zerolab report: unknown option '%s'\n  hint: see zerolab report --help\n",
                    argv[i]);
            return ZL_EXIT_USAGE;
        }
    }
    if (features) feature_report(warnings);
    environment_report(warnings);
    return ZL_EXIT_OK;
}
