/* Checkpoint save and load bandwidth against fio on the same directory: `make bench-ckpt`.
 *
 * Builds gpt2-124m in fp32 at ZeRO stage 0 on one rank (the biggest single-rank state:
 * parameters, fp32 master = parameters, Adam's two moments: about 2 GB of files; the run
 * needs about 2.5 GB of memory at micro-batch 1 and 64 tokens), takes one training step so
 * that the moments hold values, then times zl_run_save and zl_run_load (best of
 * ZL_BENCH_CKPT_REPS) and fio's sequential write and read of the same number of bytes on
 * the same directory, buffered as the save writes: write() then fsync (fio --end_fsync=1,
 * psync, 1 MiB blocks). When the page cache can be dropped (root:
 * /proc/sys/vm/drop_caches) it is dropped before every read, ours and fio's, so that both
 * read from the disk; otherwise both read from the page cache, and the output says so.
 * The target: save and load at >= 0.70 of fio's write and read. Figures on a
 * shared or virtual disk are noisy: compare within one run.
 *
 * Environment:
 *   ZL_BENCH_CKPT_DIR    directory to save into (default /var/tmp); a fresh folder inside
 *                        is used and removed
 *   ZL_BENCH_CKPT_MODEL  model preset (default gpt2-124m)
 *   ZL_BENCH_CKPT_REPS   timings per measurement, the best is kept (default 2)
 *   ZL_BENCH_CKPT_STEPS  training steps before the save (default 1)
 *
 * Output lines:
 *   bench ckpt op=save nbytes=1990000000 seconds=1.23 gbps=1.618 cold=1
 *   bench ckpt op=load-warm ... (once more, from the page cache: the CPU's part)
 *   bench ckpt op=fio-write ... gbps=...
 *   bench ckpt-ratio op=save ratio=0.93 */
#define _DEFAULT_SOURCE /* sync */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fio_run.h"
#include "run/run.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

static void die(const char *what)
{
    fprintf(stderr, "ckpt_bench: %s: %s\n", what, zl_last_error());
    exit(1);
}

/* The bytes of the files in dir (one level), and remove them and dir if `remove`. */
static size_t dir_bytes(const char *dir, bool remove)
{
    size_t total = 0;
    DIR *d = opendir(dir);
    if (!d) return 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[4096];
        struct stat sb;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode)) total += (size_t)sb.st_size;
        if (remove) unlink(p);
    }
    closedir(d);
    if (remove) rmdir(dir);
    return total;
}

int main(void)
{
    const char *parent = env_or("ZL_BENCH_CKPT_DIR", "/var/tmp");
    const char *model = env_or("ZL_BENCH_CKPT_MODEL", "gpt2-124m");
    int reps = atoi(env_or("ZL_BENCH_CKPT_REPS", "2"));
    long steps = atol(env_or("ZL_BENCH_CKPT_STEPS", "1"));
    if (reps < 1) reps = 1;

    char dir[2048], tag_dir[2100], fio_file[2100];
    snprintf(dir, sizeof dir, "%s/zl-ckpt-bench-%d", parent, (int)getpid());
    snprintf(tag_dir, sizeof tag_dir, "%s/bench", dir);
    snprintf(fio_file, sizeof fio_file, "%s/fio.dat", dir);
    if (mkdir(dir, 0755) != 0) {
        perror(dir);
        return 1;
    }

    zl_run_options o;
    zl_run_options_init(&o);
    o.config_text = "{\"train_micro_batch_size_per_gpu\": 1, \"zero_optimization\": {\"stage\": 0},"
                    " \"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": 1e-4}}}";
    o.config_name = "<bench-ckpt>";
    o.model = model;
    o.seq_len = 64;
    o.steps = steps;
    zl_run run;
    double t0 = now();
    if (zl_run_init(&run, &o) != ZL_OK) die("run");
    float loss;
    for (long s = 0; s < steps; s++)
        if (zl_run_step(&run, &loss) != ZL_OK) die("step");
    printf("ckpt_bench: %s fp32, ZeRO stage 0, one rank: %zu parameters, set up and %ld step(s) "
           "in %.1f s\n", model, zl_engine_model(run.engine)->params_numel, steps, now() - t0);

    /* Saves: each into a fresh tag directory (the one before is removed outside the
     * timing, so that no save pays for deleting an older one). */
    size_t nbytes = 0;
    double save_s = 1e30, load_s = 1e30;
    for (int r = 0; r < reps; r++) {
        dir_bytes(tag_dir, true);
        sync();
        double t = now();
        if (zl_run_save(&run, dir, "bench") != ZL_OK) die("save");
        t = now() - t;
        if (t < save_s) save_s = t;
        nbytes = dir_bytes(tag_dir, false);
        printf("  save %d: %.3f s\n", r + 1, t);
    }
    bool cold = true;
    for (int r = 0; r < reps; r++) {
        cold = zl_bench_drop_caches() && cold;
        double t = now();
        if (zl_run_load(&run, dir, "bench", NULL) != ZL_OK) die("load");
        t = now() - t;
        if (t < load_s) load_s = t;
        printf("  load %d: %.3f s\n", r + 1, t);
    }
    /* Once more from the page cache: what the load costs the CPU (hashing, copying, page
     * faults), apart from the disk. */
    double warm_s = now();
    if (zl_run_load(&run, dir, "bench", NULL) != ZL_OK) die("load");
    warm_s = now() - warm_s;
    printf("  load from the page cache: %.3f s\n", warm_s);
    zl_run_free(&run);
    dir_bytes(tag_dir, true);

    /* fio: the same bytes, written as a save writes them (buffered, then fsync), read back
     * as a load reads them (buffered, sequential). */
    double fio[2] = {-1, -1};
    for (int op = 0; op < 2; op++) {
        for (int r = 0; r < reps; r++) {
            if (op == 1) cold = zl_bench_drop_caches() && cold;
            else sync();
            double bw = zl_bench_fio(fio_file, op == 0 ? "write" : "read", nbytes, (size_t)1 << 20,
                                     1, "psync", false, op == 0);
            if (bw > fio[op]) fio[op] = bw;
        }
    }
    unlink(fio_file);
    char latest[2100];
    snprintf(latest, sizeof latest, "%s/latest", dir);
    unlink(latest);
    rmdir(dir);

    double gb_save = (double)nbytes / save_s / 1e9, gb_load = (double)nbytes / load_s / 1e9;
    printf("bench ckpt op=save nbytes=%zu seconds=%.3f gbps=%.3f\n", nbytes, save_s, gb_save);
    printf("bench ckpt op=load nbytes=%zu seconds=%.3f gbps=%.3f cold=%d\n", nbytes, load_s,
           gb_load, cold);
    printf("bench ckpt op=load-warm nbytes=%zu seconds=%.3f gbps=%.3f\n", nbytes, warm_s,
           (double)nbytes / warm_s / 1e9);
    printf("reads: %s\n", cold ? "the page cache was dropped before each read (ours and fio's)"
                                : "from the page cache (it cannot be dropped here: not root)");
    if (fio[0] < 0 || fio[1] < 0) {
        printf("fio: not installed (apt-get install fio) or failed: no comparison\n");
        return 0;
    }
    printf("bench ckpt op=fio-write nbytes=%zu gbps=%.3f\n", nbytes, fio[0] / 1e9);
    printf("bench ckpt op=fio-read nbytes=%zu gbps=%.3f cold=%d\n", nbytes, fio[1] / 1e9, cold);
    printf("\n%-6s %10s %10s %8s\n", "", "GB/s", "fio GB/s", "ratio");
    printf("%-6s %10.3f %10.3f %8.2f\n", "save", gb_save, fio[0] / 1e9, gb_save / (fio[0] / 1e9));
    printf("%-6s %10.3f %10.3f %8.2f\n", "load", gb_load, fio[1] / 1e9, gb_load / (fio[1] / 1e9));
    printf("target: >= 0.70 of fio's sequential bandwidth\n");
    printf("bench ckpt-ratio op=save ratio=%.3f\n", gb_save / (fio[0] / 1e9));
    printf("bench ckpt-ratio op=load ratio=%.3f\n", gb_load / (fio[1] / 1e9));
    return 0;
}
