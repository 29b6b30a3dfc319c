/* ZeRO-Infinity's parameter swapping (offload_param.device "nvme", stage 3): this rank's
 * shard of the parameters lives in swap files under nvme_path instead of device or host
 * memory, and each fetch reads a tensor's chunk through a pool of pinned buffers, as
 * DeepSpeed's AsyncPartitionedParameterSwapper (runtime/swap_tensor/
 * partitioned_param_swapper.py) does.
 *
 * Layout. One file per unit (a parameter tensor: stage3.c), holding this rank's chunk of
 * it (ceil(numel / N) elements of the model's type, padding zeros included), as DeepSpeed
 * keeps one file per parameter:
 *
 *   <nvme_path>/zero_stage_3/<dtype>params/rank<R>/<i>_param.tensor.swp
 *
 * <dtype> is float32params, float16params or bfloat16params, <i> the unit's index in the
 * model's order (DeepSpeed's is the parameter's ds_id). Each file is padded to 4096 bytes
 * (O_DIRECT) and allocated when the engine is created, so a full disk fails there naming
 * the file; the files are written with the initial values by init_params and removed with
 * the engine (on failure paths too). NVMe ledger: "nvme.param", the padded file sizes.
 *
 * The pool: offload_param.buffer_count buffers (DeepSpeed's 5), each holding one chunk.
 * buffer_size (elements, DeepSpeed's 1e8) must be at least the largest chunk (a chunk is
 * read whole into one buffer; a smaller buffer_size is refused, naming the key and the
 * size needed); the buffers are allocated at the largest chunk's size, not at buffer_size
 * when that is larger (1e8 fp32 elements is 400 MB a buffer, for a model whose largest
 * chunk may be a few MB). Host ledger: "nvme.param.buffers".
 *
 * max_in_cpu (DeepSpeed's 1e9: "number of parameter elements to maintain in CPU memory
 * when offloading to NVMe"): walking the units in the model's order, a unit's chunk stays
 * in host memory while the running total of kept elements (padding included) stays at
 * most max_in_cpu; the first unit that would pass it and every unit after it get swap
 * files. The kept chunks live in one host buffer (pinned as pin_memory says; host ledger
 * "nvme.param.cpu", the kept chunks' bytes): a kept unit's fetch copies from it (no read)
 * and its write-back writes it (no file). Only the swapped units need the pool, the files
 * and the aio engines: with every unit kept (small models at the default) none is made,
 * and buffer_size needs to hold only the largest swapped chunk.
 *
 * Fetch (stage3.c's fetch_own): wait for the chunk's read (issued ahead by a prefetch) or
 * read it now, copy it host-to-device into its place in the gather buffer, give the
 * buffer back. Prefetch: while a layer computes, stage3.c issues the reads of the units of
 * the next two layers (the next one's allgather is prefetched then too, and needs its
 * chunks first), as long as a buffer stays spare for a fetch that was not read ahead.
 * The aio engine waits for all it has in flight, so waiting for one read waits for the
 * reads issued before it: they are the ones needed first.
 *
 * Write-back after the step: the updated chunks are written through the pool (written
 * behind: a buffer is reused once the writes in flight are waited for), and the step
 * waits for every write before anything reads the files again. Reads issued before the
 * step hold the old values and are dropped first.
 *
 * On a simulated card, reads and writes are charged to the NVMe stream (zl_sim_nvme:
 * "param_swap_in", "param_swap_out"); a fetch waits for its read's end, so a read issued
 * a layer ahead overlaps that layer's compute in --trace. On the meta backend (plans)
 * nothing is created or moved: the ledgers and the clock only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "io/swap_file.h"
#include "io/swap_layout.h"
#include "io/swap_pool.h"
#include "zero/zero_internal.h"

typedef struct pnvme_item {
    size_t numel;        /* the chunk, padding included */
    size_t shard_offset;
    zl_swap_file *file;
    void *buf;           /* a read issued into this buffer, or NULL */
    double read_end;     /* simulated: when that read ends */
    bool staged;         /* a read was issued (buf, or on the meta backend the clock only) */
    bool kept;           /* within max_in_cpu: the chunk stays in host memory, no file */
    char *host;          /* kept: the chunk in the host buffer (NULL on the meta backend) */
} pnvme_item;

struct zl_zero_pnvme {
    bool real;
    int count;
    pnvme_item *items;
    size_t esz;
    zl_swap_dir *dir;
    char top[4200], mid[4200]; /* zero_stage_3 and its <dtype>params folder */
    zl_aio *rd, *wr;
    zl_swap_pool *pool;        /* NULL when every unit is kept */
    zl_swap_pool *cpu;         /* one buffer: the kept chunks, back to back */
    void *cpu_buf;
    size_t pool_ledgered, files_ledgered, cpu_ledgered;
    int swapped;               /* units with swap files */
    void **writing;            /* buffers whose writes are in flight */
    int num_writing;
    int fill;                  /* put_host: the item being filled, -1 none */
    void *fill_buf;
    int cursor;                /* put_host: the first item not complete */
    double write_end;
    zl_status st;              /* a prefetch's failure, for the next fetch */
};

static zl_sim *sim_of(zl_zero_ctx *z) { return z->device->sim; }

zl_status zl__zero_pnvme_alloc(zl_zero_ctx *z, int count, const size_t *numel, const size_t *shard_offset)
{
    const zl_zero_param_nvme_options *o = &z->pnvme_opt;
    struct zl_zero_pnvme *s = z->pnvme = calloc(1, sizeof *s);
    if (!s || !(s->items = calloc((size_t)count + 1, sizeof *s->items)) ||
        !(s->writing = calloc((size_t)(o->buffer_count > 0 ? o->buffer_count : 1), sizeof *s->writing)))
        return zl_errorf(ZL_ERR_NOMEM, "out of host memory");
    s->real = !z->device->ops->meta;
    s->count = count;
    s->fill = -1;
    s->esz = zl_dtype_nbytes(z->prec->dtype);
    /* max_in_cpu < 0 (the config's 0): nothing kept */
    size_t cap = o->max_in_cpu > 0 ? (size_t)o->max_in_cpu : 0, kept = 0, kept_bytes = 0;
    bool keeping = true;
    size_t largest = 0;
    int largest_at = 0;
    for (int i = 0; i < count; i++) {
        pnvme_item *it = &s->items[i];
        it->numel = numel[i];
        it->shard_offset = shard_offset[i];
        if (keeping && kept + numel[i] <= cap) {
            it->kept = true;
            kept += numel[i];
            kept_bytes += numel[i] * s->esz;
            continue;
        }
        keeping = false;
        s->swapped++;
        if (numel[i] > largest) largest = numel[i], largest_at = i;
    }
    if (o->buffer_count <= 0)
        return zl_errorf(ZL_ERR_CONFIG, "zero_optimization.offload_param.buffer_count must be positive, "
                         "got %d\n  hint: remove it (DeepSpeed's default is 5)", o->buffer_count);
    if (s->swapped && (o->buffer_size <= 0 || (size_t)o->buffer_size < largest))
        return zl_errorf(ZL_ERR_CONFIG,
                         "zero_optimization.offload_param.buffer_size %lld is smaller than this rank's "
                         "largest parameter chunk (tensor %d: %zu elements), which is read whole into "
                         "one buffer\n  hint: set \"buffer_size\" to at least %zu (DeepSpeed's "
                         "default is 100000000)", (long long)o->buffer_size, largest_at, largest, largest);
    size_t buf_nbytes = zl_swap_padded((largest ? largest : 1) * s->esz);
    zl_status st;
    if (kept_bytes) {
        if ((st = zl_ledger_alloc(&z->host->ledger, "nvme.param.cpu", kept_bytes)) != ZL_OK) return st;
        s->cpu_ledgered = kept_bytes;
    }
    if (!s->real) { /* a plan: what the kept chunks, the files and the pool would hold */
        if (!s->swapped) return ZL_OK;
        for (int i = 0; i < count; i++)
            if (!s->items[i].kept) s->files_ledgered += zl_swap_padded(numel[i] * s->esz);
        st = zl_ledger_alloc(z->nvme_ledger, "nvme.param", s->files_ledgered);
        if (st != ZL_OK) {
            s->files_ledgered = 0;
            return st;
        }
        st = zl_ledger_alloc(&z->host->ledger, "nvme.param.buffers", (size_t)o->buffer_count * buf_nbytes);
        if (st == ZL_OK) s->pool_ledgered = (size_t)o->buffer_count * buf_nbytes;
        return st;
    }
    if (!o->nvme_path || !o->nvme_path[0])
        return zl_errorf(ZL_ERR_CONFIG, "zero_optimization.offload_param.nvme_path is not set: device "
                         "\"nvme\" swaps the parameters to files under it\n"
                         "  hint: set \"nvme_path\" to a directory on a fast local drive");
    if (kept_bytes) { /* one allocation, checked against the host's memory, pinned as asked */
        if ((st = zl_swap_pool_create(&s->cpu, 1, kept_bytes, o->pin_memory)) != ZL_OK) return st;
        s->cpu_buf = zl_swap_pool_acquire(s->cpu);
        size_t at = 0;
        for (int i = 0; i < count; i++)
            if (s->items[i].kept) {
                s->items[i].host = (char *)s->cpu_buf + at;
                at += numel[i] * s->esz;
            }
    }
    if (!s->swapped) {
        zl_log_debug("nvme: all %d parameter chunk(s) in host memory (max_in_cpu %lld)", count,
                     (long long)o->max_in_cpu);
        return ZL_OK;
    }
    char sub[128];
    if ((st = zl_swap_param_subdir(sub, sizeof sub, z->prec->dtype, o->rank)) != ZL_OK) return st;
    snprintf(s->top, sizeof s->top, "%s/zero_stage_3", o->nvme_path);
    snprintf(s->mid, sizeof s->mid, "%s/%s", o->nvme_path, sub);
    char *cut = strrchr(s->mid, '/'); /* .../zero_stage_3/<dtype>params */
    if (cut) *cut = 0;
    if ((st = zl_swap_dir_open(&s->dir, o->nvme_path, sub)) != ZL_OK) return st;
    if ((st = zl_aio_create(&s->rd, &o->aio, ZL_AIO_AUTO)) != ZL_OK ||
        (st = zl_aio_create(&s->wr, &o->aio, ZL_AIO_AUTO)) != ZL_OK)
        return st;
    if ((st = zl_swap_pool_create(&s->pool, o->buffer_count, buf_nbytes, o->pin_memory)) != ZL_OK)
        return st;
    if ((st = zl_ledger_alloc(&z->host->ledger, "nvme.param.buffers", zl_swap_pool_total_nbytes(s->pool))) != ZL_OK)
        return st;
    s->pool_ledgered = zl_swap_pool_total_nbytes(s->pool);
    for (int i = 0; i < count; i++) {
        if (s->items[i].kept) continue;
        char name[64];
        if ((st = zl_swap_param_file_name(name, sizeof name, i)) != ZL_OK ||
            (st = zl_swap_file_create(&s->items[i].file, s->dir, name, numel[i] * s->esz)) != ZL_OK)
            return st;
        size_t nb = zl_swap_file_padded_nbytes(s->items[i].file);
        if ((st = zl_ledger_alloc(z->nvme_ledger, "nvme.param", nb)) != ZL_OK) return st;
        s->files_ledgered += nb;
    }
    zl_log_debug("nvme: %d parameter chunk(s) in %s (%s, pool of %d x %zu bytes), %d in host memory",
                 s->swapped, zl_swap_dir_path(s->dir), zl_aio_backend_name(s->rd), o->buffer_count, buf_nbytes,
                 count - s->swapped);
    return ZL_OK;
}

/* The writes in flight complete; their buffers go back to the pool. */
static zl_status wait_writes(struct zl_zero_pnvme *s)
{
    zl_status st = s->num_writing ? zl_aio_wait(s->wr, NULL) : ZL_OK;
    for (int k = 0; k < s->num_writing; k++) zl_swap_pool_release(s->pool, s->writing[k]);
    s->num_writing = 0;
    return st;
}

/* A free buffer: the pool's, or one a finished write gives back. */
static zl_status take_buffer(struct zl_zero_pnvme *s, void **buf)
{
    *buf = zl_swap_pool_acquire(s->pool);
    if (*buf) return ZL_OK;
    zl_status st = wait_writes(s);
    *buf = zl_swap_pool_acquire(s->pool);
    ZL_ASSERT(*buf); /* reads hold buffers only while one stays spare */
    return st;
}

/* Item i's buffer (its chunk, padding zeroed) written behind. */
static zl_status write_item(zl_zero_ctx *z, int i, void *buf)
{
    struct zl_zero_pnvme *s = z->pnvme;
    pnvme_item *it = &s->items[i];
    /* A file cut short since its last read would be made whole again by this write and the
     * cut never seen: say so instead (the optimizer's files are read before each write). */
    struct stat sb;
    size_t want = zl_swap_file_padded_nbytes(it->file);
    zl_status st = ZL_OK;
    if (fstat(zl_swap_file_fd(it->file), &sb) == 0 && (size_t)sb.st_size < want)
        st = zl_errorf(ZL_ERR_IO, "swap file %s: the file ends at byte %lld, but it holds %zu bytes; "
                       "it was truncated or replaced behind zerolab's back\n  hint: nothing else may "
                       "write under nvme_path while zerolab trains", zl_swap_file_path(it->file),
                       (long long)sb.st_size, want);
    zl_status s2 = zl_swap_file_write(it->file, s->wr, buf, it->numel * s->esz, 0);
    if (st == ZL_OK) st = s2;
    s->writing[s->num_writing++] = buf;
    if (sim_of(z))
        s->write_end = zl_sim_nvme(sim_of(z), "param_swap_out", true, (double)it->numel * (double)s->esz,
                                   zl_sim_host_now(sim_of(z)));
    return st;
}

zl_status zl__zero_pnvme_put(zl_zero_ctx *z, int i, const void *src, size_t n)
{
    struct zl_zero_pnvme *s = z->pnvme;
    pnvme_item *it = &s->items[i];
    ZL_ASSERT(n <= it->numel);
    if (it->kept) { /* the host buffer is the chunk's home: no file */
        if (!s->real) {
            if (sim_of(z)) zl_sim_copy(sim_of(z), false, (double)n * (double)s->esz);
            return ZL_OK;
        }
        memset(it->host + n * s->esz, 0, (it->numel - n) * s->esz);
        zl_status st = n ? zl_device_copy(z->host, it->host, z->device, src, n * s->esz) : ZL_OK;
        zl_device_copy_wait(z->device);
        return st;
    }
    if (!s->real) {
        if (sim_of(z)) {
            zl_sim_copy(sim_of(z), false, (double)n * (double)s->esz);
            s->write_end = zl_sim_nvme(sim_of(z), "param_swap_out", true, (double)it->numel * (double)s->esz,
                                       zl_sim_host_now(sim_of(z)));
        }
        return ZL_OK;
    }
    void *buf;
    zl_status st = take_buffer(s, &buf);
    if (st != ZL_OK) {
        zl_swap_pool_release(s->pool, buf);
        return st;
    }
    memset(buf, 0, zl_swap_padded(it->numel * s->esz));
    if (n && (st = zl_device_copy(z->host, buf, z->device, src, n * s->esz)) != ZL_OK) {
        zl_swap_pool_release(s->pool, buf);
        return st;
    }
    zl_device_copy_wait(z->device);
    return write_item(z, i, buf);
}

zl_status zl__zero_pnvme_put_host(zl_zero_ctx *z, size_t off, const void *src, size_t n)
{
    struct zl_zero_pnvme *s = z->pnvme;
    size_t end = off + n;
    zl_status st = ZL_OK;
    while (s->cursor < s->count && st == ZL_OK) {
        int i = s->cursor;
        pnvme_item *it = &s->items[i];
        size_t b = it->shard_offset, e = b + it->numel;
        if (b >= end) break;
        if (e <= off) { s->cursor++; continue; }
        size_t lo = b > off ? b : off, hi = e < end ? e : end;
        if (it->kept) { /* straight into the host buffer */
            if (s->real)
                memcpy(it->host + (lo - b) * s->esz, (const char *)src + (lo - off) * s->esz, (hi - lo) * s->esz);
            if (hi < e) break;
            s->cursor++;
            continue;
        }
        if (s->real && s->fill != i) { /* start filling item i: zeros, then what arrives */
            if ((st = take_buffer(s, &s->fill_buf)) != ZL_OK) break;
            memset(s->fill_buf, 0, zl_swap_padded(it->numel * s->esz));
            s->fill = i;
        }
        if (s->real)
            memcpy((char *)s->fill_buf + (lo - b) * s->esz, (const char *)src + (lo - off) * s->esz,
                   (hi - lo) * s->esz);
        if (hi < e) break; /* the rest of item i comes with the next call */
        if (s->real) {
            st = write_item(z, i, s->fill_buf);
            s->fill = -1;
            s->fill_buf = NULL;
        } else if (sim_of(z)) {
            s->write_end = zl_sim_nvme(sim_of(z), "param_swap_out", true, (double)it->numel * (double)s->esz,
                                       zl_sim_host_now(sim_of(z)));
        }
        s->cursor++;
    }
    return st;
}

void zl__zero_pnvme_prefetch(zl_zero_ctx *z, int i)
{
    struct zl_zero_pnvme *s = z->pnvme;
    pnvme_item *it = &s->items[i];
    if (it->kept || it->staged || s->st != ZL_OK) return;
    if (s->real) {
        if (zl_swap_pool_free_count(s->pool) < 2) return; /* one stays spare for a fetch */
        it->buf = zl_swap_pool_acquire(s->pool);
        zl_status st = zl_swap_file_read(it->file, s->rd, it->buf, it->numel * s->esz, 0);
        if (st != ZL_OK) s->st = st;
    }
    it->staged = true;
    if (sim_of(z))
        it->read_end = zl_sim_nvme(sim_of(z), "param_swap_in", false, (double)it->numel * (double)s->esz,
                                   zl_sim_host_now(sim_of(z)));
}

zl_status zl__zero_pnvme_fetch(zl_zero_ctx *z, int i, void *dst)
{
    struct zl_zero_pnvme *s = z->pnvme;
    pnvme_item *it = &s->items[i];
    size_t nbytes = it->numel * s->esz;
    zl_status st = s->st;
    s->st = ZL_OK;
    if (it->kept) { /* no read: a copy from the host buffer */
        if (st == ZL_OK) {
            if (s->real) st = zl_device_copy(z->device, dst, z->host, it->host, nbytes);
            else if (sim_of(z)) zl_sim_copy(sim_of(z), true, (double)nbytes);
            zl_device_copy_wait(z->device);
        }
        return st;
    }
    if (!it->staged) {
        if (s->real) {
            zl_status s2 = take_buffer(s, &it->buf);
            if (st == ZL_OK) st = s2;
            s2 = zl_swap_file_read(it->file, s->rd, it->buf, nbytes, 0);
            if (st == ZL_OK) st = s2;
        }
        if (sim_of(z))
            it->read_end = zl_sim_nvme(sim_of(z), "param_swap_in", false, (double)nbytes,
                                       zl_sim_host_now(sim_of(z)));
    }
    if (s->real) {
        zl_status s2 = zl_aio_wait(s->rd, NULL);
        if (st == ZL_OK) st = s2;
    }
    if (sim_of(z)) zl_sim_host_wait(sim_of(z), it->read_end);
    if (st == ZL_OK) {
        if (s->real) st = zl_device_copy(z->device, dst, z->host, it->buf, nbytes);
        else if (sim_of(z)) zl_sim_copy(sim_of(z), true, (double)nbytes);
        zl_device_copy_wait(z->device); /* the buffer is reused */
    }
    if (it->buf) zl_swap_pool_release(s->pool, it->buf);
    it->buf = NULL;
    it->staged = false;
    return st;
}

zl_status zl__zero_pnvme_drop(zl_zero_ctx *z)
{
    struct zl_zero_pnvme *s = z->pnvme;
    zl_status st = s->real && s->rd ? zl_aio_wait(s->rd, NULL) : ZL_OK;
    for (int i = 0; i < s->count; i++) {
        pnvme_item *it = &s->items[i];
        if (it->buf) zl_swap_pool_release(s->pool, it->buf);
        it->buf = NULL;
        it->staged = false;
    }
    s->st = ZL_OK;
    s->cursor = 0;
    return st; /* a failed read ahead of a fetch that never came: still a failure */
}

zl_status zl__zero_pnvme_flush(zl_zero_ctx *z)
{
    struct zl_zero_pnvme *s = z->pnvme;
    zl_status st = ZL_OK;
    if (s->fill >= 0) { /* an item never completed: a bug in the caller's ranges */
        zl_swap_pool_release(s->pool, s->fill_buf);
        s->fill = -1;
        s->fill_buf = NULL;
    }
    if (s->real) st = wait_writes(s);
    if (sim_of(z)) zl_sim_host_wait(sim_of(z), s->write_end);
    s->cursor = 0;
    return st;
}

void zl__zero_pnvme_free(zl_zero_ctx *z)
{
    struct zl_zero_pnvme *s = z->pnvme;
    if (!s) return;
    if (s->rd) zl_aio_wait(s->rd, NULL);
    if (s->wr) zl_aio_wait(s->wr, NULL);
    if (s->items)
        for (int i = 0; i < s->count; i++) zl_swap_file_close(s->items[i].file);
    bool opened = s->dir != NULL;
    zl_swap_dir_close(s->dir);
    /* As the optimizer's files (offload_nvme.c): the folders above rank<R> go once they are
     * empty, whoever made them (another rank, or the optimizer's swapper). */
    if (opened) {
        zl_swap_remove_shared(s->mid);
        zl_swap_remove_shared(s->top);
    }
    zl_aio_destroy(s->rd);
    zl_aio_destroy(s->wr);
    zl_swap_pool_destroy(s->pool);
    zl_swap_pool_destroy(s->cpu);
    if (s->cpu_ledgered) zl_ledger_free(&z->host->ledger, "nvme.param.cpu", s->cpu_ledgered);
    if (s->pool_ledgered) zl_ledger_free(&z->host->ledger, "nvme.param.buffers", s->pool_ledgered);
    if (s->files_ledgered) zl_ledger_free(z->nvme_ledger, "nvme.param", s->files_ledgered);
    free(s->writing);
    free(s->items);
    free(s);
    z->pnvme = NULL;
}
