/* The asynchronous I/O engine: worker threads, slicing, the request driver, errors. */
#include "zl_build.h"

#include "io/aio.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "io/aio_backend.h"

#define ALIGN 4096u

void zl_aio_config_default(zl_aio_config *cfg)
{
    cfg->block_size = 1048576;
    cfg->queue_depth = 8;
    cfg->intra_op_parallelism = 1;
    cfg->single_submit = false;
    cfg->overlap_events = true;
    cfg->use_gds = false;
}

zl_status zl_aio_config_check(const zl_aio_config *cfg)
{
    if (cfg->block_size == 0 || cfg->block_size % ALIGN || cfg->block_size > (1u << 30))
        return zl_errorf(ZL_ERR_CONFIG,
                         "aio.block_size %zu: must be a positive multiple of 4096 up to 1 GiB "
                         "(swap files use O_DIRECT, which moves whole 4096-byte blocks)\n"
                         "  hint: DeepSpeed's default is 1048576",
                         cfg->block_size);
    if (cfg->queue_depth < 1 || cfg->queue_depth > 1024)
        return zl_errorf(ZL_ERR_CONFIG, "aio.queue_depth %d: must be 1..1024\n"
                                        "  hint: DeepSpeed's default is 8",
                         cfg->queue_depth);
    if (cfg->intra_op_parallelism < 1 || cfg->intra_op_parallelism > 256)
        return zl_errorf(ZL_ERR_CONFIG, "aio.intra_op_parallelism %d: must be 1..256\n"
                                        "  hint: DeepSpeed's default is 1",
                         cfg->intra_op_parallelism);
    if (cfg->use_gds)
        return zl_errorf(ZL_ERR_UNSUPPORTED,
                         "aio.use_gds true: GPUDirect Storage is not built into zerolab\n"
                         "  hint: set aio.use_gds to false; swap files then go through host memory");
    return ZL_OK;
}

const char *zl_aio_backend_str(zl_aio_backend backend)
{
    switch (backend) {
    case ZL_AIO_AUTO: return "auto";
    case ZL_AIO_LIBURING: return "liburing";
    case ZL_AIO_LIBAIO: return "libaio";
    case ZL_AIO_THREADS: return "threads";
    }
    return "unknown";
}

bool zl_aio_backend_built(zl_aio_backend backend)
{
    switch (backend) {
    case ZL_AIO_AUTO:
    case ZL_AIO_THREADS: return true;
#ifdef ZL_HAVE_LIBURING
    case ZL_AIO_LIBURING: return true;
#endif
#ifdef ZL_HAVE_LIBAIO
    case ZL_AIO_LIBAIO: return true;
#endif
    default: return false;
    }
}

/* One queued transfer; its slices are shared among the workers. */
typedef struct aio_op {
    bool write;
    int fd;
    char *buf;
    size_t nbytes;
    uint64_t offset;
    int slices_left;
    char *path;
} aio_op;

typedef struct aio_slice {
    aio_op *op;
    char *buf;
    size_t nbytes;
    uint64_t offset;
} aio_slice;

/* The first failure since the last wait, kept as facts: zl_errorf's message is
 * thread-local, so the waiting thread formats it. */
typedef struct aio_failure {
    bool set;
    bool write;
    bool short_read; /* read hit end of file; err unused */
    int err;         /* errno */
    char path[1024];
    size_t nbytes;       /* the request that failed */
    uint64_t offset;
    size_t op_nbytes;    /* the transfer it belongs to */
    uint64_t op_offset;
    long long file_nbytes; /* size of the file when it failed (-1 unknown) */
} aio_failure;

typedef struct aio_worker {
    zl_aio *aio;
    pthread_t thread;
    bool started;
    void *ctx; /* the backend's, for queue backends */
} aio_worker;

struct zl_aio {
    zl_aio_config cfg;
    zl_aio_backend backend;
    const zl__aio_backend_ops *ops; /* NULL for threads */
    int nworkers;
    aio_worker *workers;

    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* a slice was queued, or stop */
    pthread_cond_t done_cv; /* a transfer completed */
    aio_slice *queue;       /* ring buffer of slices */
    size_t qcap, qhead, qlen;
    size_t ops_pending, ops_completed;
    bool stop;
    aio_failure failure;
};

/* ---------------------------------------------------------------- failures */

static void record_failure(zl_aio *aio, const aio_op *op, bool write, bool short_read, int err,
                           size_t nbytes, uint64_t offset)
{
    struct stat st;
    long long size = fstat(op->fd, &st) == 0 ? (long long)st.st_size : -1;
    pthread_mutex_lock(&aio->mu);
    aio_failure *f = &aio->failure;
    if (!f->set) {
        f->set = true;
        f->write = write;
        f->short_read = short_read;
        f->err = err;
        snprintf(f->path, sizeof f->path, "%s", op->path);
        f->nbytes = nbytes;
        f->offset = offset;
        f->op_nbytes = op->nbytes;
        f->op_offset = op->offset;
        f->file_nbytes = size;
    }
    pthread_mutex_unlock(&aio->mu);
}

static zl_status failure_status(const aio_failure *f)
{
    if (f->short_read)
        return zl_errorf(ZL_ERR_IO,
                         "swap file %s: short read: the file ends at byte %lld, but %zu bytes "
                         "at offset %" PRIu64 " were asked for (reading %zu bytes at offset "
                         "%" PRIu64 "); it was truncated or replaced behind zerolab's back\n"
                         "  hint: nothing else may write to the swap folder while a run uses "
                         "it; restart the run",
                         f->path, f->file_nbytes, f->nbytes, f->offset, f->op_nbytes,
                         f->op_offset);
    const char *what = f->write ? "writing" : "reading";
    const char *hint;
    switch (f->err) {
    case ENOSPC:
    case EDQUOT:
        hint = "free space on that filesystem, or point offload_param.nvme_path / "
               "offload_optimizer.nvme_path at a larger one";
        break;
    case EROFS:
    case EACCES:
    case EPERM: hint = "point nvme_path at a directory this user may write"; break;
    case EINVAL:
        hint = "the filesystem refused the request's alignment; an O_DIRECT file needs "
               "4096-aligned buffers, offsets and lengths";
        break;
    case EIO: hint = "the device reported an error; check `dmesg` and the drive's health"; break;
    default: hint = "check the device and the filesystem of nvme_path"; break;
    }
    return zl_errorf(ZL_ERR_IO,
                     "swap file %s: %s %s %zu bytes at offset %" PRIu64
                     " (of a transfer of %zu bytes at offset %" PRIu64 ")\n  hint: %s",
                     f->path, strerror(f->err), what, f->nbytes, f->offset, f->op_nbytes,
                     f->op_offset, hint);
}

/* ---------------------------------------------------------------- request driver */

/* A queue backend's slice: block_size requests, at most queue_depth in flight. A request
 * that completes short is resubmitted for its rest; a read that gets 0 bytes is at the
 * end of the file (an error); after a failure nothing new is issued, but what is in
 * flight is reaped before returning (the caller's buffer is still being written). */
static void run_slice_queued(aio_worker *w, const aio_slice *s)
{
    zl_aio *aio = w->aio;
    const zl__aio_backend_ops *ops = aio->ops;
    const int qd = aio->cfg.queue_depth;
    const size_t bs = aio->cfg.block_size;
    zl__aio_req req[qd];
    bool busy[qd];
    int slots[qd];
    long res[qd];
    memset(busy, 0, sizeof busy);
    const aio_op *op = s->op;
    uint64_t next = 0; /* bytes of the slice issued */
    int inflight = 0;
    bool failed = false;

    while (inflight > 0 || (!failed && next < s->nbytes)) {
        int queued = 0;
        int batch[qd]; /* slots queued this round, not yet submitted */
        bool refill = aio->cfg.overlap_events || inflight == 0;
        for (int k = 0; refill && !failed && k < qd && next < s->nbytes; k++) {
            if (busy[k]) continue;
            size_t n = s->nbytes - next < bs ? (size_t)(s->nbytes - next) : bs;
            req[k] = (zl__aio_req){op->write, op->fd, s->buf + next, n, s->offset + next};
            int rc = ops->prep(w->ctx, k, &req[k]);
            if (rc == 0 && aio->cfg.single_submit) rc = ops->submit(w->ctx);
            if (rc < 0) {
                record_failure(aio, op, op->write, false, -rc, n, s->offset + next);
                failed = true;
                break;
            }
            busy[k] = true;
            next += n;
            inflight++;
            if (!aio->cfg.single_submit) batch[queued++] = k;
        }
        if (queued) {
            int rc = ops->submit(w->ctx);
            if (rc < 0) { /* the batch never went out: forget it */
                record_failure(aio, op, op->write, false, -rc, req[batch[0]].nbytes,
                               req[batch[0]].offset);
                for (int i = 0; i < queued; i++) busy[batch[i]] = false;
                inflight -= queued;
                failed = true;
            }
        }
        if (inflight == 0) break;
        int min = aio->cfg.overlap_events ? 1 : inflight;
        int got = ops->reap(w->ctx, min, qd, slots, res);
        if (got < 0) { /* the kernel lost track: report, and stop waiting for it */
            record_failure(aio, op, op->write, false, -got, bs, s->offset + next);
            return;
        }
        int resubmit = 0;
        for (int i = 0; i < got; i++) {
            int k = slots[i];
            zl__aio_req *r = &req[k];
            if (res[i] < 0) {
                record_failure(aio, op, r->write, false, (int)-res[i], r->nbytes, r->offset);
                failed = true;
            } else if (res[i] == 0 && !r->write) {
                record_failure(aio, op, false, true, 0, r->nbytes, r->offset);
                failed = true;
            } else if (res[i] == 0) { /* a write that moved nothing: the disk is full */
                record_failure(aio, op, true, false, ENOSPC, r->nbytes, r->offset);
                failed = true;
            } else if ((size_t)res[i] < r->nbytes && !failed) {
                /* short: issue the rest from the same slot */
                r->buf += res[i];
                r->offset += (uint64_t)res[i];
                r->nbytes -= (size_t)res[i];
                int rc = ops->prep(w->ctx, k, r);
                if (rc == 0) {
                    resubmit++;
                    continue;
                }
                record_failure(aio, op, r->write, false, -rc, r->nbytes, r->offset);
                failed = true;
            }
            busy[k] = false;
            inflight--;
        }
        if (resubmit) {
            int rc = ops->submit(w->ctx);
            if (rc < 0) {
                record_failure(aio, op, op->write, false, -rc, bs, s->offset);
                inflight -= resubmit;
                failed = true;
            }
        }
    }
}

/* The threads backend: blocking pread/pwrite, block_size at a time. */
static void run_slice_threads(aio_worker *w, const aio_slice *s)
{
    const aio_op *op = s->op;
    const size_t bs = w->aio->cfg.block_size;
    size_t pos = 0;
    while (pos < s->nbytes) {
        size_t n = s->nbytes - pos < bs ? s->nbytes - pos : bs;
        uint64_t off = s->offset + pos;
        ssize_t rc = op->write ? pwrite(op->fd, s->buf + pos, n, (off_t)off)
                               : pread(op->fd, s->buf + pos, n, (off_t)off);
        if (rc < 0 && errno == EINTR) continue;
        if (rc < 0) {
            record_failure(w->aio, op, op->write, false, errno, n, off);
            return;
        }
        if (rc == 0) {
            record_failure(w->aio, op, op->write, !op->write, op->write ? ENOSPC : 0, n, off);
            return;
        }
        pos += (size_t)rc; /* short: the next round asks for the rest */
    }
}

static void *worker_main(void *arg)
{
    aio_worker *w = arg;
    zl_aio *aio = w->aio;
    pthread_mutex_lock(&aio->mu);
    for (;;) {
        while (aio->qlen == 0 && !aio->stop) pthread_cond_wait(&aio->work_cv, &aio->mu);
        if (aio->qlen == 0) break; /* stop, and nothing left */
        aio_slice s = aio->queue[aio->qhead];
        aio->qhead = (aio->qhead + 1) % aio->qcap;
        aio->qlen--;
        pthread_mutex_unlock(&aio->mu);
        if (aio->ops)
            run_slice_queued(w, &s);
        else
            run_slice_threads(w, &s);
        pthread_mutex_lock(&aio->mu);
        if (--s.op->slices_left == 0) {
            free(s.op->path);
            free(s.op);
            aio->ops_pending--;
            aio->ops_completed++;
            pthread_cond_broadcast(&aio->done_cv);
        }
    }
    pthread_mutex_unlock(&aio->mu);
    return NULL;
}

/* ---------------------------------------------------------------- engine */

static void stop_workers(zl_aio *aio)
{
    pthread_mutex_lock(&aio->mu);
    aio->stop = true;
    pthread_cond_broadcast(&aio->work_cv);
    pthread_mutex_unlock(&aio->mu);
    for (int i = 0; i < aio->nworkers; i++)
        if (aio->workers[i].started) pthread_join(aio->workers[i].thread, NULL);
    for (int i = 0; i < aio->nworkers; i++)
        if (aio->workers[i].ctx) aio->ops->fini(aio->workers[i].ctx);
}

void zl_aio_destroy(zl_aio *aio)
{
    if (!aio) return;
    if (aio->workers) stop_workers(aio);
    pthread_mutex_destroy(&aio->mu);
    pthread_cond_destroy(&aio->work_cv);
    pthread_cond_destroy(&aio->done_cv);
    free(aio->workers);
    free(aio->queue);
    free(aio);
}

/* One backend: its contexts in this thread (so a refusal is reported here), then the
 * workers. */
static zl_status start(zl_aio *aio, zl_aio_backend backend)
{
    aio->backend = backend;
    aio->ops = NULL;
#ifdef ZL_HAVE_LIBURING
    if (backend == ZL_AIO_LIBURING) aio->ops = &zl__aio_liburing;
#endif
#ifdef ZL_HAVE_LIBAIO
    if (backend == ZL_AIO_LIBAIO) aio->ops = &zl__aio_libaio;
#endif
    aio->nworkers = aio->cfg.intra_op_parallelism * (aio->ops ? 1 : aio->cfg.queue_depth);
    aio->workers = calloc((size_t)aio->nworkers, sizeof *aio->workers);
    if (!aio->workers) return zl_errorf(ZL_ERR_NOMEM, "aio: cannot allocate its workers");
    for (int i = 0; i < aio->nworkers; i++) {
        aio->workers[i].aio = aio;
        if (!aio->ops) continue;
        int rc = aio->ops->init(&aio->workers[i].ctx, aio->cfg.queue_depth);
        if (rc < 0) {
            zl_status st = zl_errorf(
                ZL_ERR_IO,
                "aio: the kernel refused %s with queue_depth %d: %s\n"
                "  hint: %s",
                aio->ops->name, aio->cfg.queue_depth, strerror(-rc),
                backend == ZL_AIO_LIBURING
                    ? "io_uring may be disabled (sysctl kernel.io_uring_disabled, or a "
                      "container's seccomp profile); configure --with-aio=libaio or threads"
                    : "raise fs.aio-max-nr (sysctl), or configure --with-aio=threads");
            stop_workers(aio);
            free(aio->workers);
            aio->workers = NULL;
            return st;
        }
    }
    for (int i = 0; i < aio->nworkers; i++) {
        if (pthread_create(&aio->workers[i].thread, NULL, worker_main, &aio->workers[i])) {
            stop_workers(aio);
            free(aio->workers);
            aio->workers = NULL;
            return zl_errorf(ZL_ERR_NOMEM, "aio: cannot start worker thread %d of %d", i + 1,
                             aio->nworkers);
        }
        aio->workers[i].started = true;
    }
    return ZL_OK;
}

zl_status zl_aio_create(zl_aio **out, const zl_aio_config *cfg, zl_aio_backend backend)
{
    *out = NULL;
    zl_status st = zl_aio_config_check(cfg);
    if (st) return st;
    if (!zl_aio_backend_built(backend))
        return zl_errorf(ZL_ERR_UNSUPPORTED,
                         "aio backend %s is not built into this zerolab\n"
                         "  hint: apt-get install %s and reconfigure, or use threads",
                         zl_aio_backend_str(backend),
                         backend == ZL_AIO_LIBURING ? "liburing-dev" : "libaio-dev");
    zl_aio *aio = calloc(1, sizeof *aio);
    if (!aio) return zl_errorf(ZL_ERR_NOMEM, "aio: cannot allocate the engine");
    aio->cfg = *cfg;
    pthread_mutex_init(&aio->mu, NULL);
    pthread_cond_init(&aio->work_cv, NULL);
    pthread_cond_init(&aio->done_cv, NULL);
    if (backend != ZL_AIO_AUTO) {
        st = start(aio, backend);
    } else {
        const zl_aio_backend order[] = {ZL_AIO_LIBURING, ZL_AIO_LIBAIO, ZL_AIO_THREADS};
        for (size_t i = 0; i < sizeof order / sizeof *order; i++) {
            if (!zl_aio_backend_built(order[i])) continue;
            st = start(aio, order[i]);
            if (st == ZL_OK) break;
            zl_log_debug("aio: %s unavailable, trying the next backend: %s",
                         zl_aio_backend_str(order[i]), zl_last_error());
        }
    }
    if (st) {
        zl_aio_destroy(aio);
        return st;
    }
    *out = aio;
    return ZL_OK;
}

const char *zl_aio_backend_name(const zl_aio *aio) { return zl_aio_backend_str(aio->backend); }

const zl_aio_config *zl_aio_get_config(const zl_aio *aio) { return &aio->cfg; }

static zl_status push_slice(zl_aio *aio, aio_slice s)
{
    if (aio->qlen == aio->qcap) {
        size_t cap = aio->qcap ? 2 * aio->qcap : 64;
        aio_slice *q = malloc(cap * sizeof *q);
        if (!q) return zl_errorf(ZL_ERR_NOMEM, "aio: cannot grow the request queue");
        for (size_t i = 0; i < aio->qlen; i++) q[i] = aio->queue[(aio->qhead + i) % aio->qcap];
        free(aio->queue);
        aio->queue = q, aio->qcap = cap, aio->qhead = 0;
    }
    aio->queue[(aio->qhead + aio->qlen) % aio->qcap] = s;
    aio->qlen++;
    return ZL_OK;
}

/* Cut a transfer into one slice per worker, each a multiple of 4096 bytes (the last
 * takes the rest) and at least a block, so small transfers stay whole. */
static zl_status submit(zl_aio *aio, bool write, int fd, void *buf, size_t nbytes,
                        uint64_t offset, const char *path)
{
    if (nbytes == 0) return ZL_OK;
    if (fd < 0 || !buf) return zl_errorf(ZL_ERR_INVALID, "aio: no file or no buffer for %s", path);
    aio_op *op = calloc(1, sizeof *op);
    char *p = strdup(path ? path : "(unnamed)");
    if (!op || !p) {
        free(op), free(p);
        return zl_errorf(ZL_ERR_NOMEM, "aio: cannot queue a transfer of %s", path);
    }
    *op = (aio_op){write, fd, buf, nbytes, offset, 0, p};
    int workers = aio->ops ? aio->cfg.intra_op_parallelism : aio->nworkers;
    size_t per = (nbytes + (size_t)workers - 1) / (size_t)workers;
    size_t floor_nbytes = aio->cfg.block_size;
    if (per < floor_nbytes) per = floor_nbytes;
    per = (per + ALIGN - 1) / ALIGN * ALIGN;
    int nslices = (int)((nbytes + per - 1) / per);
    op->slices_left = nslices;
    pthread_mutex_lock(&aio->mu);
    zl_status st = ZL_OK;
    for (int i = 0; i < nslices && st == ZL_OK; i++) {
        size_t at = (size_t)i * per;
        size_t n = nbytes - at < per ? nbytes - at : per;
        st = push_slice(aio, (aio_slice){op, (char *)buf + at, n, offset + at});
        if (st) { /* drop the slices not queued; the queued ones still run */
            op->slices_left -= nslices - i;
            if (op->slices_left == 0) free(op->path), free(op);
            else aio->ops_pending++;
            pthread_cond_broadcast(&aio->work_cv);
            pthread_mutex_unlock(&aio->mu);
            return st;
        }
    }
    aio->ops_pending++;
    pthread_cond_broadcast(&aio->work_cv);
    pthread_mutex_unlock(&aio->mu);
    return ZL_OK;
}

zl_status zl_aio_pread(zl_aio *aio, int fd, void *buf, size_t nbytes, uint64_t offset,
                       const char *path)
{
    return submit(aio, false, fd, buf, nbytes, offset, path);
}

zl_status zl_aio_pwrite(zl_aio *aio, int fd, const void *buf, size_t nbytes, uint64_t offset,
                        const char *path)
{
    return submit(aio, true, fd, (void *)buf, nbytes, offset, path);
}

zl_status zl_aio_wait(zl_aio *aio, size_t *completed)
{
    pthread_mutex_lock(&aio->mu);
    while (aio->ops_pending > 0) pthread_cond_wait(&aio->done_cv, &aio->mu);
    if (completed) *completed = aio->ops_completed;
    aio->ops_completed = 0;
    aio_failure f = aio->failure;
    aio->failure.set = false;
    pthread_mutex_unlock(&aio->mu);
    return f.set ? failure_status(&f) : ZL_OK;
}
