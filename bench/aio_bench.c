/* NVMe swap bandwidth: `make bench-aio`. Writes then reads 1 GiB through src/io (a swap
 * file, O_DIRECT where the filesystem allows it) with each backend built and DeepSpeed's
 * default aio settings (1 MiB blocks, 8 deep, 1 thread), and, when `fio` is installed,
 * runs fio's sequential write and read on the same directory with the same block size
 * and queue depth (libaio engine, as DeepSpeed's own aio benchmarks; --direct as our file
 * got), then prints each backend's bandwidth as a ratio of fio's. The target is
 * 70% of fio's. Figures on a shared or virtual disk are noisy: compare within one run.
 *
 * Environment:
 *   ZL_BENCH_AIO_DIR     directory to swap into (default /var/tmp); a fresh folder inside
 *                        is used and removed
 *   ZL_BENCH_AIO_NBYTES  bytes per pass (default 1073741824)
 *   ZL_BENCH_AIO_REPS    passes per measurement, the best is kept (default 2)
 *
 * The transfer goes through one 256 MiB buffer (a pool buffer, as the engine swaps): the
 * 1 GiB is queued as 256 MiB transfers at successive offsets, all in flight together,
 * then one wait. Reads land in the same buffer; their bytes are not used. Output lines:
 *   bench aio backend=liburing op=write nbytes=1073741824 gbps=1.234 direct=1
 *   bench aio backend=fio op=write ... gbps=...
 *   bench aio-ratio backend=liburing op=write ratio=0.97 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "io/aio.h"
#include "io/swap_file.h"
#include "io/swap_pool.h"
#include "fio_run.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static size_t env_size(const char *name, size_t dflt)
{
    const char *v = getenv(name);
    return v && *v ? (size_t)strtoull(v, NULL, 10) : dflt;
}

static void die(const char *what)
{
    fprintf(stderr, "aio_bench: %s: %s\n", what, zl_last_error());
    exit(1);
}

/* One pass: every chunk of the file queued, then one wait. Seconds. */
static double pass(zl_aio *aio, zl_swap_file *f, void *buf, size_t chunk, size_t nbytes,
                   bool write)
{
    double t0 = now();
    for (size_t off = 0; off < nbytes; off += chunk) {
        size_t n = nbytes - off < chunk ? nbytes - off : chunk;
        zl_status st = write ? zl_swap_file_write(f, aio, buf, n, off)
                             : zl_swap_file_read(f, aio, buf, n, off);
        if (st) die("queue");
    }
    if (zl_aio_wait(aio, NULL)) die(write ? "write" : "read");
    return now() - t0;
}

int main(void)
{
    const char *parent = getenv("ZL_BENCH_AIO_DIR");
    if (!parent || !*parent) parent = "/var/tmp";
    const size_t nbytes = zl_swap_padded(env_size("ZL_BENCH_AIO_NBYTES", (size_t)1 << 30));
    const int reps = (int)env_size("ZL_BENCH_AIO_REPS", 2);
    const size_t chunk = (size_t)256 << 20 < nbytes ? (size_t)256 << 20 : nbytes;

    char base[1024];
    snprintf(base, sizeof base, "zl-aio-bench-%d", (int)getpid());
    zl_swap_dir *dir;
    if (zl_swap_dir_open(&dir, parent, base)) die("swap folder");
    zl_swap_pool *pool;
    if (zl_swap_pool_create(&pool, 1, chunk, false)) die("buffer pool");
    void *buf = zl_swap_pool_acquire(pool);
    memset(buf, 0x5A, chunk);

    zl_aio_config cfg;
    zl_aio_config_default(&cfg);
    printf("aio bench: %zu bytes in %zu-byte transfers, block_size %zu, queue_depth %d, "
           "intra_op_parallelism %d, in %s\n",
           nbytes, chunk, cfg.block_size, cfg.queue_depth, cfg.intra_op_parallelism, parent);

    const zl_aio_backend backends[] = {ZL_AIO_LIBURING, ZL_AIO_LIBAIO, ZL_AIO_THREADS};
    double gbps[3][2] = {{0}};
    bool direct = false;
    for (int b = 0; b < 3; b++) {
        if (!zl_aio_backend_built(backends[b])) continue;
        zl_aio *aio;
        if (zl_aio_create(&aio, &cfg, backends[b])) {
            fprintf(stderr, "aio_bench: %s: %s\n", zl_aio_backend_str(backends[b]),
                    zl_last_error());
            continue;
        }
        zl_swap_file *f;
        if (zl_swap_file_create(&f, dir, "0.tensor.swp", nbytes)) die("swap file");
        direct = zl_swap_file_direct(f);
        for (int op = 0; op < 2; op++) {
            double best = 1e30;
            for (int r = 0; r < reps; r++) {
                double t = pass(aio, f, buf, chunk, nbytes, op == 0);
                if (t < best) best = t;
            }
            gbps[b][op] = (double)nbytes / best / 1e9;
            printf("bench aio backend=%s op=%s nbytes=%zu gbps=%.3f direct=%d\n",
                   zl_aio_backend_name(aio), op == 0 ? "write" : "read", nbytes, gbps[b][op],
                   direct);
            fflush(stdout);
        }
        zl_swap_file_close(f);
        zl_aio_destroy(aio);
    }

    char fio_file[1200];
    snprintf(fio_file, sizeof fio_file, "%s/fio.swp", zl_swap_dir_path(dir));
    double fio[2];
    for (int op = 0; op < 2; op++) {
        double best = -1;
        for (int r = 0; r < reps; r++) {
            double bw = zl_bench_fio(fio_file, op == 0 ? "write" : "read", nbytes,
                                     cfg.block_size, cfg.queue_depth, "libaio", direct, false);
            if (bw > best) best = bw;
        }
        fio[op] = best > 0 ? best / 1e9 : -1;
    }
    unlink(fio_file);
    if (fio[0] < 0) {
        printf("fio: not installed (apt-get install fio) or failed: no comparison\n");
    } else {
        for (int op = 0; op < 2; op++)
            printf("bench aio backend=fio op=%s nbytes=%zu gbps=%.3f direct=%d\n",
                   op == 0 ? "write" : "read", nbytes, fio[op], direct);
        printf("\n%-10s %12s %12s %10s %10s\n", "backend", "write GB/s", "read GB/s",
               "write/fio", "read/fio");
        printf("%-10s %12.3f %12.3f %10s %10s\n", "fio", fio[0], fio[1], "1.00", "1.00");
        for (int b = 0; b < 3; b++) {
            if (gbps[b][0] <= 0) continue;
            printf("%-10s %12.3f %12.3f %10.2f %10.2f\n", zl_aio_backend_str(backends[b]),
                   gbps[b][0], gbps[b][1], gbps[b][0] / fio[0], gbps[b][1] / fio[1]);
        }
        printf("target: >= 0.70 of fio's sequential bandwidth\n\n");
        for (int b = 0; b < 3; b++)
            for (int op = 0; op < 2 && gbps[b][0] > 0; op++)
                printf("bench aio-ratio backend=%s op=%s ratio=%.2f\n",
                       zl_aio_backend_str(backends[b]), op == 0 ? "write" : "read",
                       gbps[b][op] / fio[op]);
    }
    zl_swap_pool_release(pool, buf);
    zl_swap_pool_destroy(pool);
    zl_swap_dir_close(dir);
    return 0;
}
