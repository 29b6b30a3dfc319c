/* The labs' shared harness: one struct per lab program, a report card, and the files every
 * lab leaves behind (its numbers as CSV, its simulated trace).
 *
 * A lab program is `labNN demo` (the experiment, `make labNN`) or `labNN check` (the
 * grading of the student's functions, `make labNN-check`), on one rank or under mpiexec:
 *
 *   int main(int argc, char **argv)
 *   {
 *       lab L;
 *       int rc = lab_begin(&L, argc, argv, "01", "Where the memory goes");
 *       if (rc != 0) return rc;                 // 2: usage
 *       if (L.check) grade(&L); else demo(&L);
 *       return lab_end(&L);                     // 0: every item passed, 1: some failed
 *   }
 *
 * Items are graded with lab_check, which is collective: every rank calls it, in the same
 * order, and an item passes only if it passes on every rank, so a card never disagrees
 * with itself and no rank waits for another in the next collective. Rank 0 prints.
 *
 * Output: everything a lab writes goes to its folder, $LAB_OUT if set, else
 * lab-out/labNN/ under the current directory: numbers.csv (lab_csv; one row a number)
 * and, in check mode, card.csv (the report card's rows); the trace (lab_path(L,
 * "trace.json")) is written by the lab through zl_run_write_trace. */
#ifndef ZL_LAB_H
#define ZL_LAB_H

#include <stdbool.h>
#include <stdio.h>

#include <zerolab.h>

/* What an unfinished student function returns (see LAB_TODO). */
#define LAB_NOT_DONE (-1)

/* The body of a function the student has not written yet:
 *
 *   int ring_allgather(...) { LAB_TODO(); }
 *
 * says once, on rank 0, which function in which file is still to write, and returns
 * LAB_NOT_DONE; the check then grades it FAIL with "not written" as its measurement. */
#define LAB_TODO() return lab_todo(__func__, __FILE__, __LINE__)
int lab_todo(const char *func, const char *file, int line);
/* How many distinct LAB_TODO functions were called so far (on this rank). */
int lab_todo_count(void);

typedef struct lab {
    const char *id;      /* "01" */
    const char *title;   /* "Where the memory goes" */
    bool check;          /* `check` mode (else `demo`) */
    char out_dir[512];   /* where the lab's files go (created) */
    zl_comm *world;      /* all ranks (self when run without mpiexec) */
    int rank, size;
    FILE *csv;           /* numbers.csv (rank 0; NULL elsewhere) */
    FILE *card;          /* card.csv in check mode (rank 0) */
    int items, passed;
    double t0;           /* wall clock at lab_begin */
} lab;

/* Parse `demo|check`, create the world communicator and the output folder, open
 * numbers.csv, print the lab's banner. Returns 0, or 2 (usage; printed) and then the
 * program returns it without calling lab_end. Collective. */
int lab_begin(lab *L, int argc, char **argv, const char *id, const char *title);

/* Grade one item (collective: every rank, same order). `pass` is this rank's verdict; the
 * item passes if every rank passed. `target` says what was expected ("= ledger 412160 B",
 * "< 1e-4"); the measurement is printf-formatted from rank 0's arguments. Prints the row
 * on rank 0 and appends it to card.csv. Returns the agreed verdict. */
bool lab_check(lab *L, const char *item, bool pass, const char *target,
               const char *measured_fmt, ...) __attribute__((format(printf, 5, 6)));

/* Record a number in numbers.csv (rank 0 writes; other ranks' calls are ignored). */
void lab_csv(lab *L, const char *name, double value, const char *unit);

/* printf on rank 0 only. */
void lab_printf(const lab *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A path in the lab's output folder (a static buffer per call site is not kept: the
 * result lives until the next call on this rank). */
const char *lab_path(const lab *L, const char *name);

/* Print the card's total (and where the files are), release the world. Returns 0 when
 * every item passed (and at least one was graded), 1 otherwise; in demo mode 0 unless a
 * lab_check failed. Collective. */
int lab_end(lab *L);

/* Wall-clock seconds since an arbitrary start (monotonic). */
double lab_now(void);

#endif
