/* ZeRO-Infinity's optimizer swapping (offload_optimizer.device "nvme", stage 3): the
 * optimizer's partition lives in swap files under nvme_path, not in host memory, and the
 * step on the CPU walks it one sub-group at a time through a pool of pinned buffers, as
 * DeepSpeed's stage-3 optimizer does with its OptimizerSwapper
 * (runtime/swap_tensor/partitioned_optimizer_swapper.py, pipelined_optimizer_swapper.py).
 *
 * Layout. This rank's partition (P elements: the stage-3 shard) is cut into G sub-groups
 * of sub_group_size elements (the last one shorter). DeepSpeed closes a sub-group at the
 * first parameter boundary at or past sub_group_size; zerolab's shard is one contiguous
 * range, so its sub-groups are consecutive tiles of exactly sub_group_size elements (the
 * same count, give or take one, and never larger, which bounds the pool). Sub-group g has
 * three files in <nvme_path>/zero_stage_3/optimizer/rank<R>/ (src/io/swap_layout.h):
 *
 *   <3g>.tensor.swp     f32 master weights    ledger "nvme.master"
 *   <3g+1>.tensor.swp   Adam's exp_avg (m)    ledger "nvme.adam.m"
 *   <3g+2>.tensor.swp   Adam's exp_avg_sq (v) ledger "nvme.adam.v"
 *
 * each padded to 4096 bytes. They are created (allocated: a full disk fails here, naming
 * the file) when the engine is, the master files written with the initial weights (m and
 * v read as zeros: fallocated space is zeros), and removed with the engine, on failure
 * paths too. DeepSpeed also swaps the fp32 gradient (<id>_gradient_<off>_<n>.tensor.swp)
 * when its host gradient buffer is spent; zerolab keeps the reduced gradient shard on the
 * device until the boundary and copies each sub-group's slice straight into a pool buffer,
 * so there are no gradient files ("nvme.grad" stays 0).
 *
 * The pool: per sub-group in flight a set of three buffers (master, m, v), one set with
 * no pipelining, two with pipeline_read or pipeline_write, three with both; and two more,
 * the f32 gradient slice and the rounded parameters bound for the device. Each buffer
 * holds one sub-group (sub_group_size f32, padded). buffer_count is honoured as a floor:
 * the pool holds max(buffer_count, 3 x sets + 2) buffers (DeepSpeed's default 4 is its
 * count of a sub-group's tensors, parameter, gradient and two moments). The host ledger
 * holds the pool ("nvme.buffers") and nothing else of the optimizer.
 *
 * The step, per sub-group g (two aio engines, reads and writes, so that waiting for a
 * read does not wait for the writes behind it):
 *   wait read(g); [pipeline_read: issue read(g+1)]
 *   D2H the gradient slice, Adam on the host (the host device's kernel, over the pool's
 *   buffers: the same kernel and numbers as the cpu offload and as no offload), H2D the
 *   rounded slice into the device's parameter shard (with offload_param nvme: into the
 *   parameters' swap files instead, zero/offload_nvme_param.c);
 *   pipeline_write: wait write(g-1), issue write(g); otherwise write(g) and wait;
 *   [no pipeline_read: issue read(g+1)]
 * and at the end the last write is waited for. Bits are as without offload: the files
 * hold exactly the f32 values the host kept, and the kernel is element-wise.
 *
 * Errors (a full disk, a missing or unwritable folder, a swap file truncated behind the
 * engine's back: a short read) come from src/io naming the file. The step waits for
 * everything in flight, then the data-parallel ranks agree on the status, so every rank
 * fails the step together (the one that hit it with the message, the others naming it)
 * instead of one entering the allgather alone.
 *
 * On a simulated card, reads and writes are charged to the NVMe stream at the node's NVMe
 * bandwidth (zl_sim_nvme), the step to the host compute stream, so `--trace` shows
 * swap-in, step and swap-out overlapping when pipelined and in sequence when not. On the
 * meta backend (plans) nothing is created or moved: the ledgers and the clock only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "io/swap_file.h"
#include "io/swap_layout.h"
#include "io/swap_pool.h"
#include "zero/zero_internal.h"

enum { NV_MASTER, NV_M, NV_V, NV_STATES };
static const char *const state_tag[NV_STATES] = {"nvme.master", "nvme.adam.m", "nvme.adam.v"};
#define NV_MAX_SETS 3

typedef struct zl_zero_nvme {
    bool real;             /* files and buffers exist (not the meta backend) */
    size_t numel;          /* the partition */
    size_t group_numel;    /* sub_group_size, at most numel */
    int groups;            /* G */
    int sets;              /* buffer sets in flight: 1 + pipeline_read + pipeline_write */
    zl_swap_dir *dir;
    zl_swap_file **files;  /* [G][NV_STATES] */
    size_t *ledgered;      /* [NV_STATES]: bytes recorded in the NVMe ledger */
    zl_aio *rd, *wr;
    zl_swap_pool *pool;
    size_t pool_ledgered;  /* bytes recorded in the host ledger */
    float *buf[NV_MAX_SETS][NV_STATES];
    float *grad;           /* (group_numel) f32: the gradient slice */
    void *out;             /* (group_numel) dtype: the rounded slice for the device */
    zl_param_range *ranges; /* the step's ranges cut to a sub-group */
    int cap_ranges;
    /* master_init: the sub-group being filled (in buf[0][NV_MASTER]), -1 none; which
     * sub-groups' master files hold their values; the first failure. */
    int fill;
    bool *written;
    zl_status init_st;
} zl_zero_nvme;

static size_t group_begin(const zl_zero_nvme *s, int g) { return (size_t)g * s->group_numel; }
static size_t group_len(const zl_zero_nvme *s, int g)
{
    size_t b = group_begin(s, g);
    return s->numel - b < s->group_numel ? s->numel - b : s->group_numel;
}
static zl_swap_file *file_of(zl_zero_nvme *s, int g, int k) { return s->files[g * NV_STATES + k]; }

static void record(zl_zero_ctx *z, int k, size_t nbytes)
{
    if (zl_ledger_alloc(z->nvme_ledger, state_tag[k], nbytes) == ZL_OK) z->nvme_state->ledgered[k] += nbytes;
}

zl_status zl__zero_nvme_alloc(zl_zero_ctx *z, size_t numel)
{
    const zl_zero_nvme_options *o = &z->nvme_opt;
    ZL_ASSERT(z->nvme_ledger);
    zl_zero_nvme *s = z->nvme_state = calloc(1, sizeof *s);
    if (!s) return zl_errorf(ZL_ERR_NOMEM, "out of host memory");
    s->fill = -1;
    s->real = !z->device->ops->meta;
    s->numel = numel;
    if (o->sub_group_size <= 0)
        return zl_errorf(ZL_ERR_CONFIG, "zero_optimization.sub_group_size must be positive, got %lld",
                         (long long)o->sub_group_size);
    s->group_numel = (size_t)o->sub_group_size < numel ? (size_t)o->sub_group_size : numel;
    s->groups = s->group_numel ? (int)((numel + s->group_numel - 1) / s->group_numel) : 0;
    s->sets = 1 + (o->pipeline_read ? 1 : 0) + (o->pipeline_write ? 1 : 0);
    if (!numel) return ZL_OK; /* an empty partition: nothing to swap */
    s->files = calloc((size_t)s->groups * NV_STATES + 1, sizeof *s->files);
    s->ledgered = calloc(NV_STATES, sizeof *s->ledgered);
    s->written = calloc((size_t)s->groups + 1, sizeof *s->written);
    if (!s->files || !s->ledgered || !s->written) return zl_errorf(ZL_ERR_NOMEM, "out of host memory");
    size_t buf_nbytes = zl_swap_padded(s->group_numel * sizeof(float));
    int need = NV_STATES * s->sets + 2;
    int count = o->buffer_count > need ? o->buffer_count : need;
    if (!s->real) { /* a plan: what the files and the pool would hold */
        for (int g = 0; g < s->groups; g++)
            for (int k = 0; k < NV_STATES; k++) record(z, k, zl_swap_padded(group_len(s, g) * sizeof(float)));
        zl_status st = zl_ledger_alloc(&z->host->ledger, "nvme.buffers", (size_t)count * buf_nbytes);
        if (st == ZL_OK) s->pool_ledgered = (size_t)count * buf_nbytes;
        return st;
    }
    if (!o->nvme_path || !o->nvme_path[0])
        return zl_errorf(ZL_ERR_CONFIG, "zero_optimization.offload_optimizer.nvme_path is not set: "
                         "device \"nvme\" swaps the optimizer state to files under it\n"
                         "  hint: set \"nvme_path\" to a directory on a fast local drive");
    char sub[128];
    zl_status st;
    if ((st = zl_swap_optimizer_subdir(sub, sizeof sub, o->rank)) != ZL_OK ||
        (st = zl_swap_dir_open(&s->dir, o->nvme_path, sub)) != ZL_OK)
        return st;
    if ((st = zl_aio_create(&s->rd, &o->aio, ZL_AIO_AUTO)) != ZL_OK ||
        (st = zl_aio_create(&s->wr, &o->aio, ZL_AIO_AUTO)) != ZL_OK)
        return st;
    if ((st = zl_swap_pool_create(&s->pool, count, buf_nbytes, z->pin_memory)) != ZL_OK) return st;
    s->pool_ledgered = zl_swap_pool_total_nbytes(s->pool);
    if ((st = zl_ledger_alloc(&z->host->ledger, "nvme.buffers", s->pool_ledgered)) != ZL_OK) {
        s->pool_ledgered = 0;
        return st;
    }
    for (int i = 0; i < s->sets; i++)
        for (int k = 0; k < NV_STATES; k++) s->buf[i][k] = zl_swap_pool_acquire(s->pool);
    s->grad = zl_swap_pool_acquire(s->pool);
    s->out = zl_swap_pool_acquire(s->pool);
    for (int g = 0; g < s->groups; g++)
        for (int k = 0; k < NV_STATES; k++) {
            char name[64];
            size_t nbytes = group_len(s, g) * sizeof(float);
            if ((st = zl_swap_optimizer_file_name(name, sizeof name, (int64_t)g * NV_STATES + k)) != ZL_OK ||
                (st = zl_swap_file_create(&s->files[g * NV_STATES + k], s->dir, name, nbytes)) != ZL_OK)
                return st;
            record(z, k, zl_swap_file_padded_nbytes(s->files[g * NV_STATES + k]));
        }
    zl_log_debug("nvme: %d sub-group(s) of %zu elements in %s (%s, pool of %d x %zu bytes)",
                 s->groups, s->group_numel, zl_swap_dir_path(s->dir), zl_aio_backend_name(s->rd),
                 count, buf_nbytes);
    return ZL_OK;
}

/* Write the sub-group being filled to its master file (and wait). */
static zl_status flush_fill(zl_zero_ctx *z)
{
    zl_zero_nvme *s = z->nvme_state;
    int g = s->fill;
    if (g < 0) return ZL_OK;
    s->fill = -1;
    zl_status st = zl_swap_file_write(file_of(s, g, NV_MASTER), s->wr, s->buf[0][NV_MASTER],
                                      group_len(s, g) * sizeof(float), 0);
    zl_status wst = zl_aio_wait(s->wr, NULL);
    if (st == ZL_OK) st = wst;
    if (st == ZL_OK) s->written[g] = true;
    return st;
}

/* Make sub-group g the one being filled: its values so far (or zeros). */
static zl_status start_fill(zl_zero_ctx *z, int g)
{
    zl_zero_nvme *s = z->nvme_state;
    zl_status st = flush_fill(z);
    if (st != ZL_OK) return st;
    float *b = s->buf[0][NV_MASTER];
    size_t nbytes = group_len(s, g) * sizeof(float);
    if (!s->written[g]) {
        memset(b, 0, zl_swap_padded(nbytes));
    } else {
        zl_status rst = zl_swap_file_read(file_of(s, g, NV_MASTER), s->rd, b, nbytes, 0);
        st = zl_aio_wait(s->rd, NULL);
        if (rst != ZL_OK) return rst;
        if (st != ZL_OK) return st;
    }
    s->fill = g;
    return ZL_OK;
}

/* master[off, off + n) from the device's values (dtype): through the pool's out buffer
 * (a D2H copy), widened by the host into the sub-group being filled; a sub-group is
 * written when its last element arrives (stage 3 gives its chunks in shard order). */
void zl__zero_nvme_master_init(zl_zero_ctx *z, size_t off, const void *src, size_t n)
{
    zl_zero_nvme *s = z->nvme_state;
    if (!s->real || s->init_st != ZL_OK) return;
    zl_dtype t = z->prec->dtype;
    size_t psz = zl_dtype_nbytes(t);
    while (n) {
        int g = (int)(off / s->group_numel);
        size_t in = off - group_begin(s, g), len = group_len(s, g) - in;
        if (len > n) len = n;
        zl_status st = s->fill == g ? ZL_OK : start_fill(z, g);
        if (st == ZL_OK) st = zl_device_copy(z->host, s->out, z->device, src, len * psz);
        if (st != ZL_OK) {
            s->init_st = st;
            return;
        }
        zl_device_copy_wait(z->device);
        z->host->ops->cast(z->host->ops, s->buf[0][NV_MASTER] + in, ZL_F32, s->out, t, len);
        if (in + len == group_len(s, g) && (st = flush_fill(z)) != ZL_OK) {
            s->init_st = st;
            return;
        }
        off += len;
        n -= len;
        src = (const char *)src + len * psz;
    }
}

zl_status zl__zero_nvme_init_status(zl_zero_ctx *z)
{
    zl_zero_nvme *s = z->nvme_state;
    if (!s) return ZL_OK;
    if (s->init_st == ZL_OK) s->init_st = flush_fill(z); /* a sub-group left open */
    return s->init_st;
}

/* Queue the reads of sub-group g's master, m and v into buffer set `set`. */
static zl_status issue_read(zl_zero_ctx *z, int g, int set)
{
    zl_zero_nvme *s = z->nvme_state;
    size_t nbytes = group_len(s, g) * sizeof(float);
    zl_status st = ZL_OK;
    for (int k = 0; k < NV_STATES && st == ZL_OK; k++)
        st = zl_swap_file_read(file_of(s, g, k), s->rd, s->buf[set][k], nbytes, 0);
    return st;
}

static zl_status issue_write(zl_zero_ctx *z, int g, int set)
{
    zl_zero_nvme *s = z->nvme_state;
    size_t nbytes = group_len(s, g) * sizeof(float);
    zl_status st = ZL_OK;
    for (int k = 0; k < NV_STATES && st == ZL_OK; k++)
        st = zl_swap_file_write(file_of(s, g, k), s->wr, s->buf[set][k], nbytes, 0);
    return st;
}

/* The simulated clock of the same schedule: when each read and write ends. */
typedef struct nvme_clock {
    zl_sim *sim;
    double read_end, write_end;
} nvme_clock;

static void clock_read(nvme_clock *c, double bytes)
{
    if (c->sim) c->read_end = zl_sim_nvme(c->sim, "optimizer_swap_in_state", false, bytes, zl_sim_host_now(c->sim));
}
static void clock_write(nvme_clock *c, double bytes)
{
    if (c->sim) c->write_end = zl_sim_nvme(c->sim, "optimizer_swap_out_state", true, bytes, zl_sim_host_now(c->sim));
}
static void clock_wait(nvme_clock *c, double end)
{
    if (c->sim) zl_sim_host_wait(c->sim, end);
}

/* Sub-group g's step on the host over buffer set `set`: gradient slice in, Adam, rounded
 * slice out to the device's parameters. */
static zl_status step_group(zl_zero_ctx *z, int g, int set, void *params, const void *grads,
                            const zl_param_range *r, int nr, int64_t t0, double lr, double beta1,
                            float grad_scale)
{
    zl_zero_nvme *s = z->nvme_state;
    zl_dtype t = z->prec->dtype, gt = z->prec->grad_dtype;
    size_t psz = zl_dtype_nbytes(t), b = group_begin(s, g), n = group_len(s, g);
    zl_status st = ZL_OK;
    if (s->real) st = zl__zero_offload_grads_to_host(z, s->grad, zl__at((void *)grads, gt, b), n);
    else if (z->device->sim) zl_sim_copy(z->device->sim, false, (double)n * sizeof(float));
    if (st != ZL_OK) return st;
    zl_device_copy_wait(z->device); /* the step reads what the copies brought */
    if (s->real) {
        int nrr = zl_param_ranges_clip(s->ranges, r, nr, b, b + n);
        /* Adam over the pool's buffers: the engine's optimizer (its settings and step
         * count) with this sub-group's moments. */
        zl_adamw view = *z->adam;
        view.m.data = s->buf[set][NV_M];
        view.v.data = s->buf[set][NV_V];
        view.m.numel = view.v.numel = view.numel = n;
        view.step = t0;
        zl_adamw_step_lp(&view, s->buf[set][NV_MASTER], s->grad, ZL_F32, s->out, t, s->ranges, nrr,
                         lr, beta1, grad_scale);
    }
    if (z->device->sim) zl_sim_host_compute(z->device->sim, "cpu_adam", (double)n * (28.0 + (double)psz));
    /* offload_param nvme: the slice goes to the parameters' swap files, not the device */
    if (z->nvme_param) st = zl__zero_pnvme_put_host(z, b, s->out, n);
    else if (s->real) st = zl_device_copy(z->device, zl__at(params, t, b), z->host, s->out, n * psz);
    else if (z->device->sim) zl_sim_copy(z->device->sim, true, (double)n * psz);
    if (st != ZL_OK) return st;
    zl_device_copy_wait(z->device); /* the out buffer is reused by the next sub-group */
    return ZL_OK;
}

static zl_status wait_io(zl_aio *aio, bool real)
{
    return real ? zl_aio_wait(aio, NULL) : ZL_OK;
}

zl_status zl__zero_nvme_step(zl_zero_ctx *z, void *params, const void *grads, size_t n,
                             const zl_param_range *r, int nr, double lr, double beta1,
                             float grad_scale)
{
    zl_zero_nvme *s = z->nvme_state;
    ZL_ASSERT(s && n == s->numel);
    const zl_zero_nvme_options *o = &z->nvme_opt;
    zl_status st = ZL_OK;
    if (s->real && nr > s->cap_ranges) {
        zl_param_range *nrg = realloc(s->ranges, (size_t)nr * sizeof *nrg);
        if (!nrg) st = zl_errorf(ZL_ERR_NOMEM, "out of host memory");
        else {
            s->ranges = nrg;
            s->cap_ranges = nr;
        }
    }
    nvme_clock c = {.sim = z->device->sim};
    int64_t t0 = z->adam->step;
    bool pr = o->pipeline_read, pw = o->pipeline_write, real = s->real;
    if (st == ZL_OK && s->groups > 0) {
        if (real) st = issue_read(z, 0, 0);
        clock_read(&c, (double)group_len(s, 0) * sizeof(float) * NV_STATES);
    }
    for (int g = 0; g < s->groups && st == ZL_OK; g++) {
        int set = g % s->sets, next = (g + 1) % s->sets;
        double bytes = (double)group_len(s, g) * sizeof(float) * NV_STATES;
        if ((st = wait_io(s->rd, real)) != ZL_OK) break;
        clock_wait(&c, c.read_end);
        double next_bytes = g + 1 < s->groups ? (double)group_len(s, g + 1) * sizeof(float) * NV_STATES : 0;
        if (pr && g + 1 < s->groups) { /* read ahead, beside this step */
            if (real && (st = issue_read(z, g + 1, next)) != ZL_OK) break;
            clock_read(&c, next_bytes);
        }
        if ((st = step_group(z, g, set, params, grads, r, nr, t0, lr, beta1, grad_scale)) != ZL_OK) break;
        if (pw) { /* write behind, beside the next step */
            if ((st = wait_io(s->wr, real)) != ZL_OK) break;
            clock_wait(&c, c.write_end);
            if (real && (st = issue_write(z, g, set)) != ZL_OK) break;
            clock_write(&c, bytes);
        } else {
            if (real && (st = issue_write(z, g, set)) != ZL_OK) break;
            clock_write(&c, bytes);
            if ((st = wait_io(s->wr, real)) != ZL_OK) break;
            clock_wait(&c, c.write_end);
        }
        if (!pr && g + 1 < s->groups) {
            if (real && (st = issue_read(z, g + 1, next)) != ZL_OK) break;
            clock_read(&c, next_bytes);
        }
    }
    /* Nothing stays in flight, whatever happened: the buffers are the next step's. */
    if (real) {
        zl_status a = zl_aio_wait(s->rd, NULL), b = zl_aio_wait(s->wr, NULL);
        if (st == ZL_OK) st = a != ZL_OK ? a : b;
    }
    clock_wait(&c, c.write_end);
    if (st == ZL_OK) z->adam->step = t0 + 1; /* one optimizer step, over every sub-group */
    /* Ranks fail together: the others would wait in the allgather that follows. */
    if (z->dp && z->dp_size > 1) st = zl_comm_agree(z->dp, st);
    return st;
}

void zl__zero_nvme_free(zl_zero_ctx *z)
{
    zl_zero_nvme *s = z->nvme_state;
    if (!s) return;
    if (s->rd) zl_aio_wait(s->rd, NULL);
    if (s->wr) zl_aio_wait(s->wr, NULL);
    if (s->files)
        for (int i = 0; i < s->groups * NV_STATES; i++) zl_swap_file_close(s->files[i]);
    bool opened = s->dir != NULL;
    zl_swap_dir_close(s->dir);
    /* Ranks sharing nvme_path share zero_stage_3/optimizer: the rank that created it may
     * close first, while another's folder is still in it, and leave it; so each rank
     * removes the two once they are empty (rmdir leaves a folder that is not), whoever
     * made them: DeepSpeed's tree, nothing of the user's. */
    if (opened && z->nvme_opt.nvme_path) {
        char p[4200];
        snprintf(p, sizeof p, "%s/zero_stage_3/optimizer", z->nvme_opt.nvme_path);
        zl_swap_remove_shared(p);
        snprintf(p, sizeof p, "%s/zero_stage_3", z->nvme_opt.nvme_path);
        zl_swap_remove_shared(p);
    }
    zl_aio_destroy(s->rd);
    zl_aio_destroy(s->wr);
    zl_swap_pool_destroy(s->pool);
    if (s->pool_ledgered) zl_ledger_free(&z->host->ledger, "nvme.buffers", s->pool_ledgered);
    if (s->ledgered)
        for (int k = 0; k < NV_STATES; k++)
            if (s->ledgered[k]) zl_ledger_free(z->nvme_ledger, state_tag[k], s->ledgered[k]);
    free(s->ledgered);
    free(s->files);
    free(s->written);
    free(s->ranges);
    free(s);
    z->nvme_state = NULL;
}
