/* Lab 10: pipelines, GPipe vs 1F1B. The functions you write (student.c).
 *
 * A pipeline of p stages (stage 0 holds the first layers, stage p-1 the last ones and the
 * loss) trains one batch of m micro-batches per optimizer step. Time is counted in steps,
 * as DeepSpeed's schedules yield them (runtime/pipe/schedule.py): in one step a stage runs
 * at most one pass (one forward or one backward of one micro-batch). Both schedules below
 * take 2 * (m + p - 1) steps; they differ in the order, and so in memory.
 *
 * The library's schedules (src/engine/schedule.h: zl_schedule_gpipe_stage and
 * zl_schedule_train) are the oracle; the engine runs them, the plan simulates them. */
#ifndef LAB10_STUDENT_H
#define LAB10_STUDENT_H

/* One pass of a stage's instruction table. */
typedef struct lab10_pass {
    char kind;  /* 'F' forward or 'B' backward */
    int micro;  /* the micro-batch, 0 .. m-1 */
    int step;   /* the step it runs in, 0 .. 2 * (m + p - 1) - 1 */
} lab10_pass;

/* GPipe (Huang et al., 2019) on stage s of p with m micro-batches: every forward, then every
 * backward. Write the stage's 2m passes into out[0 .. 2m-1] in the order the stage runs them
 * (increasing step) and *n = 2m. Return 0 (or -1 if cap < 2m).
 * Timing: micro-batch k reaches stage s one step after stage s-1 forwarded it; the last
 * stage turns around right after its last forward, and the backwards leave in the same
 * order as the forwards (micro-batch 0 first), one stage earlier each step. */
int student_gpipe(int p, int m, int s, lab10_pass *out, int cap, int *n);

/* 1F1B (DeepSpeed's TrainSchedule, PipeDream-Flush) on stage s of p, m micro-batches:
 * warm-up forwards, then one forward, one backward, ..., then the cool-down backwards.
 * Same output contract as student_gpipe. Timing (DeepSpeed's half-steps): a stage's
 * forwards and backwards alternate steps, even stages forwarding on even steps and odd
 * stages on odd ones; micro-batch k is forwarded on stage s at step 2k + s and backwarded
 * when its gradient comes back from the last stage. */
int student_1f1b(int p, int m, int s, lab10_pass *out, int cap, int *n);

/* The bubble: the fraction of a stage's time idle in one step of either schedule with p
 * uniform stages and m micro-batches (every pass taking the same time per stage). */
int student_bubble(int p, int m, double *fraction);

/* Activation memory: the most micro-batches stage s of p holds at once between their
 * forward and their backward (forwarded, not yet backwarded), gpipe 1: GPipe, 0: 1F1B. */
int student_in_flight(int gpipe, int p, int m, int s, int *count);

#endif
