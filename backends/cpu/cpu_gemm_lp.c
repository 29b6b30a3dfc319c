/* gemm with 16-bit operands (ops.h: gemm_lp), on the CPU's bf16 hardware.
 *
 * A holds bf16 values as f32 (the model rounded them), so converting it to bf16 is exact:
 * keep the upper 16 bits, no rounding. B is the same, or already bf16 (the model's stored
 * weights, b_type): then oneDNN reads it as it is, and the sgemm path widens it into a
 * buffer of this file's. oneDNN's matmul then multiplies
 * the bf16 matrices with AVX512-BF16 dot products (vdpbf16ps: products exact, sums in f32),
 * which is what a GPU's tensor cores do with 16-bit inputs; C stays f32, because the
 * caller accumulates into it (beta = 1, gradients) and rounds it itself when it stores a
 * 16-bit tensor. The result equals sgemm's up to summation order. bench/gemm_lp_bench.c
 * has the measured rates.
 *
 * Where sgemm runs instead, on the same exact f32 values:
 *  - without oneDNN (configure --without-onednn), or when oneDNN's effective ISA lacks
 *    avx512_core_bf16 (no bf16 dot products: its bf16 matmul would be emulated, slower);
 *  - where sgemm was measured faster for the product's shape on this CPU (the path is
 *    timed at a shape's first use: cpu_gemm_choice.c);
 *  - for fp16 (no fp16 dot products on these CPUs) and fp32;
 *  - below LP_MIN_MACS multiply-adds, where converting and calling cost more than the
 *    bf16 rate saves, and for the shapes zl__cpu_gemm_lp's rules list (measured losses);
 *  - when oneDNN fails (logged once): library code never exits.
 *
 * oneDNN details: a matmul primitive is built for one shape, layout, alpha, beta and
 * thread count (oneDNN 2.x fixes alpha as output scales and beta as the scale of a sum
 * post-op when it builds the primitive, and sizes its parallel loops by
 * omp_get_max_threads() then), and building one costs far more than a small product; a
 * training step uses a dozen shapes, so primitives are cached by that key. beta = 0 has no
 * sum post-op, so C is written without being read (NaN in it ignored). The bf16 copies of
 * op(A) and op(B) are dense (leading dimension = their width), so the leading dimensions
 * of A and B are not part of the key; ldc and the transposes are strides in the memory
 * descriptors. The copies live in buffers owned by this file that grow to the largest
 * operand: an exception to "kernels do not allocate", like cuBLAS's workspace; the memory
 * is the backend's, not on the simulated device's ledger. Not thread-safe (cpu.h). */
#include <stdlib.h>

#include "backends/cpu/cpu.h"
#include "zl_build.h"
#include "base/log.h"

#ifdef ZL_HAVE_ONEDNN
#include <dnnl.h>

#define LP_CACHE 64

/* one primitive: a block of mb rows of C (all of them unless split: block_rows) */
typedef struct lp_key {
    int mb, n, k, lda, ldc, nthr; /* lda: of the dense bf16 copy of A */
    bool ta, tb;
    float alpha, beta;
} lp_key;

typedef struct lp_entry {
    lp_key key;
    dnnl_memory_desc_t a, b, c;
    dnnl_primitive_t prim;
    dnnl_memory_t am, bm, cm; /* no buffers of their own: set to the call's before each run */
} lp_entry;

static struct {
    int state; /* 0 not tried, 1 usable, -1 not usable */
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    lp_entry cache[LP_CACHE];
    int cached, evict; /* slots used; when all are, the next one to replace */
    uint16_t *abuf, *bbuf;
    size_t acap, bcap;
    long calls; /* products run by oneDNN (the tests check the path is taken) */
} g;

long zl__cpu_gemm_lp_onednn_calls(void) { return g.calls; }

static bool lp_ready(void);
bool zl__cpu_gemm_lp_onednn_usable(void) { return lp_ready(); }

static bool lp_ready(void)
{
    if (g.state) return g.state > 0;
    g.state = -1;
    /* the ISA values are cumulative bit sets (avx2_vnni's is larger but lacks AVX-512) */
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    if ((isa & dnnl_cpu_isa_avx512_core_bf16) != dnnl_cpu_isa_avx512_core_bf16) return false;
    if (dnnl_engine_create(&g.engine, dnnl_cpu, 0) != dnnl_success) return false;
    if (dnnl_stream_create(&g.stream, g.engine, dnnl_stream_default_flags) != dnnl_success)
        return false;
    g.state = 1;
    return true;
}

/* op(X) as (rows, cols), stored dense with leading dimension ld: (rows, cols) row-major,
 * or its transpose (cols, rows) row-major, i.e. strides (1, ld). */
static bool desc(dnnl_memory_desc_t *d, int rows, int cols, int ld, bool trans, dnnl_data_type_t t)
{
    dnnl_dims_t dims = {rows, cols};
    dnnl_dims_t strides = {trans ? 1 : ld, trans ? ld : 1};
    return dnnl_memory_desc_init_by_strides(d, 2, dims, t, strides) == dnnl_success;
}

/* field by field: memcmp would compare the struct's padding too */
static bool key_eq(const lp_key *x, const lp_key *y)
{
    return x->mb == y->mb && x->n == y->n && x->k == y->k && x->lda == y->lda &&
           x->ldc == y->ldc && x->nthr == y->nthr && x->ta == y->ta && x->tb == y->tb &&
           x->alpha == y->alpha && x->beta == y->beta;
}

static void lp_destroy(lp_entry *e)
{
    if (e->prim) dnnl_primitive_destroy(e->prim);
    if (e->am) dnnl_memory_destroy(e->am);
    if (e->bm) dnnl_memory_destroy(e->bm);
    if (e->cm) dnnl_memory_destroy(e->cm);
    memset(e, 0, sizeof *e);
}

static lp_entry *lp_primitive(const lp_key *key)
{
    for (int i = 0; i < g.cached; i++) /* an entry whose build failed has no primitive */
        if (g.cache[i].prim && key_eq(&g.cache[i].key, key)) return &g.cache[i];
    /* a model uses a dozen keys; past LP_CACHE (tests, many models), replace in turn */
    lp_entry *e;
    if (g.cached < LP_CACHE) {
        e = &g.cache[g.cached++];
    } else {
        e = &g.cache[g.evict];
        g.evict = (g.evict + 1) % LP_CACHE;
        lp_destroy(e);
    }
    e->key = *key;
    int m = key->mb, n = key->n, k = key->k;
    dnnl_matmul_desc_t md;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t post = NULL;
    dnnl_primitive_desc_t pd = NULL;
    /* src op(A) (mb, k), weights op(B) (k, n): the bf16 copies; dst C (mb, n), f32 */
    bool ok = desc(&e->a, m, k, key->lda, key->ta, dnnl_bf16) &&
              desc(&e->b, k, n, key->tb ? k : n, key->tb, dnnl_bf16) &&
              desc(&e->c, m, n, key->ldc, false, dnnl_f32) &&
              dnnl_matmul_desc_init(&md, &e->a, &e->b, NULL, &e->c) == dnnl_success &&
              dnnl_primitive_attr_create(&attr) == dnnl_success;
    if (ok && key->alpha != 1.0f) /* dst = alpha * (A B) */
        ok = dnnl_primitive_attr_set_output_scales(attr, 1, 0, &key->alpha) == dnnl_success;
    if (ok && key->beta != 0.0f) /* dst = alpha A B + beta dst: the sum post-op reads C */
        ok = dnnl_post_ops_create(&post) == dnnl_success &&
             dnnl_post_ops_append_sum(post, key->beta) == dnnl_success &&
             dnnl_primitive_attr_set_post_ops(attr, post) == dnnl_success;
    ok = ok && dnnl_primitive_desc_create(&pd, &md, attr, g.engine, NULL) == dnnl_success &&
         dnnl_primitive_create(&e->prim, pd) == dnnl_success &&
         dnnl_memory_create(&e->am, &e->a, g.engine, DNNL_MEMORY_NONE) == dnnl_success &&
         dnnl_memory_create(&e->bm, &e->b, g.engine, DNNL_MEMORY_NONE) == dnnl_success &&
         dnnl_memory_create(&e->cm, &e->c, g.engine, DNNL_MEMORY_NONE) == dnnl_success;
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (post) dnnl_post_ops_destroy(post);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (!ok) { /* nothing half-built stays behind */
        lp_destroy(e);
        return NULL;
    }
    return e;
}

static uint16_t *grow(uint16_t **buf, size_t *cap, size_t n)
{
    if (n <= *cap) return *buf;
    uint16_t *p = NULL;
    if (posix_memalign((void **)&p, 64, n * sizeof *p)) return NULL;
    free(*buf);
    *buf = p;
    *cap = n;
    return p;
}

/* dst (cols) = upper halves of src (cols): exact for bf16 values */
ZL_CPU_VECTOR static void to_bf16_row(uint16_t *restrict dst, const float *restrict src, int cols)
{
#pragma omp simd
    for (int j = 0; j < cols; j++) {
        uint32_t u;
        memcpy(&u, &src[j], sizeof u);
        dst[j] = (uint16_t)(u >> 16);
    }
}

/* dst (rows, cols) dense = src (rows, cols) with leading dimension ld */
static void to_bf16(uint16_t *dst, const float *src, int rows, int cols, int ld)
{
#pragma omp parallel for schedule(static) if ((double)rows * cols >= ZL_CPU_PAR_MIN)
    for (int r = 0; r < rows; r++)
        to_bf16_row(dst + (size_t)r * cols, src + (size_t)r * ld, cols);
}

/* Rows of C per block when A is transposed. oneDNN 2.6's bf16 matmul slows down as op(A)
 * = A^T gets taller: the tied embedding's dW = dlogits^T lnf, (50257, 768) over k = B*T,
 * ran at 0.8-1.2x sgemm's rate in one call, and at 1.2-1.7x in blocks of 8192 rows or
 * fewer (blocks of 1024-4096 lose at 2 threads). The blocks share the converted operands. */
#define LP_BLOCK_M 8192

static int block_rows(int m, bool ta)
{
    if (!ta || m <= LP_BLOCK_M) return m;
    int nb = (m + LP_BLOCK_M - 1) / LP_BLOCK_M;
    return ((m + nb - 1) / nb + 63) / 64 * 64; /* even blocks, 128-byte aligned in A */
}

static bool run(lp_entry *e, const uint16_t *ah, const uint16_t *bh, float *c)
{
    dnnl_exec_arg_t args[3] = {
        {DNNL_ARG_SRC, e->am}, {DNNL_ARG_WEIGHTS, e->bm}, {DNNL_ARG_DST, e->cm}};
    return dnnl_memory_set_data_handle(e->am, (void *)ah) == dnnl_success &&
           dnnl_memory_set_data_handle(e->bm, (void *)bh) == dnnl_success &&
           dnnl_memory_set_data_handle(e->cm, c) == dnnl_success &&
           dnnl_primitive_execute(e->prim, g.stream, 3, args) == dnnl_success &&
           dnnl_stream_wait(g.stream) == dnnl_success;
}

/* dst (rows, cols) dense = src (rows, cols) of bf16 with leading dimension ld */
static void copy_bf16(uint16_t *dst, const uint16_t *src, int rows, int cols, int ld)
{
    for (int r = 0; r < rows; r++)
        memcpy(dst + (size_t)r * cols, src + (size_t)r * ld, (size_t)cols * sizeof *dst);
}

bool zl__cpu_gemm_lp_onednn(float *c, const float *a, const void *b, zl_dtype bt, int m, int n,
                            int k, int lda, int ldb, int ldc, bool ta, bool tb, float alpha,
                            float beta)
{
    if (bt != ZL_F32 && bt != ZL_BF16) return false;
    if (m <= 0 || n <= 0 || k <= 0 || !lp_ready()) return false;
    /* the stored matrices: A is (m, k) or, transposed, (k, m); B (k, n) or (n, k) */
    int ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
    ZL_ASSERT(lda >= ac && ldb >= bc && ldc >= n);
    /* C in blocks of mb rows (one unless tall): a primitive for mb, one for the last block
     * if shorter, both built before C is touched, so a failure leaves C as it was */
    int mb = block_rows(m, ta), last = m - (m - 1) / mb * mb, nthr = omp_get_max_threads();
    lp_key key = {mb, n, k, ac, ldc, nthr, ta, tb, alpha, beta}, key_last = key;
    key_last.mb = last;
    lp_entry *e = lp_primitive(&key), *el = e ? lp_primitive(&key_last) : NULL;
    if (el && !key_eq(&e->key, &key)) e = NULL; /* evicted by el in a full cache: rare */
    /* a bf16 B that is dense already is used in place: no copy at all */
    bool b_direct = bt == ZL_BF16 && ldb == bc;
    uint16_t *ah = grow(&g.abuf, &g.acap, (size_t)ar * ac);
    uint16_t *bh = b_direct ? (uint16_t *)b : grow(&g.bbuf, &g.bcap, (size_t)br * bc);
    if (!e || !el || !ah || !bh) return false;
    to_bf16(ah, a, ar, ac, lda);
    if (bt == ZL_F32) to_bf16(bh, b, br, bc, ldb);
    else if (!b_direct) copy_bf16(bh, b, br, bc, ldb);
    bool ok = true;
    for (int m0 = 0; ok && m0 < m; m0 += mb) /* rows m0.. of op(A): columns m0.. if ta */
        ok = run(m0 + mb < m ? e : el, ah + (ta ? (size_t)m0 : (size_t)m0 * k), bh,
                 c + (size_t)m0 * ldc);
    if (ok) g.calls++;
    return ok;
}
#else
long zl__cpu_gemm_lp_onednn_calls(void) { return 0; }
bool zl__cpu_gemm_lp_onednn_usable(void) { return false; }

bool zl__cpu_gemm_lp_onednn(float *c, const float *a, const void *b, zl_dtype bt, int m, int n,
                            int k, int lda, int ldb, int ldc, bool ta, bool tb, float alpha,
                            float beta)
{
    return false;
}
#endif

static struct {
    float *buf;
    size_t cap;
} widened; /* a 16-bit B widened for sgemm */

void zl__cpu_gemm_lp_sgemm(const zl_ops *self, float *c, const float *a, const void *b,
                           zl_dtype bt, int m, int n, int k, int lda, int ldb, int ldc, bool ta,
                           bool tb, float alpha, float beta)
{
    if (bt == ZL_F32) {
        zl__cpu_gemm(self, c, a, b, m, n, k, lda, ldb, ldc, ta, tb, alpha, beta);
        return;
    }
    /* the stored B: (k, n), or (n, k) transposed, rows ldb apart; widened dense */
    int br = tb ? n : k, bc = tb ? k : n;
    size_t need = (size_t)br * bc;
    if (need > widened.cap) {
        float *p = NULL;
        if (posix_memalign((void **)&p, 64, (need ? need : 1) * sizeof *p)) p = NULL;
        if (p) {
            free(widened.buf);
            widened.buf = p;
            widened.cap = need;
        }
    }
    if (need > widened.cap) { /* out of host memory: widen row by row, the slow way */
        static bool warned;
        if (!warned) {
            warned = true;
            zl_log_warn("no host memory to widen a 16-bit (%d x %d) operand; sgemm on rows", br, bc);
        }
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                float sum = 0.0f;
                for (int p = 0; p < k; p++) {
                    float x = ta ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p];
                    float y;
                    const uint16_t *h = b;
                    zl_convert(&y, ZL_F32, h + (tb ? (size_t)j * ldb + p : (size_t)p * ldb + j),
                               bt, 1);
                    sum += x * y;
                }
                float *cij = &c[(size_t)i * ldc + j];
                *cij = beta == 0.0f ? alpha * sum : alpha * sum + beta * *cij;
            }
        return;
    }
    if (ldb == bc) /* dense: one parallel pass */
        zl__cpu_cast(self, widened.buf, ZL_F32, b, bt, need);
    else
        for (int r = 0; r < br; r++)
            zl__cpu_cast(self, widened.buf + (size_t)r * bc, ZL_F32,
                         (const uint16_t *)b + (size_t)r * ldb, bt, (size_t)bc);
    zl__cpu_gemm(self, c, a, widened.buf, m, n, k, lda, bc, ldc, ta, tb, alpha, beta);
}

/* Below this many multiply-adds the conversion and the primitive call cost more than the
 * bf16 rate saves. */
#define LP_MIN_MACS ((double)(1 << 20))

void zl__cpu_gemm_lp(const zl_ops *self, float *c, const float *a, const void *b, zl_dtype bt,
                     zl_dtype t, int m, int n, int k, int lda, int ldb, int ldc, bool trans_a,
                     bool trans_b, float alpha, float beta)
{
    ZL_ASSERT(bt == ZL_F32 || bt == t);
    if (t == ZL_BF16 && (double)m * n * k >= LP_MIN_MACS &&
        zl__cpu_gemm_lp_use_onednn(self, a, b, bt, m, n, k, lda, ldb, trans_a, trans_b, alpha)) {
        if (zl__cpu_gemm_lp_onednn(c, a, b, bt, m, n, k, lda, ldb, ldc, trans_a, trans_b, alpha,
                                   beta))
            return;
#ifdef ZL_HAVE_ONEDNN
        static bool warned;
        if (g.state > 0 && !warned) {
            warned = true;
            zl_log_warn("oneDNN's bf16 matmul failed for a (%d x %d x %d) product; "
                        "falling back to sgemm", m, n, k);
        }
#endif
    }
    zl__cpu_gemm_lp_sgemm(self, c, a, b, bt, m, n, k, lda, ldb, ldc, trans_a, trans_b, alpha, beta);
}
