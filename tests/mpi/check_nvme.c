/* ZeRO-Infinity's optimizer swapping (offload_optimizer.device "nvme" at stage 3,
 * src/zero/offload_nvme.c), at np 1 and 2 (tests/run-mpi.sh), each rank in a temporary
 * directory of its own (mkdtemp under $TMPDIR or /var/tmp):
 *   - equivalence: 10 optimizer steps give the same weights, bit for bit, as the same
 *     run without offload, in fp32 (gradient accumulation 4 and clipping; and plain),
 *     and in bf16 and fp16 (bitwise too: the same kernel on the same numbers, so no
 *     tolerance is granted), with a sub_group_size that cuts the partition into several sub-groups,
 *     with and without pipeline_read / pipeline_write;
 *   - files: during training the swap folder holds DeepSpeed's names
 *     (zero_stage_3/optimizer/rank<R>/<id>.tensor.swp, three per sub-group), and after
 *     the engine is destroyed nothing of it is left;
 *   - ledgers: the host holds the buffer pool and none of the optimizer's state; the NVMe
 *     ledger holds the files, 12 bytes per element of the partition (padded per file);
 *   - the simulated trace: swap-in, the CPU's step and swap-out on their rows,
 *     overlapping when pipelined, in sequence when not;
 *   - faults: a swap file truncated behind the engine's back fails the next step on
 *     every rank with a message naming the file (and the run can be destroyed); a missing
 *     nvme_path and an unwritable one fail engine creation naming the folder;
 *   - config: nvme at stage 3 accepted, nvme_path required, the aio block checked. */
#include <errno.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_util.h"
#include "comm/comm.h"
#include "config/config.h"
#include "engine/engine.h"
#include "engine/engine_internal.h"
#include "model/gpt_config.h"
#include "run/run.h"

static zl_comm *world;
static char tmp[512]; /* this rank's scratch directory */

/* An AdamW recipe at stage 3; `offload` the offload_optimizer block's inside, `extra`
 * more top-level keys ("" for none). */
static void recipe(char *json, size_t n, int gas, double clip, const char *offload, const char *extra)
{
    snprintf(json, n,
             "{\"train_micro_batch_size_per_gpu\": 4, \"gradient_accumulation_steps\": %d,"
             " \"gradient_clipping\": %g,"
             " \"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": 3e-3, \"betas\": [0.9, 0.95],"
             "   \"eps\": 1e-8, \"weight_decay\": 0.1}},"
             " \"zero_optimization\": {\"stage\": 3, \"sub_group_size\": 20000,"
             "   \"offload_optimizer\": {%s}}%s%s}",
             gas, clip, offload, extra[0] ? ", " : "", extra);
}

static void nvme_block(char *out, size_t n, bool pr, bool pw)
{
    snprintf(out, n, "\"device\": \"nvme\", \"nvme_path\": \"%s\", \"pipeline_read\": %s,"
                     " \"pipeline_write\": %s", tmp, pr ? "true" : "false", pw ? "true" : "false");
}

static zl_status run_try(zl_run *r, const char *json, const char *device, const char *trace)
{
    return zl_test_run_try(r, json, world, device, trace);
}

static void run_open(zl_run *r, const char *json, const char *device, const char *trace)
{
    zl_test_run_open(r, json, world, device, trace);
}

/* This rank's swap folder. */
static void swap_dir(char *out, size_t n) { snprintf(out, n, "%s/zero_stage_3/optimizer/rank%d", tmp, world->rank); }

/* Files in a folder (-1 if it does not exist); `names`: each must be <id>.tensor.swp. */
static int count_files(const char *dir, bool check_names)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        if (check_names) {
            char *end;
            strtol(de->d_name, &end, 10);
            ck_assert_msg(end != de->d_name && !strcmp(end, ".tensor.swp"), "unexpected file %s in %s",
                          de->d_name, dir);
        }
        n++;
    }
    closedir(d);
    return n;
}

static size_t sub_groups(size_t P) { return (P + 19999) / 20000; }

/* Train; the whole vector into *out; during the run, check the swap folder. */
static void train(const char *json, int steps, float **out, size_t *numel, bool nvme)
{
    zl_run r;
    run_open(&r, json, NULL, NULL);
    for (int s = 0; s < steps; s++) {
        float loss;
        ck_assert_msg(zl_run_step(&r, &loss) == ZL_OK, "%s", zl_last_error());
    }
    char dir[700];
    swap_dir(dir, sizeof dir);
    if (nvme) {
        size_t G = sub_groups(r.engine->zero.opt_numel);
        ck_assert_msg(G >= 3, "only %zu sub-group(s): the test wants several", G);
        ck_assert_int_eq(count_files(dir, true), (int)(3 * G));
    }
    *numel = r.engine->model.params_numel;
    *out = malloc(*numel * sizeof **out);
    ck_assert_ptr_nonnull(*out);
    ck_assert_int_eq(zl_engine_gather_params(r.engine, *out), ZL_OK);
    zl_run_free(&r);
    /* nothing left: not the files, not the folders the engine made */
    ck_assert_int_eq(count_files(dir, false), -1);
    char top[600];
    snprintf(top, sizeof top, "%s/zero_stage_3", tmp);
    ck_assert_int_eq(count_files(top, false), -1);
    ck_assert_int_eq(count_files(tmp, false) >= 0, 1); /* nvme_path itself stays */
}

static void equivalent(int gas, double clip, bool pr, bool pw, const char *name, const char *precision)
{
    char a[2048], b[2048], blk[900];
    recipe(a, sizeof a, gas, clip, "\"device\": \"none\"", precision);
    nvme_block(blk, sizeof blk, pr, pw);
    recipe(b, sizeof b, gas, clip, blk, precision);
    float *wa, *wb, *w0;
    size_t na, nb, n0;
    train(a, 10, &wa, &na, false);
    train(b, 10, &wb, &nb, true);
    ck_assert_uint_eq(na, nb);
    size_t first, differ = zl_test_bits_differ(wa, wb, na, &first);
    ck_assert_msg(zl_test_all_ok(differ == 0),
                  "%s, gas %d, clip %g, pipeline read %d write %d, %d rank(s): %zu of %zu weights "
                  "differ with nvme (first: [%zu] %.9g vs %.9g)", name, gas, clip, pr, pw,
                  world->size, differ, na, first, first < na ? wa[first] : 0.0,
                  first < na ? wb[first] : 0.0);
    train(a, 0, &w0, &n0, false);
    size_t moved = 0;
    for (size_t i = 0; i < n0; i++) moved += w0[i] != wa[i];
    ck_assert_msg(moved > n0 / 2, "only %zu of %zu weights moved in 10 steps", moved, n0);
    if (world->rank == 0)
        printf("  %s, gas %d, clip %g, pipeline read %d write %d, %d rank(s): 10 steps, %zu "
               "weights bitwise equal with the optimizer on NVMe\n", name, gas, clip, pr, pw,
               world->size, na);
    free(w0);
    free(wa);
    free(wb);
}

#define BF16 "\"bf16\": {\"enabled\": true}"
#define FP16 "\"fp16\": {\"enabled\": true, \"initial_scale_power\": 12}"

START_TEST(test_fp32_gas4_clip_pipelined) { equivalent(4, 0.5, true, true, "fp32", ""); }
END_TEST
START_TEST(test_fp32_plain) { equivalent(1, 0, false, false, "fp32", ""); }
END_TEST
START_TEST(test_bf16_pipeline_read) { equivalent(2, 0.5, true, false, "bf16", BF16); }
END_TEST
START_TEST(test_fp32_pipeline_write) { equivalent(1, 1.0, false, true, "fp32", ""); }
END_TEST
START_TEST(test_fp16_pipelined) { equivalent(2, 0.5, true, true, "fp16", FP16); }
END_TEST

/* ---- ledgers --------------------------------------------------------------------------- */

START_TEST(test_ledgers)
{
    char json[2048], blk[900];
    nvme_block(blk, sizeof blk, true, true);
    recipe(json, sizeof json, 1, 1.0, blk, "");
    zl_run r;
    run_open(&r, json, NULL, NULL);
    float loss;
    ck_assert_int_eq(zl_run_step(&r, &loss), ZL_OK);
    zl_engine *e = r.engine;
    const zl_ledger *dev = &zl_engine_device(e)->ledger, *host = &e->host->ledger;
    const zl_ledger *nv = zl_engine_nvme_ledger(e);
    size_t P = e->zero.opt_numel, G = sub_groups(P);
    static const char *const state[] = {"master", "adam.m", "adam.v", "offload.grad", "offload.param"};
    for (int i = 0; i < 5; i++) {
        ck_assert_uint_eq(zl_ledger_current(dev, state[i]), 0);
        ck_assert_msg(zl_ledger_current(host, state[i]) == 0, "host holds %zu bytes of %s",
                      zl_ledger_current(host, state[i]), state[i]);
    }
    /* the pool: 3 sets of 3 (both pipelines) and the gradient and parameter buffers, each
     * one sub-group of f32 */
    size_t buf = (20000 * 4 + 4095) / 4096 * 4096;
    ck_assert_uint_eq(zl_ledger_current(host, "nvme.buffers"), 11 * buf);
    /* the files: each state of each sub-group, padded to 4096 bytes */
    size_t files = 0;
    for (size_t g = 0; g < G; g++) {
        size_t n = g + 1 < G ? 20000 : P - g * 20000;
        files += (n * 4 + 4095) / 4096 * 4096;
    }
    ck_assert_uint_eq(zl_ledger_current(nv, "nvme.master"), files);
    ck_assert_uint_eq(zl_ledger_current(nv, "nvme.adam.m"), files);
    ck_assert_uint_eq(zl_ledger_current(nv, "nvme.adam.v"), files);
    ck_assert_uint_eq(zl_ledger_current(nv, "nvme.grad"), 0);
    ck_assert_uint_eq(nv->cur_nbytes, 3 * files);
    ck_assert_uint_ge(3 * files, 12 * P);
    ck_assert_str_eq(zl_placement_name(nv->placement), zl_placement_name(ZL_PLACE_NVME));
    if (world->rank == 0)
        printf("  ledgers, %d rank(s): NVMe %zu bytes for %zu elements in %zu sub-groups, host "
               "pool %zu bytes, no optimizer state on host or device\n", world->size,
               nv->cur_nbytes, P, G, 11 * buf);
    zl_run_free(&r);
}
END_TEST

/* ---- the simulated trace ------------------------------------------------------------- */

static bool overlaps(const zl_span *a, const zl_span *b) { return a->start < b->end && b->start < a->end; }

/* Whether an NVMe span overlaps a cpu_adam span, and that the rows exist. */
static bool trace_overlap(bool pipelined)
{
    char json[2048], blk[900];
    nvme_block(blk, sizeof blk, pipelined, pipelined);
    recipe(json, sizeof json, 1, 1.0, blk, "");
    char path[] = "/tmp/zl_nvme_traceXXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    zl_run r;
    run_open(&r, json, "v100-16gb", path);
    float loss;
    ck_assert_int_eq(zl_run_step(&r, &loss), ZL_OK);
    const zl_timeline *tl = &r.sim.timeline;
    int in = 0, out = 0, adam = 0;
    bool overlap = false;
    for (size_t i = 0; i < tl->num_spans; i++) {
        const zl_span *s = &tl->spans[i];
        in += s->stream == ZL_STREAM_NVME && !strcmp(s->name, "optimizer_swap_in_state");
        out += s->stream == ZL_STREAM_NVME && !strcmp(s->name, "optimizer_swap_out_state");
        if (s->stream == ZL_STREAM_CPU && !strcmp(s->name, "cpu_adam")) {
            adam++;
            for (size_t j = 0; j < tl->num_spans; j++)
                if (tl->spans[j].stream == ZL_STREAM_NVME && overlaps(s, &tl->spans[j])) overlap = true;
        }
    }
    ck_assert_msg(in > 0 && out > 0 && adam > 0, "swap in %d, swap out %d, cpu_adam %d spans", in, out, adam);
    ck_assert_str_eq(zl_stream_name(ZL_STREAM_NVME), "nvme");
    zl_run_free(&r);
    close(fd);
    unlink(path);
    return overlap;
}

START_TEST(test_trace)
{
    ck_assert_msg(trace_overlap(true), "pipelined: no swap overlaps the CPU's step");
    ck_assert_msg(!trace_overlap(false), "not pipelined: a swap overlaps the CPU's step");
    if (world->rank == 0) printf("  trace: swaps overlap cpu_adam when pipelined, not otherwise\n");
}
END_TEST

/* ---- faults ---------------------------------------------------------------------------- */

/* A swap file truncated behind the engine's back: the next step fails on every rank,
 * naming the file where it was truncated. `all`: truncate on every rank, else rank 0's. */
static void truncated(bool all)
{
    char json[2048], blk[900];
    nvme_block(blk, sizeof blk, true, true);
    recipe(json, sizeof json, 1, 1.0, blk, "");
    zl_run r;
    run_open(&r, json, NULL, NULL);
    float loss;
    ck_assert_int_eq(zl_run_step(&r, &loss), ZL_OK);
    char dir[700], file[800];
    swap_dir(dir, sizeof dir);
    snprintf(file, sizeof file, "%s/4.tensor.swp", dir); /* sub-group 1's exp_avg */
    zl_test_truncate_mid_run(&r, world, file, all);
    zl_run_free(&r);
    ck_assert_int_eq(count_files(dir, false), -1);
}

START_TEST(test_truncated_everywhere) { truncated(true); }
END_TEST
START_TEST(test_truncated_rank0) { truncated(false); }
END_TEST

/* nvme_path missing, or not writable: engine creation fails, naming the folder. */
START_TEST(test_bad_path)
{
    char json[2048], blk[900], missing[600];
    snprintf(missing, sizeof missing, "%s/no-such-dir", tmp);
    snprintf(blk, sizeof blk, "\"device\": \"nvme\", \"nvme_path\": \"%s\"", missing);
    recipe(json, sizeof json, 1, 1.0, blk, "");
    zl_run r;
    zl_status st = run_try(&r, json, NULL, NULL);
    ck_assert_int_ne(st, ZL_OK);
    ck_assert_msg(strstr(zl_last_error(), missing), "%s", zl_last_error());
    if (world->rank == 0) printf("  missing nvme_path: %s\n", zl_last_error());

    char ro[600];
    snprintf(ro, sizeof ro, "%s/read-only", tmp);
    ck_assert_int_eq(mkdir(ro, 0500), 0);
    /* root writes through a mode of 0500: the check needs another user (the CLI test
     * uses a read-only bind mount for root) */
    if (zl_test_all_ok(access(ro, W_OK) != 0)) {
        snprintf(blk, sizeof blk, "\"device\": \"nvme\", \"nvme_path\": \"%s\"", ro);
        recipe(json, sizeof json, 1, 1.0, blk, "");
        st = run_try(&r, json, NULL, NULL);
        ck_assert_int_ne(st, ZL_OK);
        ck_assert_msg(strstr(zl_last_error(), ro), "%s", zl_last_error());
        if (world->rank == 0) printf("  unwritable nvme_path: %s\n", zl_last_error());
    } else if (world->rank == 0) {
        printf("  unwritable nvme_path: skipped here (running as root, which writes through "
               "mode 0500; tests/cli/check_nvme_faults.sh covers it with a read-only mount)\n");
    }
    rmdir(ro);
}
END_TEST

/* ---- config ---------------------------------------------------------------------------- */

static zl_status check(const char *json, zl_engine_options *o)
{
    return zl_test_check_config(json, world->size, o);
}

START_TEST(test_config)
{
    char json[2048];
    zl_engine_options o;
    snprintf(json, sizeof json,
             "{\"train_micro_batch_size_per_gpu\": 4, \"zero_optimization\": {\"stage\": 3,"
             " \"sub_group_size\": 1000, \"offload_optimizer\": {\"device\": \"nvme\", \"nvme_path\":"
             " \"/local_nvme\", \"buffer_count\": 7, \"pipeline_read\": true, \"fast_init\": true}},"
             " \"aio\": {\"block_size\": 262144, \"queue_depth\": 16, \"intra_op_parallelism\": 2,"
             " \"single_submit\": true, \"overlap_events\": false}}");
    ck_assert_msg(check(json, &o) == ZL_OK, "%s", zl_last_error());
    ck_assert(o.offload_optimizer && o.offload_nvme);
    ck_assert_str_eq(o.nvme_path, "/local_nvme");
    ck_assert_int_eq(o.nvme_buffer_count, 7);
    ck_assert(o.nvme_pipeline_read && !o.nvme_pipeline_write);
    ck_assert_int_eq(o.sub_group_size, 1000);
    ck_assert_uint_eq(o.aio.block_size, 262144);
    ck_assert_int_eq(o.aio.queue_depth, 16);
    ck_assert_int_eq(o.aio.intra_op_parallelism, 2);
    ck_assert(o.aio.single_submit && !o.aio.overlap_events);
    /* thread_count, intra_op_parallelism's name before DeepSpeed PR #7056: an alias,
     * unless the new name is there too */
    snprintf(json, sizeof json, "{\"train_micro_batch_size_per_gpu\": 4, \"zero_optimization\": "
                                "{\"stage\": 3, \"offload_optimizer\": {\"device\": \"nvme\", "
                                "\"nvme_path\": \"/x\"}}, \"aio\": {\"thread_count\": 3}}");
    ck_assert_msg(check(json, &o) == ZL_OK, "%s", zl_last_error());
    ck_assert_int_eq(o.aio.intra_op_parallelism, 3);
    snprintf(json, sizeof json, "{\"train_micro_batch_size_per_gpu\": 4, \"aio\": "
                                "{\"thread_count\": 3, \"intra_op_parallelism\": 2}}");
    ck_assert_msg(check(json, &o) == ZL_OK, "%s", zl_last_error());
    ck_assert_int_eq(o.aio.intra_op_parallelism, 2);
    /* nvme_path is required */
    snprintf(json, sizeof json, "{\"train_micro_batch_size_per_gpu\": 4, \"zero_optimization\": "
                                "{\"stage\": 3, \"offload_optimizer\": {\"device\": \"nvme\"}}}");
    ck_assert_int_eq(check(json, &o), ZL_ERR_CONFIG);
    ck_assert_msg(strstr(zl_last_error(), "nvme_path"), "%s", zl_last_error());
    /* the aio block, judged by zl_aio_config_check */
    snprintf(json, sizeof json, "{\"train_micro_batch_size_per_gpu\": 4, \"zero_optimization\": "
                                "{\"stage\": 3, \"offload_optimizer\": {\"device\": \"nvme\", "
                                "\"nvme_path\": \"/x\"}}, \"aio\": {\"block_size\": 1000}}");
    ck_assert_int_eq(check(json, &o), ZL_ERR_CONFIG);
    ck_assert_msg(strstr(zl_last_error(), "aio.block_size"), "%s", zl_last_error());
    snprintf(json, sizeof json, "{\"train_micro_batch_size_per_gpu\": 4, \"zero_optimization\": "
                                "{\"stage\": 3, \"offload_optimizer\": {\"device\": \"nvme\", "
                                "\"nvme_path\": \"/x\"}}, \"aio\": {\"use_gds\": true}}");
    ck_assert_int_ne(check(json, &o), ZL_OK);
    ck_assert_msg(strstr(zl_last_error(), "use_gds"), "%s", zl_last_error());
    /* offload_param nvme is accepted too (tests/mpi/check_pnvme.c) */
    snprintf(json, sizeof json, "{\"train_micro_batch_size_per_gpu\": 4, \"zero_optimization\": "
                                "{\"stage\": 3, \"offload_param\": {\"device\": \"nvme\", "
                                "\"nvme_path\": \"/x\"}}}");
    ck_assert_msg(check(json, &o) == ZL_OK, "%s", zl_last_error());
    ck_assert(o.offload_param_nvme);
}
END_TEST

static void rm_tree_top(void) { rmdir(tmp); }

static Suite *nvme_suite(void)
{
    const char *base = getenv("TMPDIR");
    if (!base || !base[0]) base = "/var/tmp";
    snprintf(tmp, sizeof tmp, "%s/zl_nvme_XXXXXX", base);
    if (!mkdtemp(tmp)) {
        fprintf(stderr, "mkdtemp %s: %s\n", tmp, strerror(errno));
        abort();
    }
    atexit(rm_tree_top);
    Suite *s = suite_create("nvme");
    TCase *tc = tcase_create("nvme");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_config);
    tcase_add_test(tc, test_ledgers);
    tcase_add_test(tc, test_trace);
    tcase_add_test(tc, test_fp32_gas4_clip_pipelined);
    tcase_add_test(tc, test_fp32_plain);
    tcase_add_test(tc, test_bf16_pipeline_read);
    tcase_add_test(tc, test_fp32_pipeline_write);
    tcase_add_test(tc, test_fp16_pipelined);
    tcase_add_test(tc, test_truncated_everywhere);
    tcase_add_test(tc, test_truncated_rank0);
    tcase_add_test(tc, test_bad_path);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return zl_test_run_mpi_with(nvme_suite, &world); }
