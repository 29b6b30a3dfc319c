/* Lab 04: write the three ring collectives here (student.h has their contracts). */
#include "lab.h"
#include "student.h"

int ring_reduce_scatter(zl_comm *c, float *x, size_t n, float *tmp)
{
    /* Hints:
     * - N = c->size, r = c->rank; right = (r+1) % N, left = (r-1+N) % N.
     * - N-1 steps. At step s send chunk (r-1-s) mod N to the right and receive chunk
     *   (r-2-s) mod N from the left into tmp, then add tmp into that chunk of x. Check
     *   that at the last step the chunk you complete is chunk r.
     * - ring_chunk(n, N, k, &off, &len) gives chunk k; chunks may differ in length.
     * - Deadlock: lab_send blocks until the peer receives (for large messages). If every
     *   rank sends first, who receives? Let even ranks send first and odd ranks receive
     *   first.
     * - Use a different tag per step (the step number is fine). */
    (void)c; (void)x; (void)n; (void)tmp;
    LAB_TODO();
}

int ring_allgather(zl_comm *c, float *x, size_t n)
{
    /* Hints: N-1 steps; at step s send chunk (r-s) mod N to the right and receive chunk
     * (r-1-s) mod N from the left straight into x. Same deadlock rule; use tags that
     * differ from the reduce-scatter's (e.g. 100 + s). */
    (void)c; (void)x; (void)n;
    LAB_TODO();
}

int ring_allreduce(zl_comm *c, float *x, size_t n, float *tmp)
{
    /* Hint: two calls. */
    (void)c; (void)x; (void)n; (void)tmp;
    LAB_TODO();
}
