/* Lab 12: checkpoints (2 ranks). See README.md.
 *
 * Both modes first train a small GPT (127578 parameters) at 2 ranks with ZeRO-2 in bf16 and save a
 * checkpoint under the lab's folder (lab_path: nothing leaks).
 *   check: the student's consolidation against `zerolab ckpt to-fp32`'s (zl_ckpt_to_fp32),
 *          bitwise, and the student's 2 -> M resharding reads against the library's reshape
 *          (zl_ckpt_reshape: the shards M ranks write, placed by the same fragments the
 *          engine's load reads), as reads and bitwise as bytes, for M = 1, 3, 4.
 *   demo:  the checkpoint's files, the consolidated vector's norm, the reads of 2 -> 1, and
 *          the resume: the 2-rank checkpoint of step 3 loaded by a 1-rank run on rank 0,
 *          whose losses continue those of the uninterrupted 2-rank run. */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lab.h"
#include "student.h"

/* 16 sequences per step: 2 ranks x micro 4 x accumulation 2, or 1 rank x 4 x 4. */
static const char cfg[] =
    "{\"train_batch_size\": 16, \"train_micro_batch_size_per_gpu\": 4,"
    " \"bf16\": {\"enabled\": true},"
    " \"zero_optimization\": {\"stage\": 2},"
    " \"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": 1e-3}},"
    " \"steps_per_print\": 1000}";
/* A small GPT whose parameter count, 127578, is not a multiple of 4: ZeRO pads it at 2 ranks
 * (to 2 x 2) and at 4 (to 2 x 4), so the consolidation has padding to drop. */
static const zl_gpt_config lab12_model = {"lab12", 257, 64, 2, 3, 66};
#define STEPS 6
#define SAVE_AT 3

/* Train `steps` steps on comm (NULL: one rank of its own), after loading load_dir if set;
 * save into save_dir after the last if set. losses[k]: step k+1's loss, the mean over the
 * data-parallel ranks (what one rank over the whole batch computes). */
static int train(lab *L, zl_comm *comm, long steps, const char *load_dir, const char *save_dir,
                 const char *trace, float *losses, long *first)
{
    zl_run_options o;
    zl_run_options_init(&o);
    o.config_text = cfg;
    o.config_name = "lab12 config";
    o.model_config = &lab12_model;
    o.steps = steps;
    o.seed = 1234;
    o.device = "v100-16gb";
    o.comm = comm;
    o.trace = trace;
    zl_run run;
    zl_status st = zl_run_init(&run, &o);
    if (st == ZL_OK && load_dir) st = zl_run_load(&run, load_dir, NULL, NULL);
    if (first) *first = run.step + 1;
    while (st == ZL_OK && run.step < steps) {
        float loss = 0;
        st = zl_run_step(&run, &loss);
        if (st == ZL_OK) losses[run.step - 1] = zl_engine_dp_mean(run.engine, loss);
    }
    if (st == ZL_OK && save_dir) st = zl_run_save(&run, save_dir, NULL);
    if (st == ZL_OK && trace) st = zl_run_write_trace(&run, trace);
    if (st != ZL_OK) lab_printf(L, "  the run failed: %s\n", zl_last_error());
    zl_run_free(&run);
    return st == ZL_OK ? 0 : -1;
}

/* A shard's fragments ([flat, numel, local] in its JSON: where its elements sit in the
 * flat vector). */
static int fragments(const zl_ckpt_file *f, zl_ckpt_fragment *out, int cap)
{
    const json_t *fr = json_object_get(zl_ckpt_file_state(f), "fragments");
    int n = 0;
    for (size_t i = 0; i < json_array_size(fr) && n < cap; i++) {
        const json_t *t = json_array_get(fr, i);
        out[n++] = (zl_ckpt_fragment){(size_t)json_integer_value(json_array_get(t, 0)),
                                      (size_t)json_integer_value(json_array_get(t, 1)),
                                      (size_t)json_integer_value(json_array_get(t, 2))};
    }
    return n;
}

/* The library's reads of new rank r: its new shard's fragments against the old shards'. */
static int oracle_reads(zl_ckpt *old, zl_ckpt *neu, int r, lab12_read *out, int cap)
{
    zl_ckpt_fragment nf[16], of[16];
    int nn = fragments(zl_ckpt_shard(neu, r), nf, 16), k = 0;
    for (int i = 0; i < nn; i++)
        for (int o = 0; o < zl_ckpt_num_shards(old); o++) {
            int no = fragments(zl_ckpt_shard(old, o), of, 16);
            for (int j = 0; j < no; j++) {
                size_t lo = nf[i].flat > of[j].flat ? nf[i].flat : of[j].flat;
                size_t hi = nf[i].flat + nf[i].numel < of[j].flat + of[j].numel
                                ? nf[i].flat + nf[i].numel : of[j].flat + of[j].numel;
                if (lo >= hi || k == cap) continue;
                out[k++] = (lab12_read){o, 4 * (of[j].local + lo - of[j].flat), 4 * (hi - lo),
                                        4 * (nf[i].local + lo - nf[i].flat)};
            }
        }
    /* in increasing new offset */
    for (int a = 1; a < k; a++)
        for (int b = a; b > 0 && out[b].new_offset < out[b - 1].new_offset; b--) {
            lab12_read t = out[b];
            out[b] = out[b - 1];
            out[b - 1] = t;
        }
    return k;
}

static const char *const state_names[] = {"fp32_flat", "exp_avg", "exp_avg_sq"};

/* Apply reads to the old shards' tensors; compare with the new shard's, bit for bit.
 * Returns the number of differing elements (or -1 on a bad read). */
static long apply_and_compare(zl_ckpt *old, zl_ckpt_file *nshard, const lab12_read *rd, int n)
{
    long bad = 0;
    for (int t = 0; t < 3; t++) {
        size_t numel = 0;
        if (zl_ckpt_file_tensor(nshard, state_names[t], NULL, NULL, NULL, &numel) != ZL_OK) return -1;
        float *want = calloc(numel + 1, sizeof *want), *got = calloc(numel + 1, sizeof *got);
        if (!want || !got || zl_ckpt_file_read(nshard, state_names[t], 0, numel, ZL_F32, want) != ZL_OK) {
            free(want), free(got);
            return -1;
        }
        size_t covered = 0;
        for (int i = 0; i < n && bad >= 0; i++) {
            if (rd[i].old_rank < 0 || rd[i].old_rank >= zl_ckpt_num_shards(old) || rd[i].nbytes % 4 ||
                rd[i].old_offset % 4 || rd[i].new_offset % 4 || rd[i].new_offset / 4 + rd[i].nbytes / 4 > numel ||
                zl_ckpt_file_read(zl_ckpt_shard(old, rd[i].old_rank), state_names[t], rd[i].old_offset / 4,
                                  rd[i].nbytes / 4, ZL_F32, got + rd[i].new_offset / 4) != ZL_OK)
                bad = -1;
            covered += rd[i].nbytes / 4;
        }
        /* what was not read stays 0: the new padding */
        for (size_t i = 0; i < numel && bad >= 0; i++) bad += memcmp(&got[i], &want[i], 4) != 0;
        (void)covered;
        free(want), free(got);
        if (bad < 0) return -1;
    }
    return bad;
}

/* The model's fp32 weights as `zerolab ckpt to-fp32` writes them, read back by name into
 * flat order. */
static int library_fp32(lab *L, zl_ckpt *c, float *out)
{
    const char *path = lab_path(L, "consolidated.safetensors");
    char p[640];
    snprintf(p, sizeof p, "%s", path);
    if (zl_ckpt_to_fp32(c, p, NULL) != ZL_OK) return -1;
    zl_safetensors *st;
    if (zl_safetensors_open(&st, p) != ZL_OK) return -1;
    int rc = 0;
    for (int i = 0; i < zl_ckpt_num_params(c) && rc == 0; i++) {
        const zl_ckpt_param *pa = zl_ckpt_param_at(c, i);
        const zl_safetensors_tensor *t = NULL;
        for (int k = 0; k < zl_safetensors_num_tensors(st); k++)
            if (strcmp(zl_safetensors_tensor_at(st, k)->name, pa->name) == 0)
                t = zl_safetensors_tensor_at(st, k);
        if (!t || t->numel != pa->numel || t->zl_type != ZL_F32) rc = -1;
        else memcpy(out + pa->offset, t->data, pa->numel * sizeof(float));
    }
    zl_safetensors_close(st);
    return rc;
}

static double norm(const float *x, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return sqrt(s);
}

/* ---- check ------------------------------------------------------------------------------- */

static void grade(lab *L, const char *dir)
{
    bool ok0 = true;
    zl_ckpt *c = NULL;
    if (L->rank == 0 && zl_ckpt_open(&c, dir, NULL, false, false) != ZL_OK) {
        lab_printf(L, "  cannot open the checkpoint: %s\n", zl_last_error());
        ok0 = false;
    }
    /* Consolidation: rank 0 grades, the other rank agrees. */
    size_t numel = c ? zl_ckpt_numel(c) : 0;
    /* room past the end: a wrong answer that writes the padding must not crash the card */
    float *mine = c ? calloc(numel + 64, sizeof *mine) : NULL, *lib = c ? calloc(numel, sizeof *lib) : NULL;
    int rc = 0;
    long diff = -1, past = 0; /* elements differing; written past the end (the padding) */
    if (L->rank == 0 && ok0) {
        for (size_t i = 0; i < numel + 64; i++) mine[i] = NAN;
        rc = student_consolidate(c, mine, numel);
        if (rc != LAB_NOT_DONE && library_fp32(L, c, lib) == 0) {
            diff = 0;
            for (size_t i = 0; i < numel; i++) diff += memcmp(&mine[i], &lib[i], 4) != 0;
            for (size_t i = numel; i < numel + 64; i++) past += !isnan(mine[i]);
        }
    }
    zl_comm_broadcast(L->world, &rc, 1, ZL_I32, 0);
    if (rc == LAB_NOT_DONE)
        lab_check(L, "consolidate to fp32 (bitwise)", false, "= zerolab ckpt to-fp32", "not written");
    else
        lab_check(L, "consolidate to fp32 (bitwise)",
                  L->rank != 0 || (ok0 && rc == 0 && diff == 0 && past == 0), "= zerolab ckpt to-fp32",
                  "%ld of %zu differ%s", diff, numel,
                  rc ? " (returned an error)" : past ? " + wrote padding past the end" : "");
    free(mine);
    free(lib);

    /* Resharding 2 -> M. */
    static const int Ms[] = {1, 3, 4};
    for (int i = 0; i < 3; i++) {
        int M = Ms[i], good = 0, tried = 0;
        long bad = 0;
        rc = 0;
        char first[160] = "";
        if (L->rank == 0 && ok0) {
            char out[640];
            snprintf(out, sizeof out, "%s/reshape-%d", L->out_dir, M);
            zl_ckpt *n = NULL;
            if (zl_ckpt_reshape(c, out, M, zl_ckpt_zero_stage(c)) != ZL_OK ||
                zl_ckpt_open(&n, out, NULL, false, false) != ZL_OK) {
                snprintf(first, sizeof first, "the library's reshape failed: %s", zl_last_error());
                bad = -1;
            }
            for (int r = 0; n && r < M; r++) {
                lab12_read want[16], got[16];
                int nw = oracle_reads(c, n, r, want, 16), ng = -1;
                memset(got, 0xff, sizeof got);
                rc = student_reshard(numel, zl_ckpt_num_shards(c), M, r, got, 16, &ng);
                if (rc == LAB_NOT_DONE) break;
                tried++;
                bool same = rc == 0 && ng == nw;
                int k = 0;
                for (; same && k < nw; k++)
                    same = got[k].old_rank == want[k].old_rank && got[k].old_offset == want[k].old_offset &&
                           got[k].nbytes == want[k].nbytes && got[k].new_offset == want[k].new_offset;
                good += same;
                if (!same && !first[0]) {
                    k = k > 0 ? k - 1 : 0;
                    if (rc != 0 || ng != nw)
                        snprintf(first, sizeof first, "first: new rank %d: %d reads, expected %d", r,
                                 rc ? -1 : ng, nw);
                    else
                        snprintf(first, sizeof first, "first: new rank %d, read %d: old rank %d bytes "
                                 "%zu+%zu -> %zu, expected old rank %d bytes %zu+%zu -> %zu", r, k,
                                 got[k].old_rank, got[k].old_offset, got[k].nbytes, got[k].new_offset,
                                 want[k].old_rank, want[k].old_offset, want[k].nbytes, want[k].new_offset);
                }
                long b = rc == 0 && ng >= 0 && ng <= 16 ? apply_and_compare(c, zl_ckpt_shard(n, r), got, ng) : -1;
                bad = bad < 0 || b < 0 ? -1 : bad + b;
            }
            if (n) zl_ckpt_close(n);
        }
        zl_comm_broadcast(L->world, &rc, 1, ZL_I32, 0);
        char item[64], item2[64];
        snprintf(item, sizeof item, "reshard 2 -> %d: the reads", M);
        snprintf(item2, sizeof item2, "reshard 2 -> %d: the state (bitwise)", M);
        if (rc == LAB_NOT_DONE) {
            lab_check(L, item, false, "= the library's reshape", "not written");
            lab_check(L, item2, false, "= zerolab ckpt reshape", "not written");
            continue;
        }
        if (!lab_check(L, item, L->rank != 0 || (good == tried && tried == M), "= the library's reshape",
                       "%d/%d ranks", good, M) && first[0])
            lab_printf(L, "    %s\n", first);
        lab_check(L, item2, L->rank != 0 || bad == 0, "= zerolab ckpt reshape",
                  bad < 0 ? "a read failed" : "%ld elements differ", bad);
    }
    if (c) zl_ckpt_close(c);
}

/* ---- demo -------------------------------------------------------------------------------- */

static void list_files(lab *L, const char *dir, const char *tag)
{
    char path[1024];
    if (snprintf(path, sizeof path, "%s/%s", dir, tag) >= (int)sizeof path) return;
    DIR *d = opendir(path);
    if (!d) return;
    lab_printf(L, "\n  the checkpoint: %s/ (and %s/latest naming it)\n  %-62s %10s\n", path, dir,
               "file", "bytes");
    struct dirent *e;
    char names[64][256];
    int n = 0;
    while ((e = readdir(d)) && n < 64)
        if (e->d_name[0] != '.') snprintf(names[n++], 256, "%s", e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], (int (*)(const void *, const void *))strcmp);
    long total = 0;
    for (int i = 0; i < n; i++) {
        struct stat sb;
        char f[1400];
        if (snprintf(f, sizeof f, "%s/%s", path, names[i]) >= (int)sizeof f || stat(f, &sb) != 0)
            continue;
        lab_printf(L, "  %-62s %10ld\n", names[i], (long)sb.st_size);
        total += (long)sb.st_size;
        lab_csv(L, names[i], (double)sb.st_size, "B");
    }
    lab_printf(L, "  %-62s %10ld\n", "total", total);
}

static void demo(lab *L, const char *dir)
{
    if (L->size != 2) {
        lab_printf(L, "  this demo needs 2 ranks (make lab12 runs it so)\n");
        return;
    }
    /* The uninterrupted 2-rank run, for reference. */
    float ref[STEPS] = {0}, part[STEPS] = {0}, resumed[STEPS] = {0};
    int rc = train(L, L->world, STEPS, NULL, NULL, NULL, ref, NULL);
    /* The interrupted one: 3 steps, saved (written by the engine: every rank its shard). */
    if (rc == 0) rc = train(L, L->world, SAVE_AT, NULL, dir, lab_path(L, "trace.json"), part, NULL);
    if (rc != 0) return;
    zl_ckpt *c = NULL;
    if (L->rank == 0 && zl_ckpt_open(&c, dir, NULL, false, false) == ZL_OK) {
        list_files(L, dir, zl_ckpt_tag(c));
        size_t numel = zl_ckpt_numel(c);
        float *w = malloc(numel * sizeof *w);
        const char *whose = "yours";
        if (w && student_consolidate(c, w, numel) != 0) {
            whose = "the library's: yours is not written yet";
            zl_ckpt_read_fp32(c, 0, numel, w);
        }
        if (w) {
            lab_printf(L, "\n  consolidated fp32 weights (%s): %zu elements, norm %.6f\n", whose,
                       numel, norm(w, numel));
            lab_csv(L, "consolidated numel", (double)numel, "");
            lab_csv(L, "consolidated norm", norm(w, numel), "");
        }
        free(w);
        lab12_read rd[16];
        int n = 0;
        if (student_reshard(numel, 2, 1, 0, rd, 16, &n) == 0) {
            lab_printf(L, "\n  resuming at 1 rank: its partition reads (yours)\n");
            for (int i = 0; i < n; i++)
                lab_printf(L, "    old rank %d bytes [%zu, %zu) -> new bytes [%zu, %zu)\n", rd[i].old_rank,
                           rd[i].old_offset, rd[i].old_offset + rd[i].nbytes, rd[i].new_offset,
                           rd[i].new_offset + rd[i].nbytes);
        }
        zl_ckpt_close(c);
    }
    /* The resume on another world size: rank 0 alone (a run on its own communicator)
     * loads the 2-rank checkpoint and trains steps 4-6 with the same global batch. */
    long first = 0;
    int rc1 = 0;
    if (L->rank == 0) rc1 = train(L, NULL, STEPS, dir, NULL, NULL, resumed, &first);
    lab_printf(L, "\n  the loss across the save (step %d) and the resume at 1 rank:\n"
                  "  %4s %14s %14s %10s\n", SAVE_AT, "step", "2 ranks", "saved/resumed", "|diff|");
    double worst = 0;
    for (int k = 0; k < STEPS; k++) {
        float other = k < SAVE_AT ? part[k] : resumed[k];
        double dd = fabs((double)ref[k] - other);
        if (k >= SAVE_AT && dd > worst) worst = dd;
        lab_printf(L, "  %4d %14.6f %14.6f %10.2e %s\n", k + 1, ref[k], other, dd,
                   k < SAVE_AT ? "2 ranks, then saved" : "1 rank, resumed");
        char name[64];
        snprintf(name, sizeof name, "loss step %d uninterrupted", k + 1);
        lab_csv(L, name, ref[k], "");
        snprintf(name, sizeof name, "loss step %d saved/resumed", k + 1);
        lab_csv(L, name, other, "");
    }
    lab_check(L, "resumed at 1 rank: losses continue", L->rank != 0 || (rc1 == 0 && first == SAVE_AT + 1 && worst < 1e-3),
              "|diff| < 1e-3 (bf16)", "%.2e", worst);
}

int main(int argc, char **argv)
{
    lab L;
    int rc = lab_begin(&L, argc, argv, "12", "Checkpoints");
    if (rc != 0) return rc;
    char dir[600];
    snprintf(dir, sizeof dir, "%s/ckpt", L.out_dir);
    if (L.check) {
        float losses[STEPS];
        if (train(&L, L.world, 2, NULL, dir, NULL, losses, NULL) == 0) grade(&L, dir);
        else lab_check(&L, "a 2-rank ZeRO-2 checkpoint", false, "saved", "failed");
    } else {
        demo(&L, dir);
    }
    return lab_end(&L);
}
