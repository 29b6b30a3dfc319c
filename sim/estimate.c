/* DeepSpeed's model-state memory estimators (see estimate.h). The arithmetic follows
 * DeepSpeed's Python expression by expression: counts and factors as doubles, products
 * left to right, int() as truncation toward zero, so every byte count equals DeepSpeed's. */
#include "sim/estimate.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/checked.h"

static double dmax(double a, double b) { return a >= b ? a : b; } /* Python's max(a, b) */

/* Python's int(x) for the non-negative values here; INT64_MAX from 2^63 up (a conversion
 * out of range would be undefined), which zl_estimate_compute refuses. */
static int64_t trunc64(double x) { return x < 0x1p63 ? (int64_t)x : INT64_MAX; }

void zl_estimate_request_init(zl_estimate_request *r)
{
    memset(r, 0, sizeof *r);
    r->stage = 3;
    r->gpus_per_node = 1;
    r->nodes = 1;
    r->additional_buffer_factor = ZL_ESTIMATE_DEFAULT_BUFFER_FACTOR;
}

zl_status zl_estimate_validate(const zl_estimate_request *r)
{
    if (r->stage != 2 && r->stage != 3)
        return zl_errorf(ZL_ERR_INVALID, "ZeRO stage %d has no estimator: use stage 2 or 3", r->stage);
    if (r->total_params < 1 || r->total_params > ZL_ESTIMATE_MAX_PARAMS)
        return zl_errorf(ZL_ERR_INVALID, "total params %lld out of range: must be between 1 and 2^53",
                         (long long)r->total_params);
    if (r->stage == 3 && (r->largest_layer_params < 1 || r->largest_layer_params > r->total_params))
        return zl_errorf(ZL_ERR_INVALID,
                         "largest layer params %lld out of range: must be between 1 and the total "
                         "params (%lld)",
                         (long long)r->largest_layer_params, (long long)r->total_params);
    if (r->gpus_per_node < 1 || r->nodes < 1)
        return zl_errorf(ZL_ERR_INVALID, "%s must be at least 1 (got %d)",
                         r->gpus_per_node < 1 ? "GPUs per node" : "nodes",
                         r->gpus_per_node < 1 ? r->gpus_per_node : r->nodes);
    if ((int64_t)r->gpus_per_node * r->nodes > INT32_MAX)
        return zl_errorf(ZL_ERR_INVALID, "%d nodes x %d GPUs per node is too many GPUs", r->nodes,
                         r->gpus_per_node);
    if (!isfinite(r->additional_buffer_factor) || !(r->additional_buffer_factor > 0))
        return zl_errorf(ZL_ERR_INVALID, "additional buffer factor %g must be a positive number",
                         r->additional_buffer_factor);
    return ZL_OK;
}

void zl_estimate_zero2(int64_t total_params, int gpus_per_node, int nodes, bool cpu_offload,
                       double additional_buffer_factor, bool legacy, int64_t *cpu_bytes,
                       int64_t *gpu_bytes)
{
    double P = (double)total_params, abf = additional_buffer_factor;
    double total_gpus = (double)nodes * gpus_per_node;
    double cpu, gpu;
    if (cpu_offload) {
        gpu = 2 * P;
        cpu = P * dmax(4 * total_gpus, 16) * abf;
    } else {
        /* 2 = fp16 params; 18 = fp16 grads 2 + fp32 grads 4 + fp32 params 4 + Adam 8.
         * Before DeepSpeed PR #5099: 4 * P + int(16 * P / total_gpus). */
        gpu = legacy ? 4 * P + (double)trunc64(16 * P / total_gpus)
                     : 2 * P + (double)trunc64(18 * P / total_gpus);
        cpu = P * 4 * gpus_per_node * abf;
    }
    *cpu_bytes = trunc64(cpu);
    *gpu_bytes = trunc64(gpu);
}

void zl_estimate_zero3(int64_t total_params, int64_t largest_layer_params, int gpus_per_node,
                       int nodes, bool cpu_offload, bool cpu_offload_params, bool zero_init,
                       double additional_buffer_factor, int64_t *cpu_bytes, int64_t *gpu_bytes,
                       int64_t *largest_layer_memory)
{
    double P = (double)total_params, L = (double)largest_layer_params;
    double abf = additional_buffer_factor, g = gpus_per_node;
    double total_gpus = (double)nodes * gpus_per_node;
    double gpus_factor = 1.0 / nodes;
    double llm = 4 * L;
    double cpu, gpu;
    if (cpu_offload && cpu_offload_params) {
        gpu = llm;
        cpu = zero_init ? P * 18 * gpus_factor * abf : P * dmax(4 * g, 18 * gpus_factor) * abf;
    } else if (cpu_offload) {
        gpu = llm + (double)trunc64(2 * P / total_gpus);
        cpu = zero_init ? P * 16 * gpus_factor * abf : P * dmax(4 * g, 16 * gpus_factor) * abf;
    } else {
        /* DeepSpeed ignores cpu_offload_params without cpu_offload (it prints no such row) */
        gpu = llm + (double)trunc64(18 * P / total_gpus);
        cpu = zero_init ? L * 4 * g * abf : P * 4 * g * abf;
    }
    *cpu_bytes = trunc64(cpu);
    *gpu_bytes = trunc64(gpu);
    if (largest_layer_memory) *largest_layer_memory = trunc64(llm);
}

/* A byte count that reached 2^63 was saturated by trunc64: refuse the request. */
static zl_status check_rows(const zl_estimate_request *r, const zl_estimate_table *t)
{
    for (int i = 0; i < t->num_rows; i++)
        if (t->rows[i].cpu_bytes == INT64_MAX || t->rows[i].gpu_bytes == INT64_MAX)
            return zl_errorf(ZL_ERR_INVALID,
                             "the estimate for %lld params on %d nodes x %d GPUs with additional "
                             "buffer factor %g is 2^63 bytes or more: lower the counts or the "
                             "factor", (long long)r->total_params, r->nodes, r->gpus_per_node,
                             r->additional_buffer_factor);
    return ZL_OK;
}

zl_status zl_estimate_compute(const zl_estimate_request *r, zl_estimate_table *t)
{
    zl_status st = zl_estimate_validate(r);
    if (st != ZL_OK) return st;
    memset(t, 0, sizeof *t);
    t->stage = r->stage;
    if (r->stage == 2) {
        for (int off = 1; off >= 0; off--) { /* DeepSpeed: for cpu_offload in [True, False] */
            zl_estimate_row *row = &t->rows[t->num_rows++];
            row->offload_optimizer = off;
            zl_estimate_zero2(r->total_params, r->gpus_per_node, r->nodes, off,
                              r->additional_buffer_factor, r->zero2_legacy, &row->cpu_bytes,
                              &row->gpu_bytes);
        }
        return check_rows(r, t);
    }
    for (int off = 1; off >= 0; off--)
        for (int off_params = 1; off_params >= 0; off_params--) {
            if (!off && off_params) continue;
            for (int zi = 1; zi >= 0; zi--) {
                zl_estimate_row *row = &t->rows[t->num_rows++];
                row->offload_optimizer = off;
                row->offload_param = off_params;
                row->zero_init = zi;
                zl_estimate_zero3(r->total_params, r->largest_layer_params, r->gpus_per_node,
                                  r->nodes, off, off_params, zi, r->additional_buffer_factor,
                                  &row->cpu_bytes, &row->gpu_bytes, &t->largest_layer_memory);
            }
        }
    return check_rows(r, t);
}

void zl_estimate_format_options(int stage, const zl_estimate_row *row, char *buf, size_t size)
{
    /* DeepSpeed formats the device as f'{OffloadDeviceEnum.cpu:4}': "cpu " */
    const char *opt = row->offload_optimizer ? "cpu " : "none";
    if (stage == 2)
        snprintf(buf, size, "offload_optimizer=%s", opt);
    else
        snprintf(buf, size, "offload_param=%s, offload_optimizer=%s, zero_init=%d",
                 row->offload_param ? "cpu " : "none", opt, row->zero_init ? 1 : 0);
}

void zl_estimate_format_row(int stage, const zl_estimate_row *row, char *buf, size_t size)
{
    char options[96];
    zl_estimate_format_options(stage, row, options, sizeof options);
    /* bytes / 2**30 is exact in binary, and printf rounds the exact value to nearest (ties
     * to even) as Python's format() does */
    snprintf(buf, size, " %7.2fGB | %6.2fGB | %s", (double)row->cpu_bytes / 1073741824.0,
             (double)row->gpu_bytes / 1073741824.0, options);
}

zl_status zl_estimate_print(const zl_estimate_request *r, FILE *out)
{
    zl_estimate_table t;
    zl_status st = zl_estimate_compute(r, &t);
    if (st != ZL_OK) return st;
    fprintf(out, "Estimated memory needed for params, optim states and gradients for a:\n");
    fprintf(out, "HW: Setup with %d %s, %d %s per node.\n", r->nodes, r->nodes > 1 ? "nodes" : "node",
            r->gpus_per_node, r->gpus_per_node > 1 ? "GPUs" : "GPU");
    /* Python's int(total_params/1e6): truncation of the float quotient */
    if (r->stage == 2)
        fprintf(out, "SW: Model with %lldM total params.\n",
                (long long)trunc64((double)r->total_params / 1e6));
    else
        fprintf(out, "SW: Model with %lldM total params, %lldM largest layer params.\n",
                (long long)trunc64((double)r->total_params / 1e6),
                (long long)trunc64((double)r->largest_layer_params / 1e6));
    fprintf(out, "  per CPU  |  per GPU |   Options\n");
    for (int i = 0; i < t.num_rows; i++) {
        char line[160];
        zl_estimate_format_row(t.stage, &t.rows[i], line, sizeof line);
        fprintf(out, "%s\n", line);
    }
    if (fflush(out) != 0 || ferror(out))
        return zl_errorf(ZL_ERR_IO, "cannot write the estimate: %s", strerror(errno));
    return ZL_OK;
}

zl_status zl_estimate_parse_count(const char *text, int64_t *count)
{
    static const char hint[] = "expected a whole number of parameters such as 2851000000, 2851e6, "
                               "2.851e9, 2851M or 2.851B (suffixes K, M, B or G, T)";
    const char *s = text;
    /* digits, an optional fraction and exponent: no sign, hex, inf or nan */
    if (!(isdigit((unsigned char)s[0]) || (s[0] == '.' && isdigit((unsigned char)s[1]))) ||
        strpbrk(s, "xXpP"))
        return zl_errorf(ZL_ERR_INVALID, "'%s' is not a parameter count: %s", text, hint);
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    double scale = 1;
    if (*end) {
        switch (*end) {
        case 'k': case 'K': scale = 1e3; break;
        case 'm': case 'M': scale = 1e6; break;
        case 'b': case 'B': case 'g': case 'G': scale = 1e9; break;
        case 't': case 'T': scale = 1e12; break;
        default: scale = 0;
        }
        if (!scale || end[1])
            return zl_errorf(ZL_ERR_INVALID, "'%s' is not a parameter count: %s", text, hint);
    }
    v *= scale;
    if (errno == ERANGE || !isfinite(v) || v > (double)ZL_ESTIMATE_MAX_PARAMS)
        return zl_errorf(ZL_ERR_INVALID, "'%s' parameters is too many: the most is 2^53", text);
    /* "2.851B" is 2851000000 up to the rounding of 2.851 in binary */
    double whole = nearbyint(v);
    if (fabs(v - whole) > 1e-9 * fmax(1.0, whole))
        return zl_errorf(ZL_ERR_INVALID, "'%s' is not a whole number of parameters (%.17g): %s",
                         text, v, hint);
    *count = (int64_t)whole;
    return ZL_OK;
}

/* The module of a parameter: its name up to the last '.' ("" for a top-level one). */
static size_t module_len(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot ? (size_t)(dot - name) : 0;
}

static bool same_module(const char *a, const char *b)
{
    size_t la = module_len(a), lb = module_len(b);
    return la == lb && !strncmp(a, b, la);
}

void zl_estimate_count_params(const zl_estimate_tensor *tensors, size_t n, int64_t *total,
                              int64_t *largest_layer)
{
    int64_t sum = 0, largest = 0; /* saturating at INT64_MAX, which validate refuses */
    for (size_t i = 0; i < n; i++) {
        sum = zl_sat_add_i64(sum, tensors[i].numel);
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++) seen = same_module(tensors[j].name, tensors[i].name);
        if (seen) continue; /* this module was summed at its first tensor */
        int64_t own = 0;
        for (size_t j = i; j < n; j++)
            if (same_module(tensors[j].name, tensors[i].name)) own = zl_sat_add_i64(own, tensors[j].numel);
        if (own > largest) largest = own;
    }
    *total = sum;
    *largest_layer = largest;
}
