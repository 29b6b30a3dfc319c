/* ZeRO-Infinity's parameter swapping (offload_param.device "nvme" at stage 3,
 * src/zero/offload_nvme_param.c), at np 1 and 2 (tests/run-mpi.sh), each rank in a
 * temporary directory of its own (mkdtemp under $TMPDIR or /var/tmp):
 *   - equivalence: 10 optimizer steps give the same weights, bit for bit, as the same run
 *     without offload, in fp32 (GAS 4 and clipping; plain), with offload_optimizer cpu
 *     and with offload_optimizer nvme (DeepSpeed's classic ZeRO-Infinity), and in bf16
 *     (bitwise too: the same kernels on the same numbers, so no tolerance is granted);
 *   - files: during training zero_stage_3/<dtype>params/rank<R> holds one
 *     <id>_param.tensor.swp per parameter tensor; after destroy nothing is left;
 *   - ledgers: the device holds no "param", the host the pool ("nvme.param.buffers"),
 *     the NVMe ledger the files ("nvme.param");
 *   - the simulated trace: a parameter read on the NVMe row overlaps compute;
 *   - faults: a swap file truncated behind the engine's back fails the next step on every
 *     rank naming the file; a buffer_size smaller than a chunk is refused naming the key;
 *   - max_in_cpu: the first units in the model's order, up to max_in_cpu elements, stay in
 *     host memory ("nvme.param.cpu") and get no file; the rest are swapped. A value that
 *     keeps some: the same bits over 10 steps, files for the swapped units only, ledgers
 *     split exactly; the default (1e9) keeps this small model whole, no file at all (the
 *     other tests set max_in_cpu 0 to swap every unit);
 *   - config: accepted, keys read. */
#include <errno.h>
#include <dirent.h>
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
static char tmp[512];

/* An AdamW recipe at stage 3 with the given offload_param and offload_optimizer blocks. */
static void recipe(char *json, size_t n, int gas, double clip, const char *param, const char *optim,
                   const char *extra)
{
    snprintf(json, n,
             "{\"train_micro_batch_size_per_gpu\": 4, \"gradient_accumulation_steps\": %d,"
             " \"gradient_clipping\": %g,"
             " \"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": 3e-3, \"betas\": [0.9, 0.95],"
             "   \"eps\": 1e-8, \"weight_decay\": 0.1}},"
             " \"zero_optimization\": {\"stage\": 3, \"sub_group_size\": 20000,"
             "   \"stage3_param_persistence_threshold\": 100,"
             "   \"offload_param\": {%s}, \"offload_optimizer\": {%s}}%s%s}",
             gas, clip, param, optim, extra[0] ? ", " : "", extra);
}

static void nvme_block(char *out, size_t n, const char *more)
{
    snprintf(out, n, "\"device\": \"nvme\", \"nvme_path\": \"%s\", \"buffer_count\": 3, "
                     "\"buffer_size\": 1000000%s", tmp, more[0] ? more : ", \"max_in_cpu\": 0");
}

static zl_status run_try(zl_run *r, const char *json, const char *device, const char *trace)
{
    return zl_test_run_try(r, json, world, device, trace);
}

static void run_open(zl_run *r, const char *json, const char *device, const char *trace)
{
    zl_test_run_open(r, json, world, device, trace);
}

static void swap_dir(char *out, size_t n, const char *dtype)
{
    snprintf(out, n, "%s/zero_stage_3/%sparams/rank%d", tmp, dtype, world->rank);
}

/* Files in a folder (-1 if it does not exist); check_names: each <id>_param.tensor.swp. */
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
            ck_assert_msg(end != de->d_name && !strcmp(end, "_param.tensor.swp"), "unexpected file %s in %s",
                          de->d_name, dir);
        }
        n++;
    }
    closedir(d);
    return n;
}

/* Units (tensors with elements, in the model's order) kept in host memory by the run in
 * flight: 0 unless a test sets it (max_in_cpu). */
static int kept_units;

static void train(const char *json, int steps, float **out, size_t *numel, const char *dtype)
{
    zl_run r;
    run_open(&r, json, NULL, NULL);
    for (int s = 0; s < steps; s++) {
        float loss;
        ck_assert_msg(zl_run_step(&r, &loss) == ZL_OK, "%s", zl_last_error());
    }
    char dir[700];
    swap_dir(dir, sizeof dir, dtype ? dtype : "float32");
    if (dtype) {
        int tensors = 0;
        for (int i = 0; i < r.engine->model.num_params; i++) tensors += r.engine->model.params[i].numel != 0;
        ck_assert_int_eq(count_files(dir, true), tensors - kept_units);
        for (int i = 0; i < tensors; i++) { /* a file for each swapped unit, none for a kept one */
            char f[800];
            struct stat sb;
            snprintf(f, sizeof f, "%s/%d_param.tensor.swp", dir, i);
            ck_assert_msg((stat(f, &sb) == 0) == (i >= kept_units), "%s: %s", f,
                          i >= kept_units ? "missing" : "exists for a unit kept in host memory");
        }
        ck_assert_ptr_null(r.engine->params.data); /* the shard is in the files only */
    }
    *numel = r.engine->model.params_numel;
    *out = malloc(*numel * sizeof **out);
    ck_assert_ptr_nonnull(*out);
    ck_assert_int_eq(zl_engine_gather_params(r.engine, *out), ZL_OK);
    zl_run_free(&r);
    ck_assert_int_eq(count_files(dir, false), -1);
    char top[600];
    snprintf(top, sizeof top, "%s/zero_stage_3", tmp);
    ck_assert_int_eq(count_files(top, false), -1);
    ck_assert_int_eq(count_files(tmp, false), 0); /* nvme_path stays, empty */
}

static void equivalent_with(int gas, double clip, const char *optim, const char *name, const char *precision,
                            const char *dtype, const char *more)
{
    char a[3000], b[3000], blk[900];
    recipe(a, sizeof a, gas, clip, "\"device\": \"none\"", "\"device\": \"none\"", precision);
    nvme_block(blk, sizeof blk, more);
    recipe(b, sizeof b, gas, clip, blk, optim, precision);
    float *wa, *wb, *w0;
    size_t na, nb, n0;
    train(a, 10, &wa, &na, NULL);
    train(b, 10, &wb, &nb, dtype);
    ck_assert_uint_eq(na, nb);
    size_t first, differ = zl_test_bits_differ(wa, wb, na, &first);
    ck_assert_msg(zl_test_all_ok(differ == 0),
                  "%s, gas %d, clip %g, %d rank(s): %zu of %zu weights differ with parameters on NVMe "
                  "(first: [%zu] %.9g vs %.9g)", name, gas, clip, world->size, differ, na, first,
                  first < na ? wa[first] : 0.0, first < na ? wb[first] : 0.0);
    train(a, 0, &w0, &n0, NULL);
    size_t moved = 0;
    for (size_t i = 0; i < n0; i++) moved += w0[i] != wa[i];
    ck_assert_msg(moved > n0 / 2, "only %zu of %zu weights moved in 10 steps", moved, n0);
    if (world->rank == 0)
        printf("  %s, gas %d, clip %g, %d rank(s): 10 steps, %zu weights bitwise equal with the "
               "parameters on NVMe\n", name, gas, clip, world->size, na);
    free(w0);
    free(wa);
    free(wb);
}

static void equivalent(int gas, double clip, const char *optim, const char *name, const char *precision,
                       const char *dtype)
{
    equivalent_with(gas, clip, optim, name, precision, dtype, "");
}

#define BF16 "\"bf16\": {\"enabled\": true}"
#define NONE "\"device\": \"none\""
#define CPU "\"device\": \"cpu\""

START_TEST(test_fp32_gas4_clip) { equivalent(4, 0.5, NONE, "fp32", "", "float32"); }
END_TEST
START_TEST(test_fp32_plain) { equivalent(1, 0, NONE, "fp32", "", "float32"); }
END_TEST
START_TEST(test_fp32_optimizer_cpu) { equivalent(2, 1.0, CPU, "fp32, optimizer cpu", "", "float32"); }
END_TEST
START_TEST(test_fp32_optimizer_nvme)
{
    char optim[900];
    snprintf(optim, sizeof optim, "\"device\": \"nvme\", \"nvme_path\": \"%s\", \"pipeline_read\": true", tmp);
    equivalent(4, 0.5, optim, "fp32, optimizer nvme", "", "float32");
}
END_TEST
START_TEST(test_bf16) { equivalent(2, 0.5, NONE, "bf16", BF16, "bfloat16"); }
END_TEST

/* ---- ledgers --------------------------------------------------------------------------- */

START_TEST(test_ledgers)
{
    char json[3000], blk[900];
    nvme_block(blk, sizeof blk, "");
    recipe(json, sizeof json, 1, 1.0, blk, NONE, "");
    zl_run r;
    run_open(&r, json, NULL, NULL);
    float loss;
    ck_assert_int_eq(zl_run_step(&r, &loss), ZL_OK);
    zl_engine *e = r.engine;
    const zl_ledger *dev = &zl_engine_device(e)->ledger, *host = &e->host->ledger;
    const zl_ledger *nv = zl_engine_nvme_ledger(e);
    ck_assert_uint_eq(zl_ledger_current(dev, "param"), 0);
    ck_assert_uint_eq(zl_ledger_current(host, "param"), 0);
    ck_assert_uint_eq(zl_ledger_current(host, "param.pageable"), 0);
    /* the files: each tensor's chunk, padded to 4096 bytes */
    size_t files = 0, largest = 0, N = (size_t)world->size;
    for (int i = 0; i < e->model.num_params; i++) {
        size_t n = e->model.params[i].numel, c = (n + N - 1) / N;
        if (!n) continue;
        files += (c * 4 + 4095) / 4096 * 4096;
        if (c > largest) largest = c;
    }
    ck_assert_uint_eq(zl_ledger_current(nv, "nvme.param"), files);
    ck_assert_uint_ge(files, 4 * e->zero.opt_numel);
    /* the pool: buffer_count buffers of the largest chunk */
    size_t pool = 3 * ((largest * 4 + 4095) / 4096 * 4096);
    ck_assert_uint_eq(zl_ledger_current(host, "nvme.param.buffers"), pool);
    if (world->rank == 0)
        printf("  ledgers, %d rank(s): NVMe %zu bytes of parameters, host pool %zu bytes, no \"param\" "
               "on device or host\n", world->size, files, pool);
    zl_run_free(&r);
}
END_TEST

/* ---- max_in_cpu ------------------------------------------------------------------------ */

/* This rank's chunk of each unit (ceil(numel / N)), in the model's order; the count. */
static int chunks(size_t *c, int cap)
{
    char json[3000], blk[900];
    nvme_block(blk, sizeof blk, "");
    recipe(json, sizeof json, 1, 1.0, blk, NONE, "");
    zl_run r;
    run_open(&r, json, NULL, NULL);
    int k = 0;
    size_t N = (size_t)world->size;
    for (int i = 0; i < r.engine->model.num_params; i++) {
        size_t n = r.engine->model.params[i].numel;
        if (!n) continue;
        ck_assert_int_lt(k, cap);
        c[k++] = (n + N - 1) / N;
    }
    zl_run_free(&r);
    return k;
}

/* max_in_cpu that keeps the first half of the units and swaps the rest: one element short
 * of also keeping the first unit of the second half. */
static long long half_kept(const size_t *c, int units, int *kept)
{
    *kept = units / 2;
    size_t sum = 0;
    for (int i = 0; i < *kept; i++) sum += c[i];
    return (long long)(sum + c[*kept] - 1);
}

START_TEST(test_max_in_cpu_ledgers)
{
    size_t c[512];
    int units = chunks(c, 512), kept;
    long long cap = half_kept(c, units, &kept);
    ck_assert_int_gt(kept, 0);
    char json[3000], blk[900], more[64];
    snprintf(more, sizeof more, ", \"max_in_cpu\": %lld", cap);
    nvme_block(blk, sizeof blk, more);
    recipe(json, sizeof json, 1, 1.0, blk, NONE, "");
    zl_run r;
    run_open(&r, json, NULL, NULL);
    float loss;
    ck_assert_int_eq(zl_run_step(&r, &loss), ZL_OK);
    zl_engine *e = r.engine;
    const zl_ledger *dev = &zl_engine_device(e)->ledger, *host = &e->host->ledger;
    const zl_ledger *nv = zl_engine_nvme_ledger(e);
    ck_assert_uint_eq(zl_ledger_current(dev, "param"), 0);
    ck_assert_uint_eq(zl_ledger_current(host, "param"), 0);
    size_t cpu = 0, files = 0, largest = 0;
    for (int i = 0; i < units; i++) {
        if (i < kept) {
            cpu += c[i] * 4;
            continue;
        }
        files += (c[i] * 4 + 4095) / 4096 * 4096;
        if (c[i] > largest) largest = c[i];
    }
    ck_assert_uint_eq(zl_ledger_current(host, "nvme.param.cpu"), cpu);
    ck_assert_uint_eq(zl_ledger_current(nv, "nvme.param"), files);
    ck_assert_uint_eq(zl_ledger_current(host, "nvme.param.buffers"), 3 * ((largest * 4 + 4095) / 4096 * 4096));
    char dir[700];
    swap_dir(dir, sizeof dir, "float32");
    ck_assert_int_eq(count_files(dir, true), units - kept);
    if (world->rank == 0)
        printf("  max_in_cpu %lld, %d rank(s): %d of %d units (%zu bytes) in host memory, %zu bytes of "
               "files\n", cap, world->size, kept, units, cpu, files);
    zl_run_free(&r);
    ck_assert_uint_eq(zl_ledger_current(host, "nvme.param.cpu"), 0);
}
END_TEST

START_TEST(test_max_in_cpu_same_bits)
{
    size_t c[512];
    int units = chunks(c, 512);
    long long cap = half_kept(c, units, &kept_units);
    char more[64];
    snprintf(more, sizeof more, ", \"max_in_cpu\": %lld", cap);
    equivalent_with(4, 0.5, NONE, "fp32, max_in_cpu half", "", "float32", more);
    kept_units = 0;
}
END_TEST

/* The default keeps this small model whole in host memory: no swap file at all. */
START_TEST(test_max_in_cpu_default)
{
    char json[3000], blk[900];
    snprintf(blk, sizeof blk, "\"device\": \"nvme\", \"nvme_path\": \"%s\"", tmp);
    recipe(json, sizeof json, 1, 1.0, blk, NONE, "");
    zl_run r;
    run_open(&r, json, NULL, NULL);
    float loss;
    ck_assert_int_eq(zl_run_step(&r, &loss), ZL_OK);
    zl_engine *e = r.engine;
    size_t cpu = 0, N = (size_t)world->size;
    for (int i = 0; i < e->model.num_params; i++) cpu += (e->model.params[i].numel + N - 1) / N * 4;
    ck_assert_uint_eq(zl_ledger_current(&e->host->ledger, "nvme.param.cpu"), cpu);
    ck_assert_uint_eq(zl_ledger_current(&e->host->ledger, "nvme.param.buffers"), 0);
    ck_assert_uint_eq(zl_ledger_current(zl_engine_nvme_ledger(e), "nvme.param"), 0);
    ck_assert_int_eq(count_files(tmp, false), 0);
    zl_run_free(&r);
}
END_TEST

/* ---- the simulated trace ------------------------------------------------------------- */

static bool overlaps(const zl_span *a, const zl_span *b) { return a->start < b->end && b->start < a->end; }

START_TEST(test_trace)
{
    char json[3000], blk[900];
    nvme_block(blk, sizeof blk, "");
    recipe(json, sizeof json, 1, 1.0, blk, NONE, "");
    char path[] = "/tmp/zl_pnvme_traceXXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    zl_run r;
    run_open(&r, json, "v100-16gb", path);
    float loss;
    ck_assert_int_eq(zl_run_step(&r, &loss), ZL_OK);
    const zl_timeline *tl = &r.sim.timeline;
    int in = 0, out = 0;
    bool overlap = false;
    for (size_t i = 0; i < tl->num_spans; i++) {
        const zl_span *s = &tl->spans[i];
        if (s->stream != ZL_STREAM_NVME) continue;
        out += !strcmp(s->name, "param_swap_out");
        if (strcmp(s->name, "param_swap_in")) continue;
        in++;
        for (size_t j = 0; j < tl->num_spans; j++)
            if (tl->spans[j].stream == ZL_STREAM_COMPUTE && overlaps(s, &tl->spans[j])) overlap = true;
    }
    ck_assert_msg(in > 0 && out > 0, "param swap in %d, out %d spans", in, out);
    ck_assert_msg(overlap, "no parameter read overlaps compute");
    if (world->rank == 0) printf("  trace: %d parameter reads, %d writes; reads overlap compute\n", in, out);
    zl_run_free(&r);
    close(fd);
    unlink(path);
}
END_TEST

/* ---- faults ---------------------------------------------------------------------------- */

static void truncated(bool all)
{
    char json[3000], blk[900];
    nvme_block(blk, sizeof blk, "");
    recipe(json, sizeof json, 1, 1.0, blk, NONE, "");
    zl_run r;
    run_open(&r, json, NULL, NULL);
    float loss;
    ck_assert_int_eq(zl_run_step(&r, &loss), ZL_OK);
    char dir[700], file[800];
    swap_dir(dir, sizeof dir, "float32");
    snprintf(file, sizeof file, "%s/0_param.tensor.swp", dir) /* the embedding: read in forward */;
    zl_test_truncate_mid_run(&r, world, file, all);
    zl_run_free(&r);
    ck_assert_int_eq(count_files(dir, false), -1);
}

START_TEST(test_truncated_everywhere) { truncated(true); }
END_TEST
START_TEST(test_truncated_rank0) { truncated(false); }
END_TEST

START_TEST(test_small_buffer)
{
    char json[3000], blk[900];
    snprintf(blk, sizeof blk, "\"device\": \"nvme\", \"nvme_path\": \"%s\", \"buffer_size\": 100, \"max_in_cpu\": 0", tmp);
    recipe(json, sizeof json, 1, 1.0, blk, NONE, "");
    zl_run r;
    ck_assert_int_eq(run_try(&r, json, NULL, NULL), ZL_ERR_CONFIG);
    ck_assert_msg(strstr(zl_last_error(), "offload_param.buffer_size"), "%s", zl_last_error());
    ck_assert_int_eq(count_files(tmp, false), 0);
    if (world->rank == 0) printf("  small buffer_size: %s\n", zl_last_error());
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
             " \"offload_param\": {\"device\": \"nvme\", \"nvme_path\": \"/local_nvme\", \"buffer_count\": 7,"
             " \"buffer_size\": 12345, \"max_in_cpu\": 99, \"pin_memory\": true}}}");
    ck_assert_msg(check(json, &o) == ZL_OK, "%s", zl_last_error());
    ck_assert(o.offload_param_nvme && !o.offload_param && o.offload_param_pin_memory);
    ck_assert_str_eq(o.param_nvme_path, "/local_nvme");
    ck_assert_int_eq(o.param_buffer_count, 7);
    ck_assert_int_eq(o.param_buffer_size, 12345);
    ck_assert_int_eq(o.param_max_in_cpu, 99);
    /* DeepSpeed's 0 keeps nothing on the host (the engine's 0 would mean its default, 1e9) */
    snprintf(json, sizeof json, "{\"train_micro_batch_size_per_gpu\": 4, \"zero_optimization\": {\"stage\": 3,"
                                " \"offload_param\": {\"device\": \"nvme\", \"nvme_path\": \"/x\", \"max_in_cpu\": 0}}}");
    ck_assert_msg(check(json, &o) == ZL_OK, "%s", zl_last_error());
    ck_assert_int_lt(o.param_max_in_cpu, 0);
    snprintf(json, sizeof json, "{\"train_micro_batch_size_per_gpu\": 4, \"zero_optimization\": "
                                "{\"stage\": 3, \"offload_param\": {\"device\": \"nvme\"}}}");
    ck_assert_int_eq(check(json, &o), ZL_ERR_CONFIG);
    ck_assert_msg(strstr(zl_last_error(), "offload_param") && strstr(zl_last_error(), "nvme_path"), "%s",
                  zl_last_error());
    snprintf(json, sizeof json, "{\"train_micro_batch_size_per_gpu\": 4, \"zero_optimization\": "
                                "{\"stage\": 3, \"offload_param\": {\"device\": \"nvme\", "
                                "\"nvme_path\": \"/x\"}}, \"aio\": {\"block_size\": 1000}}");
    ck_assert_int_eq(check(json, &o), ZL_ERR_CONFIG);
    ck_assert_msg(strstr(zl_last_error(), "aio.block_size"), "%s", zl_last_error());
}
END_TEST

static void rm_tree_top(void) { rmdir(tmp); }

static Suite *pnvme_suite(void)
{
    const char *base = getenv("TMPDIR");
    if (!base || !base[0]) base = "/var/tmp";
    snprintf(tmp, sizeof tmp, "%s/zl_pnvme_XXXXXX", base);
    if (!mkdtemp(tmp)) {
        fprintf(stderr, "mkdtemp %s: %s\n", tmp, strerror(errno));
        abort();
    }
    atexit(rm_tree_top);
    Suite *s = suite_create("pnvme");
    TCase *tc = tcase_create("pnvme");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_config);
    tcase_add_test(tc, test_ledgers);
    tcase_add_test(tc, test_trace);
    tcase_add_test(tc, test_fp32_gas4_clip);
    tcase_add_test(tc, test_fp32_plain);
    tcase_add_test(tc, test_fp32_optimizer_cpu);
    tcase_add_test(tc, test_fp32_optimizer_nvme);
    tcase_add_test(tc, test_bf16);
    tcase_add_test(tc, test_truncated_everywhere);
    tcase_add_test(tc, test_truncated_rank0);
    tcase_add_test(tc, test_small_buffer);
    tcase_add_test(tc, test_max_in_cpu_ledgers);
    tcase_add_test(tc, test_max_in_cpu_same_bits);
    tcase_add_test(tc, test_max_in_cpu_default);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return zl_test_run_mpi_with(pnvme_suite, &world); }
