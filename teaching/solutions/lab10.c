/* Lab 10: the reference solution (what an instructor shows afterwards). */
#include "lab.h"
#include "../lab10-pipeline/student.h"

/* GPipe: forward k on stage s at step k + s (it needs s hops to get there); the last
 * forward on the last stage is at m + p - 2, and the backward phase starts the step after:
 * the last stage backwards micro-batch k at (m + p - 1) + k, and each earlier stage one step
 * later (p - 1 - s hops back). */
int student_gpipe(int p, int m, int s, lab10_pass *out, int cap, int *n)
{
    if (cap < 2 * m) return -1;
    int j = 0;
    for (int k = 0; k < m; k++) out[j++] = (lab10_pass){'F', k, k + s};
    for (int k = 0; k < m; k++) out[j++] = (lab10_pass){'B', k, (m + p - 1) + k + (p - 1 - s)};
    *n = j;
    return 0;
}

/* 1F1B: forward k at 2k + s; the last stage backwards it the step after its forward
 * (2k + p), and the gradient takes one step per stage back: 2k + p + (p - 1 - s)
 * = 2k + 2p - 1 - s. Merge the two sequences by step. */
int student_1f1b(int p, int m, int s, lab10_pass *out, int cap, int *n)
{
    if (cap < 2 * m) return -1;
    int f = 0, b = 0, j = 0;
    while (f < m || b < m) {
        int tf = 2 * f + s, tb = 2 * b + 2 * p - 1 - s;
        if (f < m && (b >= m || tf < tb)) out[j++] = (lab10_pass){'F', f, tf}, f++;
        else out[j++] = (lab10_pass){'B', b, tb}, b++;
    }
    *n = j;
    return 0;
}

/* Busy 2m steps of 2(m + p - 1): idle (p - 1) / (m + p - 1). */
int student_bubble(int p, int m, double *fraction)
{
    *fraction = (double)(p - 1) / (double)(m + p - 1);
    return 0;
}

/* GPipe: all m. 1F1B: stage s runs p - s forwards before its first backward (warm-up),
 * then one in, one out; never more than m. */
int student_in_flight(int gpipe, int p, int m, int s, int *count)
{
    int c = gpipe ? m : p - s;
    *count = c < m ? c : m;
    return 0;
}
