/* src/io: the asynchronous I/O engine (each backend built), swap folders and files
 * (O_DIRECT and its tmpfs fallback, DeepSpeed's layout), the buffer pool, and the faults
 * ZeRO-Infinity must report instead of computing with wrong numbers: a missing or
 * unwritable nvme_path, a full disk, a swap file truncated behind the layer's back.
 *
 * Real-disk cases use $ZL_TEST_AIO_DIR or /var/tmp; tmpfs cases /dev/shm. A full or
 * read-only filesystem is made with a private mount namespace (unshare + mount), which
 * needs root with CAP_SYS_ADMIN: where that is refused (most CI containers) the case says
 * why and is skipped; everything else still runs. */
#define _GNU_SOURCE /* O_DIRECT, unshare, CLONE_NEWNS */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_util.h"
#include "io/aio.h"
#include "io/swap_file.h"
#include "io/swap_layout.h"
#include "io/swap_pool.h"

static const zl_aio_backend BACKENDS[] = {ZL_AIO_LIBURING, ZL_AIO_LIBAIO, ZL_AIO_THREADS};
#define NBACKENDS (sizeof BACKENDS / sizeof *BACKENDS)

/* ---------------------------------------------------------------- helpers */

static void fill_random(unsigned char *p, size_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        p[i] = (unsigned char)(x >> 24);
    }
}

static void *aligned(size_t n)
{
    void *p = aligned_alloc(4096, zl_swap_padded(n ? n : 1));
    ck_assert_ptr_nonnull(p);
    return p;
}

/* A fresh empty directory under `parent` (removed by rm_tree). */
static char *make_temp_dir(const char *parent)
{
    static char path[4][512];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, sizeof path[0], "%s/zl-aio-XXXXXX", parent);
    ck_assert_msg(mkdtemp(p) != NULL, "mkdtemp %s: %s", p, strerror(errno));
    return p;
}

static void rm_tree(const char *path)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", path);
}

static const char *disk_parent(void)
{
    const char *d = getenv("ZL_TEST_AIO_DIR");
    return d && *d ? d : "/var/tmp";
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Does the filesystem of `dir` accept O_DIRECT? Asked independently of the layer. */
static bool probe_direct(const char *dir)
{
    char p[600];
    snprintf(p, sizeof p, "%s/probe-direct", dir);
    int fd = open(p, O_RDWR | O_CREAT | O_DIRECT, 0600);
    if (fd >= 0) close(fd);
    unlink(p);
    return fd >= 0;
}

static zl_aio *engine(zl_aio_backend b, size_t block_size, int qd, int intra, bool single,
                      bool overlap)
{
    zl_aio_config cfg;
    zl_aio_config_default(&cfg);
    cfg.block_size = block_size;
    cfg.queue_depth = qd;
    cfg.intra_op_parallelism = intra;
    cfg.single_submit = single;
    cfg.overlap_events = overlap;
    zl_aio *aio = NULL;
    zl_status st = zl_aio_create(&aio, &cfg, b);
    ck_assert_msg(st == ZL_OK, "aio %s: %s", zl_aio_backend_str(b), zl_last_error());
    ck_assert_str_eq(zl_aio_backend_name(aio), zl_aio_backend_str(b));
    return aio;
}

/* Write nbytes of random data through the layer, check the file's bytes with plain
 * pread (the oracle), read them back through the layer into a garbage-filled buffer. */
static void round_trip(zl_aio *aio, const zl_swap_dir *dir, size_t nbytes, uint64_t seed)
{
    size_t padded = zl_swap_padded(nbytes);
    unsigned char *src = aligned(padded), *dst = aligned(padded), *raw = malloc(padded + 1);
    ck_assert_ptr_nonnull(raw);
    fill_random(src, padded, seed);
    memset(dst, 0xA5, padded);
    zl_swap_file *f;
    ck_assert_msg(zl_swap_file_create(&f, dir, "0_param.tensor.swp", nbytes) == ZL_OK, "%s",
                  zl_last_error());
    ck_assert_uint_eq(zl_swap_file_padded_nbytes(f), padded);
    ck_assert_int_eq(zl_swap_file_write(f, aio, src, nbytes, 0), ZL_OK);
    size_t done = 0;
    ck_assert_msg(zl_aio_wait(aio, &done) == ZL_OK, "%s", zl_last_error());
    ck_assert_uint_eq(done, nbytes ? 1 : 0);

    int fd = open(zl_swap_file_path(f), O_RDONLY);
    ck_assert_int_ge(fd, 0);
    size_t got = 0;
    while (got < padded) {
        ssize_t r = pread(fd, raw + got, padded + 1 - got, (off_t)got);
        ck_assert_int_ge(r, 0);
        if (r == 0) break;
        got += (size_t)r;
    }
    close(fd);
    ck_assert_uint_eq(got, padded); /* exactly the padded size, no more */
    ck_assert_msg(memcmp(raw, src, nbytes) == 0, "file bytes differ (%s, %zu bytes)",
                  zl_aio_backend_name(aio), nbytes);

    ck_assert_int_eq(zl_swap_file_read(f, aio, dst, nbytes, 0), ZL_OK);
    ck_assert_msg(zl_aio_wait(aio, &done) == ZL_OK, "%s", zl_last_error());
    ck_assert_uint_eq(done, nbytes ? 1 : 0);
    ck_assert_msg(memcmp(dst, src, nbytes) == 0, "read back differs (%s, %zu bytes)",
                  zl_aio_backend_name(aio), nbytes);
    zl_swap_file_close(f);
    free(src), free(dst), free(raw);
}

/* A private mount namespace, so mounts made here vanish with this process and never
 * reach the host. false (with the reason in why) where that is not allowed. */
static bool private_mounts(char *why, size_t cap)
{
    if (geteuid() != 0) {
        snprintf(why, cap, "not root");
        return false;
    }
    if (unshare(CLONE_NEWNS) != 0) {
        snprintf(why, cap, "unshare(CLONE_NEWNS): %s", strerror(errno));
        return false;
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
        snprintf(why, cap, "mount --make-rprivate /: %s", strerror(errno));
        return false;
    }
    return true;
}

/* ---------------------------------------------------------------- config */

START_TEST(test_aio_config_defaults_are_deepspeeds)
{
    zl_aio_config c;
    zl_aio_config_default(&c);
    /* deepspeed/runtime/swap_tensor/constants.py */
    ck_assert_uint_eq(c.block_size, 1048576);
    ck_assert_int_eq(c.queue_depth, 8);
    ck_assert_int_eq(c.intra_op_parallelism, 1);
    ck_assert(!c.single_submit);
    ck_assert(c.overlap_events);
    ck_assert(!c.use_gds);
    ck_assert_int_eq(zl_aio_config_check(&c), ZL_OK);

    zl_aio_config bad = c;
    bad.block_size = 1000;
    ck_assert_int_eq(zl_aio_config_check(&bad), ZL_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "aio.block_size 1000"));
    bad = c, bad.queue_depth = 0;
    ck_assert_int_eq(zl_aio_config_check(&bad), ZL_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "aio.queue_depth"));
    bad = c, bad.intra_op_parallelism = 0;
    ck_assert_int_eq(zl_aio_config_check(&bad), ZL_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "aio.intra_op_parallelism"));
    bad = c, bad.use_gds = true;
    ck_assert_int_eq(zl_aio_config_check(&bad), ZL_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "aio.use_gds"));
    zl_aio *aio = NULL;
    ck_assert_int_eq(zl_aio_create(&aio, &bad, ZL_AIO_AUTO), ZL_ERR_UNSUPPORTED);
    ck_assert_ptr_null(aio);
}
END_TEST

START_TEST(test_aio_auto_and_unbuilt_backends)
{
    zl_aio_config c;
    zl_aio_config_default(&c);
    zl_aio *aio;
    ck_assert_msg(zl_aio_create(&aio, &c, ZL_AIO_AUTO) == ZL_OK, "%s", zl_last_error());
    const char *name = zl_aio_backend_name(aio);
    fprintf(stderr, "  auto picks %s\n", name);
    /* auto takes the first built of liburing, libaio, threads */
    const char *want = zl_aio_backend_built(ZL_AIO_LIBURING) ? "liburing"
                       : zl_aio_backend_built(ZL_AIO_LIBAIO) ? "libaio"
                                                             : "threads";
    ck_assert_str_eq(name, want);
    zl_aio_destroy(aio);
    ck_assert(zl_aio_backend_built(ZL_AIO_THREADS));
    for (size_t i = 0; i < NBACKENDS; i++) {
        if (zl_aio_backend_built(BACKENDS[i])) continue;
        fprintf(stderr, "  %s not built: forcing it is refused\n", zl_aio_backend_str(BACKENDS[i]));
        ck_assert_int_eq(zl_aio_create(&aio, &c, BACKENDS[i]), ZL_ERR_UNSUPPORTED);
        ck_assert_ptr_nonnull(strstr(zl_last_error(), "not built"));
    }
}
END_TEST

/* ---------------------------------------------------------------- round trips */

/* Every backend built, on a real disk (O_DIRECT): sizes below a block, not multiples of
 * it, and larger than queue_depth x block_size, with DeepSpeed's flags varied. */
START_TEST(test_aio_round_trip_each_backend)
{
    const size_t bs = 64 * 1024;
    const size_t sizes[] = {1, 4096, 5000, bs, bs + 12345, 4 * bs * 3 + 777, 3 << 20};
    char *root = make_temp_dir(disk_parent());
    zl_swap_dir *dir;
    ck_assert_msg(zl_swap_dir_open(&dir, root, "") == ZL_OK, "%s", zl_last_error());
    int tried = 0;
    for (size_t b = 0; b < NBACKENDS; b++) {
        if (!zl_aio_backend_built(BACKENDS[b])) continue;
        struct { int qd, intra; bool single, overlap; } v[] = {
            {4, 1, false, true}, {4, 3, false, false}, {2, 2, true, true}};
        for (size_t k = 0; k < sizeof v / sizeof *v; k++) {
            zl_aio *aio = engine(BACKENDS[b], bs, v[k].qd, v[k].intra, v[k].single, v[k].overlap);
            for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
                round_trip(aio, dir, sizes[s], 1000 * b + 10 * k + s);
            zl_aio_destroy(aio);
        }
        /* DeepSpeed's defaults (1 MiB blocks, 8 deep) past queue_depth x block_size */
        zl_aio *aio = engine(BACKENDS[b], 1 << 20, 8, 1, false, true);
        round_trip(aio, dir, (9u << 20) + 4321, 77 + b);
        zl_aio_destroy(aio);
        tried++;
    }
    ck_assert_int_ge(tried, 1);
    zl_swap_dir_close(dir);
    rm_tree(root);
}
END_TEST

/* Several transfers in flight at once, to different files and offsets, one wait. */
START_TEST(test_aio_many_transfers_one_wait)
{
    char *root = make_temp_dir(disk_parent());
    zl_swap_dir *dir;
    ck_assert_int_eq(zl_swap_dir_open(&dir, root, ""), ZL_OK);
    for (size_t b = 0; b < NBACKENDS; b++) {
        if (!zl_aio_backend_built(BACKENDS[b])) continue;
        zl_aio *aio = engine(BACKENDS[b], 16384, 3, 2, false, true);
        enum { N = 5 };
        const size_t n = 100000;
        zl_swap_file *f[N];
        unsigned char *src[N], *dst[N];
        for (int i = 0; i < N; i++) {
            char name[64];
            snprintf(name, sizeof name, "%d.tensor.swp", i);
            ck_assert_int_eq(zl_swap_file_create(&f[i], dir, name, 2 * zl_swap_padded(n)), ZL_OK);
            src[i] = aligned(n), dst[i] = aligned(n);
            fill_random(src[i], zl_swap_padded(n), 31 * b + i);
            ck_assert_int_eq(zl_swap_file_write(f[i], aio, src[i], n, zl_swap_padded(n)), ZL_OK);
        }
        size_t done;
        ck_assert_msg(zl_aio_wait(aio, &done) == ZL_OK, "%s", zl_last_error());
        ck_assert_uint_eq(done, N);
        for (int i = 0; i < N; i++)
            ck_assert_int_eq(zl_swap_file_read(f[i], aio, dst[i], n, zl_swap_padded(n)), ZL_OK);
        ck_assert_msg(zl_aio_wait(aio, &done) == ZL_OK, "%s", zl_last_error());
        ck_assert_uint_eq(done, N);
        for (int i = 0; i < N; i++) {
            ck_assert_msg(memcmp(src[i], dst[i], n) == 0, "%s: transfer %d differs",
                          zl_aio_backend_name(aio), i);
            zl_swap_file_close(f[i]);
            free(src[i]), free(dst[i]);
        }
        zl_aio_destroy(aio);
    }
    zl_swap_dir_close(dir);
    rm_tree(root);
}
END_TEST

/* ---------------------------------------------------------------- O_DIRECT */

START_TEST(test_swap_file_direct_on_disk)
{
    char *root = make_temp_dir(disk_parent());
    bool can = probe_direct(root);
    fprintf(stderr, "  %s: O_DIRECT %s\n", disk_parent(), can ? "accepted" : "refused");
    zl_swap_dir *dir;
    ck_assert_int_eq(zl_swap_dir_open(&dir, root, ""), ZL_OK);
    zl_swap_file *f;
    ck_assert_int_eq(zl_swap_file_create(&f, dir, "1_param.tensor.swp", 10000), ZL_OK);
    ck_assert_int_eq(zl_swap_file_direct(f), can);
    int fl = fcntl(zl_swap_file_fd(f), F_GETFL);
    ck_assert_int_eq(!!(fl & O_DIRECT), can);
    zl_swap_file_close(f);
    zl_swap_dir_close(dir);
    rm_tree(root);
}
END_TEST

START_TEST(test_swap_file_tmpfs_falls_back_to_buffered)
{
    if (!exists("/dev/shm")) {
        fprintf(stderr, "  skipped: no /dev/shm\n");
        return;
    }
    char *root = make_temp_dir("/dev/shm");
    bool can = probe_direct(root);
    fprintf(stderr, "  /dev/shm: O_DIRECT %s\n", can ? "accepted" : "refused");
    zl_swap_dir *dir;
    ck_assert_int_eq(zl_swap_dir_open(&dir, root, ""), ZL_OK);
    zl_swap_file *f;
    ck_assert_int_eq(zl_swap_file_create(&f, dir, "x.tensor.swp", 8192), ZL_OK);
    ck_assert_int_eq(zl_swap_file_direct(f), can); /* tmpfs: false, and the file still works */
    zl_swap_file_close(f);
    zl_aio *aio = engine(zl_aio_backend_built(ZL_AIO_LIBAIO) ? ZL_AIO_LIBAIO : ZL_AIO_THREADS,
                         65536, 4, 1, false, true);
    round_trip(aio, dir, 300000, 5);
    zl_aio_destroy(aio);
    zl_swap_dir_close(dir);
    rm_tree(root);
}
END_TEST

/* Kernels from 6.6 accept O_DIRECT on tmpfs; ramfs still refuses it (EINVAL), so the
 * fallback is certain to run there. Needs a private mount (root). */
START_TEST(test_swap_file_ramfs_falls_back_to_buffered)
{
    char why[200] = "";
    char *root = make_temp_dir("/tmp");
    if (!private_mounts(why, sizeof why) || mount("ramfs", root, "ramfs", 0, NULL) != 0) {
        if (!why[0]) snprintf(why, sizeof why, "mount -t ramfs: %s", strerror(errno));
        fprintf(stderr, "  skipped (cannot mount a ramfs): %s\n", why);
        rm_tree(root);
        return;
    }
    ck_assert(!probe_direct(root));
    zl_swap_dir *dir;
    ck_assert_int_eq(zl_swap_dir_open(&dir, root, "zero_stage_3/float32params/rank0"), ZL_OK);
    zl_swap_file *f;
    ck_assert_msg(zl_swap_file_create(&f, dir, "x.tensor.swp", 8192) == ZL_OK, "%s",
                  zl_last_error());
    ck_assert(!zl_swap_file_direct(f));
    zl_swap_file_close(f);
    for (size_t b = 0; b < NBACKENDS; b++) {
        if (!zl_aio_backend_built(BACKENDS[b])) continue;
        zl_aio *aio = engine(BACKENDS[b], 65536, 4, 2, false, true);
        round_trip(aio, dir, 300000, 50 + b);
        zl_aio_destroy(aio);
    }
    zl_swap_dir_close(dir);
    umount(root);
    rm_tree(root);
}
END_TEST

START_TEST(test_swap_file_misaligned_requests_refused)
{
    char *root = make_temp_dir(disk_parent());
    zl_swap_dir *dir;
    ck_assert_int_eq(zl_swap_dir_open(&dir, root, ""), ZL_OK);
    zl_swap_file *f;
    ck_assert_int_eq(zl_swap_file_create(&f, dir, "m.tensor.swp", 8192), ZL_OK);
    zl_aio *aio = engine(ZL_AIO_THREADS, 4096, 1, 1, false, true);
    char *buf = aligned(3 * 4096);
    ck_assert_int_eq(zl_swap_file_write(f, aio, buf + 1, 100, 0), ZL_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "not 4096-aligned"));
    ck_assert_int_eq(zl_swap_file_read(f, aio, buf, 100, 100), ZL_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "offset 100"));
    ck_assert_int_eq(zl_swap_file_read(f, aio, buf, 8193, 0), ZL_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "past its end"));
    ck_assert_int_eq(zl_swap_file_write(f, aio, buf, 4096, 8192), ZL_ERR_INVALID);
    ck_assert_int_eq(zl_aio_wait(aio, NULL), ZL_OK); /* nothing was queued */
    free(buf);
    zl_aio_destroy(aio);
    zl_swap_file_close(f);
    zl_swap_dir_close(dir);
    rm_tree(root);
}
END_TEST

/* ---------------------------------------------------------------- layout and cleanup */

START_TEST(test_swap_layout_is_deepspeeds)
{
    char s[128];
    ck_assert_int_eq(zl_swap_param_subdir(s, sizeof s, ZL_F16, 0), ZL_OK);
    ck_assert_str_eq(s, "zero_stage_3/float16params/rank0");
    ck_assert_int_eq(zl_swap_param_subdir(s, sizeof s, ZL_BF16, 3), ZL_OK);
    ck_assert_str_eq(s, "zero_stage_3/bfloat16params/rank3");
    ck_assert_int_eq(zl_swap_param_subdir(s, sizeof s, ZL_F32, 12), ZL_OK);
    ck_assert_str_eq(s, "zero_stage_3/float32params/rank12");
    ck_assert_int_eq(zl_swap_param_subdir(s, sizeof s, ZL_I32, 0), ZL_ERR_INVALID);
    ck_assert_int_eq(zl_swap_optimizer_subdir(s, sizeof s, 1), ZL_OK);
    ck_assert_str_eq(s, "zero_stage_3/optimizer/rank1");
    ck_assert_int_eq(zl_swap_param_file_name(s, sizeof s, 42), ZL_OK);
    ck_assert_str_eq(s, "42_param.tensor.swp");
    ck_assert_int_eq(zl_swap_optimizer_file_name(s, sizeof s, 7), ZL_OK);
    ck_assert_str_eq(s, "7.tensor.swp");
    ck_assert_int_eq(zl_swap_gradient_file_name(s, sizeof s, 7, 1024, 4096), ZL_OK);
    ck_assert_str_eq(s, "7_gradient_1024_4096.tensor.swp");
    char tiny[8];
    ck_assert_int_eq(zl_swap_param_file_name(tiny, sizeof tiny, 123456), ZL_ERR_INVALID);
}
END_TEST

/* Files go at close; the folders the layer made go with the dir, those it found stay. */
START_TEST(test_swap_files_and_folders_removed_at_close)
{
    char *root = make_temp_dir(disk_parent());
    char sub[128], path[700];
    ck_assert_int_eq(zl_swap_param_subdir(sub, sizeof sub, ZL_F16, 0), ZL_OK);
    zl_swap_dir *dir;
    ck_assert_msg(zl_swap_dir_open(&dir, root, sub) == ZL_OK, "%s", zl_last_error());
    snprintf(path, sizeof path, "%s/%s", root, sub);
    ck_assert_str_eq(zl_swap_dir_path(dir), path);
    ck_assert(exists(path));
    zl_swap_file *a, *b;
    ck_assert_int_eq(zl_swap_file_create(&a, dir, "0_param.tensor.swp", 5000), ZL_OK);
    ck_assert_int_eq(zl_swap_file_create(&b, dir, "1_param.tensor.swp", 0), ZL_OK);
    char pa[700];
    snprintf(pa, sizeof pa, "%s", zl_swap_file_path(a));
    ck_assert(exists(pa));
    zl_swap_file_close(a);
    ck_assert(!exists(pa));
    zl_swap_file_close(b);
    zl_swap_dir_close(dir);
    snprintf(path, sizeof path, "%s/zero_stage_3", root);
    ck_assert_msg(!exists(path), "%s left behind", path);
    ck_assert(exists(root)); /* nvme_path itself was not ours */

    /* zero_stage_3 already there (another dtype's folder): only rank0/ and the dtype
     * folder are ours to remove */
    snprintf(path, sizeof path, "%s/zero_stage_3", root);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    ck_assert_int_eq(zl_swap_dir_open(&dir, root, sub), ZL_OK);
    zl_swap_dir_close(dir);
    ck_assert(exists(path));
    snprintf(path, sizeof path, "%s/zero_stage_3/float16params", root);
    ck_assert(!exists(path));
    rm_tree(root);
}
END_TEST

/* ---------------------------------------------------------------- faults */

START_TEST(test_swap_dir_missing_nvme_path)
{
    char *root = make_temp_dir(disk_parent());
    char missing[600];
    snprintf(missing, sizeof missing, "%s/no-such-dir", root);
    zl_swap_dir *dir = (zl_swap_dir *)1;
    ck_assert_int_eq(zl_swap_dir_open(&dir, missing, "zero_stage_3/optimizer/rank0"), ZL_ERR_IO);
    ck_assert_ptr_null(dir);
    const char *m = zl_last_error();
    ck_assert_msg(strstr(m, missing) && strstr(m, "No such file") && strstr(m, "hint:"), "%s", m);
    ck_assert(!exists(missing)); /* not created behind the user's back */
    /* a file where a directory should be */
    char file[600];
    snprintf(file, sizeof file, "%s/plain", root);
    close(open(file, O_CREAT | O_WRONLY, 0600));
    ck_assert_int_eq(zl_swap_dir_open(&dir, file, ""), ZL_ERR_IO);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "not a directory"));
    rm_tree(root);
}
END_TEST

/* A read-only nvme_path: chmod 0500 for a normal user; root passes permission checks, so
 * for root a read-only bind mount in a private namespace. */
START_TEST(test_swap_dir_unwritable)
{
    char *root = make_temp_dir(disk_parent());
    char ro[600];
    snprintf(ro, sizeof ro, "%s/ro", root);
    ck_assert_int_eq(mkdir(ro, 0755), 0);
    char pre[700]; /* an existing folder inside, so the "exists but not writable" path runs */
    snprintf(pre, sizeof pre, "%s/zero_stage_3", ro);
    ck_assert_int_eq(mkdir(pre, 0755), 0);
    if (geteuid() != 0) {
        ck_assert_int_eq(chmod(pre, 0500), 0);
        ck_assert_int_eq(chmod(ro, 0500), 0);
    } else {
        char why[200] = "";
        if (!private_mounts(why, sizeof why) || mount(ro, ro, NULL, MS_BIND, NULL) != 0 ||
            mount(NULL, ro, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) != 0) {
            if (!why[0]) snprintf(why, sizeof why, "read-only bind mount: %s", strerror(errno));
            fprintf(stderr, "  skipped (running as root, cannot make a read-only folder): %s\n",
                    why);
            rm_tree(root);
            return;
        }
    }
    zl_swap_dir *dir;
    ck_assert_int_eq(zl_swap_dir_open(&dir, ro, "zero_stage_3/optimizer/rank0"), ZL_ERR_IO);
    const char *m = zl_last_error();
    fprintf(stderr, "  %s\n", m);
    ck_assert_msg(strstr(m, "zero_stage_3/optimizer") && strstr(m, "cannot create") &&
                      strstr(m, "hint:"),
                  "%s", m);
    ck_assert_int_eq(zl_swap_dir_open(&dir, ro, "zero_stage_3"), ZL_ERR_IO);
    m = zl_last_error();
    ck_assert_msg(strstr(m, pre) && strstr(m, "not writable"), "%s", m);
    if (geteuid() != 0) {
        chmod(ro, 0755), chmod(pre, 0755);
    } else {
        umount(ro);
    }
    rm_tree(root);
}
END_TEST

/* The file shrinks behind the layer's back: the read is an error naming it, not zeros. */
START_TEST(test_swap_file_truncated_is_a_short_read)
{
    char *root = make_temp_dir(disk_parent());
    zl_swap_dir *dir;
    ck_assert_int_eq(zl_swap_dir_open(&dir, root, ""), ZL_OK);
    const size_t n = 256 * 1024;
    unsigned char *buf = aligned(n);
    for (size_t b = 0; b < NBACKENDS; b++) {
        if (!zl_aio_backend_built(BACKENDS[b])) continue;
        zl_aio *aio = engine(BACKENDS[b], 65536, 2, 1, false, true);
        zl_swap_file *f;
        ck_assert_int_eq(zl_swap_file_create(&f, dir, "3.tensor.swp", n), ZL_OK);
        fill_random(buf, n, b);
        ck_assert_int_eq(zl_swap_file_write(f, aio, buf, n, 0), ZL_OK);
        ck_assert_int_eq(zl_aio_wait(aio, NULL), ZL_OK);
        ck_assert_int_eq(truncate(zl_swap_file_path(f), 100000), 0);
        ck_assert_int_eq(zl_swap_file_read(f, aio, buf, n, 0), ZL_OK);
        ck_assert_int_eq(zl_aio_wait(aio, NULL), ZL_ERR_IO);
        const char *m = zl_last_error();
        fprintf(stderr, "  %s: %s\n", zl_aio_backend_name(aio), m);
        ck_assert_msg(strstr(m, zl_swap_file_path(f)) && strstr(m, "short read") &&
                          strstr(m, "ends at byte 100000"),
                      "%s", m);
        /* the error is reported once; the engine works on */
        ck_assert_int_eq(zl_swap_file_read(f, aio, buf, 65536, 0), ZL_OK);
        ck_assert_int_eq(zl_aio_wait(aio, NULL), ZL_OK);
        zl_swap_file_close(f);
        zl_aio_destroy(aio);
    }
    free(buf);
    zl_swap_dir_close(dir);
    rm_tree(root);
}
END_TEST

/* A 1 MiB tmpfs: a swap file larger than it fails at creation (fallocate); a write into
 * a file that was not preallocated fails with ENOSPC, both naming the file. */
START_TEST(test_swap_full_filesystem)
{
    char why[200] = "";
    char *root = make_temp_dir("/tmp");
    if (!private_mounts(why, sizeof why) ||
        mount("tmpfs", root, "tmpfs", 0, "size=1m") != 0) {
        if (!why[0]) snprintf(why, sizeof why, "mount -t tmpfs: %s", strerror(errno));
        fprintf(stderr, "  skipped (cannot mount a small filesystem): %s\n", why);
        rm_tree(root);
        return;
    }
    zl_swap_dir *dir;
    ck_assert_int_eq(zl_swap_dir_open(&dir, root, "zero_stage_3/optimizer/rank0"), ZL_OK);
    zl_swap_file *f;
    ck_assert_int_eq(zl_swap_file_create(&f, dir, "0.tensor.swp", 4 << 20), ZL_ERR_IO);
    const char *m = zl_last_error();
    fprintf(stderr, "  %s\n", m);
    ck_assert_msg(strstr(m, "No space left") && strstr(m, "0.tensor.swp") &&
                      strstr(m, "nvme_path") && strstr(m, root),
                  "%s", m);
    char path[700];
    snprintf(path, sizeof path, "%s/0.tensor.swp", zl_swap_dir_path(dir));
    ck_assert(!exists(path)); /* the failed file is not left behind */

    const size_t n = 2 << 20;
    unsigned char *buf = aligned(n);
    fill_random(buf, n, 9);
    for (size_t b = 0; b < NBACKENDS; b++) {
        if (!zl_aio_backend_built(BACKENDS[b])) continue;
        zl_aio *aio = engine(BACKENDS[b], 65536, 4, 1, false, true);
        snprintf(path, sizeof path, "%s/grow.tensor.swp", zl_swap_dir_path(dir));
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(zl_aio_pwrite(aio, fd, buf, n, 0, path), ZL_OK);
        ck_assert_int_eq(zl_aio_wait(aio, NULL), ZL_ERR_IO);
        m = zl_last_error();
        fprintf(stderr, "  %s: %s\n", zl_aio_backend_name(aio), m);
        ck_assert_msg(strstr(m, "No space left on device writing") && strstr(m, path) &&
                          strstr(m, "nvme_path"),
                      "%s", m);
        close(fd);
        unlink(path);
        zl_aio_destroy(aio);
    }
    free(buf);
    zl_swap_dir_close(dir);
    umount(root);
    rm_tree(root);
}
END_TEST

/* ---------------------------------------------------------------- buffer pool */

START_TEST(test_swap_pool_buffers)
{
    zl_swap_pool *p;
    ck_assert_msg(zl_swap_pool_create(&p, 3, 5000, true) == ZL_OK, "%s", zl_last_error());
    ck_assert_int_eq(zl_swap_pool_count(p), 3);
    ck_assert_uint_eq(zl_swap_pool_buffer_nbytes(p), 8192);
    ck_assert_uint_eq(zl_swap_pool_total_nbytes(p), 3 * 8192);
    fprintf(stderr, "  pinned: %s\n", zl_swap_pool_pinned(p) ? "yes" : "no");
    char *b[3];
    for (int i = 0; i < 3; i++) {
        b[i] = zl_swap_pool_acquire(p);
        ck_assert_ptr_nonnull(b[i]);
        ck_assert_uint_eq((uintptr_t)b[i] % 4096, 0);
        memset(b[i], i, 8192); /* the whole rounded-up buffer is ours */
    }
    ck_assert(b[0] != b[1] && b[1] != b[2] && b[0] != b[2]);
    ck_assert_ptr_null(zl_swap_pool_acquire(p));
    ck_assert_int_eq(zl_swap_pool_free_count(p), 0);
    zl_swap_pool_release(p, b[1]);
    ck_assert_int_eq(zl_swap_pool_free_count(p), 1);
    ck_assert_ptr_eq(zl_swap_pool_acquire(p), b[1]);
    ck_assert_uint_eq((unsigned char)b[2][8191], 2); /* buffers do not overlap */
    zl_swap_pool_destroy(p);

    ck_assert_int_eq(zl_swap_pool_create(&p, 0, 4096, false), ZL_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "buffer_count 0"));
    ck_assert_int_eq(zl_swap_pool_create(&p, 1, 0, false), ZL_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "buffer_size"));
    /* far past any machine's memory: refused before allocating, naming the keys */
    zl_status st = zl_swap_pool_create(&p, 5, (size_t)1 << 60, false);
    ck_assert_msg(st == ZL_ERR_NOMEM || st == ZL_ERR_CONFIG, "%s", zl_last_error());
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "buffer_count"));
}
END_TEST

/* pin_memory past RLIMIT_MEMLOCK: the pool is made, unpinned, with one warning naming the
 * limit and the fix. Root locks memory regardless of the limit (CAP_IPC_LOCK), so the
 * child process drops that capability first. */
START_TEST(test_swap_pool_pin_past_memlock_warns)
{
#if defined(__SANITIZE_ADDRESS__)
    /* AddressSanitizer's mlock interceptor does nothing and succeeds (it cannot lock its
     * shadow memory), so no limit can be hit under it. */
    fprintf(stderr, "  skipped: mlock is a no-op under AddressSanitizer\n");
    return;
#endif
    char log[] = "/tmp/zl-aio-memlock-XXXXXX";
    int lfd = mkstemp(log);
    ck_assert_int_ge(lfd, 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(lfd, 2);
        if (geteuid() == 0) {
            struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
            struct __user_cap_data_struct d[2];
            if (syscall(SYS_capget, &h, d) != 0) _exit(77);
            d[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
            d[CAP_IPC_LOCK / 32].permitted &= ~(1u << (CAP_IPC_LOCK % 32));
            if (syscall(SYS_capset, &h, d) != 0) _exit(77);
        }
        struct rlimit rl = {65536, 65536};
        if (setrlimit(RLIMIT_MEMLOCK, &rl) != 0) _exit(77);
        zl_swap_pool *p;
        if (zl_swap_pool_create(&p, 4, 1 << 20, true) != ZL_OK) _exit(1);
        int code = zl_swap_pool_pinned(p) ? 2 : zl_swap_pool_acquire(p) ? 0 : 3;
        zl_swap_pool_destroy(p);
        _exit(code);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    char text[2048] = "";
    ssize_t n = pread(lfd, text, sizeof text - 1, 0);
    text[n > 0 ? n : 0] = '\0';
    close(lfd);
    unlink(log);
    ck_assert(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77) {
        fprintf(stderr, "  skipped: cannot drop CAP_IPC_LOCK or lower RLIMIT_MEMLOCK here\n");
        return;
    }
    ck_assert_msg(WEXITSTATUS(status) == 0, "child exit %d (1: create failed, 2: pinned "
                  "anyway, 3: no buffer); stderr: %s", WEXITSTATUS(status), text);
    fprintf(stderr, "  %s", text);
    ck_assert_msg(strstr(text, "pin_memory") && strstr(text, "RLIMIT_MEMLOCK is 65536 bytes") &&
                      strstr(text, "hint:"),
                  "%s", text);
}
END_TEST

static Suite *aio_suite(void)
{
    Suite *s = suite_create("aio");
    TCase *tc = tcase_create("aio");
    tcase_add_test(tc, test_aio_config_defaults_are_deepspeeds);
    tcase_add_test(tc, test_aio_auto_and_unbuilt_backends);
    tcase_add_test(tc, test_aio_round_trip_each_backend);
    tcase_add_test(tc, test_aio_many_transfers_one_wait);
    tcase_add_test(tc, test_swap_file_direct_on_disk);
    tcase_add_test(tc, test_swap_file_tmpfs_falls_back_to_buffered);
    tcase_add_test(tc, test_swap_file_ramfs_falls_back_to_buffered);
    tcase_add_test(tc, test_swap_file_misaligned_requests_refused);
    tcase_add_test(tc, test_swap_layout_is_deepspeeds);
    tcase_add_test(tc, test_swap_files_and_folders_removed_at_close);
    tcase_add_test(tc, test_swap_dir_missing_nvme_path);
    tcase_add_test(tc, test_swap_dir_unwritable);
    tcase_add_test(tc, test_swap_file_truncated_is_a_short_read);
    tcase_add_test(tc, test_swap_full_filesystem);
    tcase_add_test(tc, test_swap_pool_buffers);
    tcase_add_test(tc, test_swap_pool_pin_past_memlock_warns);
    suite_add_tcase(s, tc);
    return s;
}

ZL_TEST_MAIN(aio_suite)
