/* Lab 10: your code. Each function's contract is in student.h. Replace each LAB_TODO();
 * with your code; `make lab10-check` grades them, `make lab10` runs the demo with them. */
#include "lab.h"
#include "student.h"

int student_gpipe(int p, int m, int s, lab10_pass *out, int cap, int *n)
{
    /* Hints: two loops over the micro-batches, forwards then backwards. On stage s the
     * forward of micro-batch k starts once it has come through s stages. The last forward
     * anywhere ends at step m + p - 2; the backward phase mirrors the forward one (the last
     * stage goes first). Check cap before writing. */
    (void)p, (void)m, (void)s, (void)out, (void)cap, (void)n;
    LAB_TODO();
}

int student_1f1b(int p, int m, int s, lab10_pass *out, int cap, int *n)
{
    /* Hints: forward k at step 2k + s. The last stage (p-1) backwards micro-batch k right
     * after its forward; each stage before it gets the gradient one step later. Emit the
     * passes sorted by step: the forwards and backwards interleave in the steady state. */
    (void)p, (void)m, (void)s, (void)out, (void)cap, (void)n;
    LAB_TODO();
}

int student_bubble(int p, int m, double *fraction)
{
    /* Hint: a stage is busy for 2m steps out of 2(m + p - 1). */
    (void)p, (void)m, (void)fraction;
    LAB_TODO();
}

int student_in_flight(int gpipe, int p, int m, int s, int *count)
{
    /* Hints: GPipe holds everything until the turn. 1F1B: how many forwards does stage s
     * run before its first backward? (And there are only m micro-batches.) */
    (void)gpipe, (void)p, (void)m, (void)s, (void)count;
    LAB_TODO();
}
