/* ZeRO-Offload of the optimizer (offload_optimizer.device "cpu", stages 1-3): the
 * optimizer's partition lives on the host device and its step runs on the CPU, as
 * DeepSpeed's ZeRO optimizers do with cpu_offload (stage_1_and_2.py, stage3.py):
 *
 *   where                  what (this rank's partition of P elements; Ψ/N at stages 1-3)
 *   host "master"          f32 master weights                       4 P bytes
 *   host "adam.m", "adam.v" Adam's moments (the engine's zl_adamw)  8 P
 *   host "offload.grad"    f32 gradient of the partition            4 P
 *   host "offload.param"   the stepped partition in the model's type, staged for the
 *                          copy to the device (DeepSpeed's pinned 16-bit buffer)  2 or 4 P
 *
 * At the accumulation boundary, after the overflow check and the norm (on the device,
 * over the reduced gradient, as without offload: the same numbers; at stage 2 on the host,
 * over offload.grad, where backward has already put the gradient: add_share below), step():
 *   1. D2H   (stages 1, 3) the reduced gradient share into offload.grad, in f32: an f32 gradient is
 *            copied as is; a 16-bit one is widened on the device piece by piece through
 *            the precision policy's scratch and each piece copied (DeepSpeed casts each
 *            gradient slice to fp32 on the GPU, then copies it: 4 bytes per element cross
 *            the link);
 *   2. the CPU's Adam on the host buffers (the host device's adamw kernel, the same
 *            kernel the device runs without offload), writing the rounded partition into
 *            offload.param in the same pass;
 *   3. H2D   offload.param into this rank's slice of the device's parameters;
 * then the stage's allgather as without offload. Widening is exact and the kernel widens
 * 16-bit gradients the same way in its registers, so every bit is as without offload.
 *
 * On a simulated card the copies are charged to its host link (zl_device_copy), and the
 * CPU's step to the host compute stream at the node's memory bandwidth (zl_sim_host_compute):
 * compute waits for the D2H before the step (DeepSpeed synchronises its copy stream),
 * the step holds the host thread (nothing new reaches the GPU meanwhile), and the
 * allgather waits for the H2D. */
#include "zero/zero_internal.h"

#include "base/log.h"

zl_status zl__zero_offload_alloc(zl_zero_ctx *z, size_t numel)
{
    if (z->nvme) return zl__zero_nvme_alloc(z, numel); /* zero/offload_nvme.c */
    int64_t n = (int64_t)numel;
    zl_status st;
    if ((st = zl_tensor_alloc(z->master, z->host, "master", ZL_F32, 1, &n)) != ZL_OK ||
        (st = zl_tensor_alloc(&z->offload_grad, z->host, "offload.grad", ZL_F32, 1, &n)) != ZL_OK ||
        (st = zl_tensor_alloc(&z->offload_param, z->host, "offload.param", z->prec->dtype, 1, &n)) != ZL_OK)
        return st;
    return ZL_OK;
}

void zl__zero_offload_free(zl_zero_ctx *z)
{
    zl__zero_nvme_free(z);
    zl_tensor_free(&z->offload_param);
    zl_tensor_free(&z->offload_grad);
}

void zl__zero_master_init(zl_zero_ctx *z, size_t off, const void *src, size_t n)
{
    zl_dtype t = z->prec->dtype;
    if (z->nvme) {
        zl__zero_nvme_master_init(z, off, src, n);
        return;
    }
    float *master = (float *)z->master->data + off;
    if (!z->offload) {
        z->device->ops->cast(z->device->ops, master, ZL_F32, src, t, n);
        return;
    }
    /* The values come over in the model's type (through the staging buffer, at the same
     * offset) and are widened by the host: the same f32 numbers. */
    void *stage = zl__at(z->offload_param.data, t, off);
    zl_device_copy(z->host, stage, z->device, src, n * zl_dtype_nbytes(t));
    zl_device_copy_wait(z->device);
    z->host->ops->cast(z->host->ops, master, ZL_F32, stage, t, n);
}

zl_status zl_zero_init_status(zl_zero_ctx *z)
{
    return z->nvme ? zl__zero_nvme_init_status(z) : ZL_OK;
}

/* Step 1: the device's gradient share (n elements of grad_dtype) into dst (f32, host). */
zl_status zl__zero_offload_grads_to_host(zl_zero_ctx *z, float *dst, const void *grads, size_t n)
{
    zl_dtype gt = z->prec->grad_dtype;
    if (gt == ZL_F32) return zl_device_copy(z->host, dst, z->device, grads, n * sizeof(float));
    /* 16 bits: the policy's f32 scratch (16-bit training always has it) is the device's
     * cast buffer, one piece at a time. */
    float *scratch = zl_tensor_f32(&z->prec->scratch);
    ZL_ASSERT(scratch || z->device->ops->meta);
    size_t piece = ZL_VEC_SCRATCH_NUMEL;
    for (size_t i = 0; i < n; i += piece) {
        size_t len = n - i < piece ? n - i : piece;
        z->device->ops->cast(z->device->ops, scratch, ZL_F32, zl__at((void *)grads, gt, i), gt, len);
        zl_status st = zl_device_copy(z->host, dst + i, z->device, scratch, len * sizeof(float));
        if (st != ZL_OK) return st;
        zl_device_copy_wait(z->device); /* the next piece's cast rewrites the scratch */
    }
    return ZL_OK;
}

/* ZeRO-2: a layer's reduced share, on its way to the host during backward. DeepSpeed
 * (stage_1_and_2.py, copy_grads_in_partition) copies each parameter's slice of the
 * partition into the fp32 CPU gradient as its bucket is reduced, so no gradient partition
 * stays on the GPU; with gradient accumulation it keeps the partial sums on the host in
 * the 16-bit type and adds each micro-step's into them (through a GPU buffer). Here, piece
 * by piece: widened on the device through the precision policy's f32 scratch (an f32
 * share is copied as is: 4 bytes per element cross the link either way), copied into
 * the landing zone (the start of offload.param, free until the step), and added into
 * offload.grad by the host's kernels. A 16-bit grad_dtype then rounds the sum to
 * grad_dtype and widens it back, so offload.grad holds, widened, exactly the 16-bit
 * partition the device would have accumulated (the same bits after the step, which
 * tests/mpi/check_offload.c asserts; and DeepSpeed's 16-bit partial sums). The first
 * micro-step after zero_grads writes instead of adding: each element of the partition gets
 * one share per micro-step, and 0 + x is x (but -0: +0; a zero gradient of either sign
 * steps Adam alike). Only the copies are charged on a simulated card: to the host link,
 * beside the backward compute issued after them, until the next layer's gradients need the
 * bucket they left (stage2.c's begin_grads waits for them: one bucket, so a layer's copy
 * overlaps the next layer's backward, not more; a second bucket would let it run on). */
zl_status zl__zero_offload_add_share(zl_zero_ctx *z, size_t off, const void *g, size_t n)
{
    zl_dtype ct = z->prec->comm_dtype, gt = z->prec->grad_dtype;
    const zl_ops *dops = z->device->ops, *hops = z->host->ops;
    float *acc = (float *)z->offload_grad.data + off;
    float *land = z->offload_param.data;
    float *scratch = zl_tensor_f32(&z->prec->scratch);
    ZL_ASSERT(ct == ZL_F32 || scratch || dops->meta);
    size_t cap = zl_tensor_nbytes(&z->offload_param) / sizeof(float);
    size_t piece = cap < ZL_VEC_SCRATCH_NUMEL ? cap : ZL_VEC_SCRATCH_NUMEL;
    ZL_ASSERT(piece > 0 || n == 0);
    bool add = !z->offload_grad_fresh;
    for (size_t i = 0; i < n; i += piece) {
        size_t len = n - i < piece ? n - i : piece;
        const float *src = (const float *)zl__at((void *)g, ct, i);
        if (ct != ZL_F32) {
            dops->cast(dops, scratch, ZL_F32, zl__at((void *)g, ct, i), ct, len);
            src = scratch;
        }
        zl_status st = zl_device_copy(z->host, add ? land : acc + i, z->device, src, len * sizeof(float));
        if (st != ZL_OK) return st;
        /* The host reads what came (the sum, the rounding) or the next piece's cast
         * rewrites the scratch: the copy must be done. A share copied as it is, straight
         * into offload.grad, may stay in flight: its bucket waits before it is reused
         * (stage2.c, begin_grads) and the host's reads at the end of backward. */
        bool rounds = gt != ZL_F32 && (add || ct != gt);
        if (add || rounds || src == scratch) zl_device_copy_wait(z->device);
        if (add) hops->axpy(hops, acc + i, 1.0f, land, len);
        /* Round to grad_dtype (a written 16-bit share is already exact). */
        if (gt != ZL_F32 && (add || ct != gt)) {
            hops->cast(hops, land, gt, acc + i, ZL_F32, len);
            hops->cast(hops, acc + i, ZL_F32, land, gt, len);
        }
    }
    return ZL_OK;
}

zl_status zl__zero_offload_step(zl_zero_ctx *z, void *params, const void *grads, size_t n,
                                const zl_param_range *r, int nr, double lr, double beta1,
                                float grad_scale)
{
    ZL_ASSERT(z->offload && n <= z->opt_numel);
    if (z->nvme) return zl__zero_nvme_step(z, params, grads, n, r, nr, lr, beta1, grad_scale);
    zl_dtype t = z->prec->dtype;
    size_t psz = zl_dtype_nbytes(t);
    /* Stage 2's gradient is on the host already (zl__zero_offload_add_share). */
    zl_status st = grads == z->offload_grad.data
                       ? ZL_OK
                       : zl__zero_offload_grads_to_host(z, z->offload_grad.data, grads, n);
    if (st != ZL_OK) return st;
    zl_device_copy_wait(z->device); /* the step reads what the copies brought */
    /* Adam on the host's kernel; the moments were allocated on the host (z->adam->device). */
    ZL_ASSERT(z->adam->device == z->host);
    /* With offload_param (stage 3) the parameters live on the host too: the step writes
     * them in place, and nothing goes to the device until a layer's fetch. */
    bool params_on_host = z->params->device == z->host;
    zl_adamw_step_lp(z->adam, z->master->data, z->offload_grad.data, ZL_F32,
                     params_on_host ? params : z->offload_param.data, t, r, nr, lr, beta1,
                     grad_scale);
    /* What the CPU's pass moves: reads weights, m, v and the f32 gradient, writes
     * weights, m and v (4 bytes each), and the rounded copy. */
    if (z->device->sim)
        zl_sim_host_compute(z->device->sim, "cpu_adam", (double)n * (28.0 + (double)psz));
    if (params_on_host || !params) return ZL_OK; /* !params: stage 3's NVMe files take it */
    if ((st = zl_device_copy(z->device, params, z->host, z->offload_param.data, n * psz)) != ZL_OK)
        return st;
    zl_device_copy_wait(z->device); /* the allgather sends what the copy brought */
    return ZL_OK;
}
