/* Lab 05: write the three gradient averagings here (student.h has their contracts). */
#include "lab.h"
#include "student.h"

int dp_naive(zl_comm *c, dp_grads *g)
{
    /* Hints: for each tensor i, zl_comm_allreduce(c, g->grad[i], g->numel[i], ZL_F32,
     * ZL_REDUCE_SUM), then multiply by 1/N (N = c->size). Check the status. */
    (void)c; (void)g;
    LAB_TODO();
}

int dp_flat(zl_comm *c, dp_grads *g, float *flat)
{
    /* Hints: pack the tensors one after the other into flat, one allreduce of the total,
     * unpack times 1/N. */
    (void)c; (void)g; (void)flat;
    LAB_TODO();
}

int dp_bucket_begin(dp_bucketer *b)
{
    /* Hint: no bucket yet: num_buckets 0, open_last -1, open_bytes 0, used 0. */
    (void)b;
    LAB_TODO();
}

int dp_bucket_ready(dp_bucketer *b, int i)
{
    /* Hints:
     * - Tensor i joins the open bucket (the first one to join is its newest, open_last;
     *   the bucket then holds tensors [i, open_last]).
     * - Once open_bytes >= bucket_bytes, or i == 0 (nothing more will come), close it:
     *   copy its tensors into flat at `used`, record offset/count/first/last, and
     *   zl_comm_iallreduce(b->c, region, count, ZL_F32, ZL_REDUCE_SUM, &b->req[k]).
     * - Do NOT wait here: returning at once is what lets backward go on. */
    (void)b; (void)i;
    LAB_TODO();
}

int dp_bucket_end(dp_bucketer *b)
{
    /* Hints: for every bucket, zl_comm_wait(b->c, &b->req[k]), then copy its region back
     * into its tensors times 1/N. */
    (void)b;
    LAB_TODO();
}
