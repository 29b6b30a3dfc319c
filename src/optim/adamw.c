/* The Adam / AdamW driver: bookkeeping around the device's element-wise kernel. */
#include "optim/adamw.h"

#include <math.h>
#include <string.h>

#include "base/log.h"

zl_status zl_adamw_init(zl_adamw *opt, zl_device *dev, size_t numel, const zl_optimizer_params *p)
{
    memset(opt, 0, sizeof *opt);
    int64_t shape[1] = {(int64_t)numel};
    zl_status st = zl_tensor_alloc(&opt->m, dev, "adam.m", ZL_F32, 1, shape);
    if (st != ZL_OK) return st;
    st = zl_tensor_alloc(&opt->v, dev, "adam.v", ZL_F32, 1, shape);
    if (st != ZL_OK) {
        zl_tensor_free(&opt->m);
        return st;
    }
    opt->device = dev;
    opt->p = *p;
    opt->numel = numel;
    opt->step = 0;
    return ZL_OK;
}

void zl_adamw_step(zl_adamw *opt, float *params, const float *grads, const zl_param_range *ranges,
                   int nranges, double lr, double beta1, float grad_scale)
{
    zl_adamw_step_lp(opt, params, grads, ZL_F32, NULL, ZL_F32, ranges, nranges, lr, beta1,
                     grad_scale);
}

void zl_adamw_step_lp(zl_adamw *opt, float *params, const void *grads, zl_dtype grad_type,
                      void *param_out, zl_dtype param_type, const zl_param_range *ranges,
                      int nranges, double lr, double beta1, float grad_scale)
{
    ZL_ASSERT(opt->device && opt->device->ops->adamw);
    ZL_ASSERT(nranges >= 0 && (nranges == 0 || ranges));
    opt->step++;
    double t = (double)opt->step;
    /* The kernel takes fp32 hyperparameters (as FusedAdam's does). The bias corrections
     * are computed in double from the same fp32 betas the moments use, so that they match:
     * at t = 1, v = (1 - b2) g^2 and bias_correction2 = 1 - b2 cancel exactly, whereas
     * 1 - 0.999 in double against the kernel's 1 - 0.999f would be 1.3e-5 apart. */
    float b1 = (float)beta1, b2 = (float)opt->p.beta2;
    zl_adamw_args args = {
        .lr = (float)lr,
        .beta1 = b1,
        .beta2 = b2,
        .eps = (float)opt->p.eps,
        .bias_correction1 = opt->p.bias_correction ? (float)(1.0 - pow(b1, t)) : 1.0f,
        .bias_correction2 = opt->p.bias_correction ? (float)(1.0 - pow(b2, t)) : 1.0f,
        .grad_scale = grad_scale,
        .adamw_mode = opt->p.adam_w_mode,
        .sumsq = opt->sumsq,
    };
    float *m = zl_tensor_f32(&opt->m), *v = zl_tensor_f32(&opt->v);
    for (int i = 0; i < nranges;) {
        size_t off = ranges[i].offset, n = ranges[i].numel;
        bool decay = ranges[i].decay;
        ZL_ASSERT(off <= opt->numel && n <= opt->numel - off);
        /* Merge the contiguous run with the same decay flag into one kernel call: a model's
         * table alternates many small ranges (biases, LayerNorm), and each call of a
         * parallel kernel pays a fork/join. The op is element-wise, so this is exact. */
        for (i++; i < nranges && ranges[i].decay == decay && ranges[i].offset == off + n; i++) {
            ZL_ASSERT(ranges[i].numel <= opt->numel - ranges[i].offset);
            n += ranges[i].numel;
        }
        if (n == 0) continue;
        args.weight_decay = decay ? (float)opt->p.weight_decay : 0.0f;
        /* 16-bit gradients are widened in the kernel's registers, so the step never holds
         * an f32 copy of the partition (DeepSpeed makes one; the ZeRO paper's 2+2+12 bytes
         * per parameter do not count it). */
        size_t gsz = zl_dtype_nbytes(grad_type), psz = param_out ? zl_dtype_nbytes(param_type) : 0;
        opt->device->ops->adamw(opt->device->ops, params + off, m + off, v + off,
                                (const char *)grads + off * gsz, grad_type,
                                param_out ? (char *)param_out + off * psz : NULL, param_type, n,
                                &args);
    }
}

void zl_adamw_destroy(zl_adamw *opt)
{
    zl_tensor_free(&opt->m);
    zl_tensor_free(&opt->v);
    memset(opt, 0, sizeof *opt);
}
