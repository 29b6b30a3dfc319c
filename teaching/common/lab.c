/* The labs' harness (lab.h): banner, report card, output files. */
#define _GNU_SOURCE
#include "lab.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* The functions LAB_TODO has reported, so each is named once. */
#define LAB_MAX_TODO 64
static const char *todo_seen[LAB_MAX_TODO];
static int todo_n;
static int todo_rank; /* set by lab_begin: only rank 0 prints */

int lab_todo(const char *func, const char *file, int line)
{
    for (int i = 0; i < todo_n; i++)
        if (strcmp(todo_seen[i], func) == 0) return LAB_NOT_DONE;
    if (todo_n < LAB_MAX_TODO) todo_seen[todo_n++] = func;
    const char *base = strrchr(file, '/');
    if (todo_rank == 0)
        printf("  TODO: %s() in %s:%d is not written yet\n", func, base ? base + 1 : file, line);
    return LAB_NOT_DONE;
}

int lab_todo_count(void) { return todo_n; }

double lab_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* mkdir -p */
static int make_dirs(const char *path)
{
    char buf[512];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) return -1;
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
    return 0;
}

int lab_begin(lab *L, int argc, char **argv, const char *id, const char *title)
{
    memset(L, 0, sizeof *L);
    L->id = id;
    L->title = title;
    L->t0 = lab_now();
    const char *mode = argc > 1 ? argv[1] : "demo";
    if (strcmp(mode, "check") == 0) {
        L->check = true;
    } else if (strcmp(mode, "demo") != 0 || argc > 2) {
        fprintf(stderr, "usage: %s [demo|check]\n"
                        "  demo   run lab %s's experiment (make lab%s)\n"
                        "  check  grade the functions in student.c (make lab%s-check)\n",
                argv[0], id, id, id);
        return 2;
    }
    if (zl_comm_world(&L->world, NULL) != ZL_OK) {
        fprintf(stderr, "lab %s: cannot start: %s\n", id, zl_last_error());
        return 1;
    }
    L->rank = L->world->rank;
    L->size = L->world->size;
    todo_rank = L->rank;

    const char *out = getenv("LAB_OUT");
    if (out && *out)
        snprintf(L->out_dir, sizeof L->out_dir, "%s", out);
    else
        snprintf(L->out_dir, sizeof L->out_dir, "lab-out/lab%s", id);
    int ok = 1;
    if (L->rank == 0) {
        if (make_dirs(L->out_dir) != 0) {
            fprintf(stderr, "lab %s: cannot create the output folder '%s': %s\n"
                            "  hint: set LAB_OUT to a folder you can write\n",
                    id, L->out_dir, strerror(errno));
            ok = 0;
        } else {
            L->csv = fopen(lab_path(L, "numbers.csv"), "w");
            if (L->csv) fprintf(L->csv, "lab,name,value,unit\n");
            if (L->check) {
                L->card = fopen(lab_path(L, "card.csv"), "w");
                if (L->card) fprintf(L->card, "lab,item,result,measured,target\n");
            }
            if (!L->csv || (L->check && !L->card)) {
                fprintf(stderr, "lab %s: cannot write in '%s': %s\n", id, L->out_dir,
                        strerror(errno));
                ok = 0;
            }
        }
    }
    zl_comm_broadcast(L->world, &ok, 1, ZL_I32, 0);
    if (!ok) {
        if (L->csv) fclose(L->csv);
        if (L->card) fclose(L->card);
        zl_comm_destroy(L->world);
        return 1;
    }
    lab_printf(L, "== lab %s: %s (%s, %d rank%s) ==\n", id, title, L->check ? "check" : "demo",
               L->size, L->size == 1 ? "" : "s");
    if (L->check)
        lab_printf(L, "  %-44s %-6s %-24s %s\n", "item", "result", "measured", "target");
    fflush(stdout);
    return 0;
}

/* CSV field: quoted when it holds a comma or a quote. */
static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

bool lab_check(lab *L, const char *item, bool pass, const char *target, const char *fmt, ...)
{
    char measured[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(measured, sizeof measured, fmt, ap);
    va_end(ap);

    int all = pass ? 1 : 0;
    zl_comm_allreduce(L->world, &all, 1, ZL_I32, ZL_REDUCE_MIN);
    pass = all == 1;
    L->items++;
    if (pass) L->passed++;
    if (L->rank == 0) {
        printf("  %-44s %-6s %-24s %s\n", item, pass ? "PASS" : "FAIL", measured, target);
        fflush(stdout);
        if (L->card) {
            fprintf(L->card, "%s,", L->id);
            csv_field(L->card, item);
            fprintf(L->card, ",%s,", pass ? "PASS" : "FAIL");
            csv_field(L->card, measured);
            fputc(',', L->card);
            csv_field(L->card, target);
            fputc('\n', L->card);
        }
    }
    return pass;
}

void lab_csv(lab *L, const char *name, double value, const char *unit)
{
    if (!L->csv) return;
    fprintf(L->csv, "%s,", L->id);
    csv_field(L->csv, name);
    fprintf(L->csv, ",%.9g,", value);
    csv_field(L->csv, unit ? unit : "");
    fputc('\n', L->csv);
}

void lab_printf(const lab *L, const char *fmt, ...)
{
    if (L->rank != 0) return;
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

const char *lab_path(const lab *L, const char *name)
{
    static char buf[640];
    snprintf(buf, sizeof buf, "%s/%s", L->out_dir, name);
    return buf;
}

/* "  files: DIR/ (a.csv, b.json, ckpt/)": what the lab left there, sorted. */
static void list_files(const char *dir)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    printf("  files: %s/ (", dir);
    int shown = 0;
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        if (name[0] != '.') {
            char path[1024];
            struct stat st;
            snprintf(path, sizeof path, "%s/%s", dir, name);
            bool is_dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
            printf("%s%s%s", shown++ ? ", " : "", name, is_dir ? "/" : "");
        }
        free(names[i]);
    }
    if (n >= 0) free(names);
    printf(")\n");
    fflush(stdout);
}

int lab_end(lab *L)
{
    double secs = lab_now() - L->t0;
    int failed = L->items - L->passed;
    if (L->check) {
        lab_printf(L, "  report card: %d/%d PASS%s (%.1f s)\n", L->passed, L->items,
                   L->items == 0 ? " (nothing graded)" : "", secs);
        if (failed > 0 && lab_todo_count() > 0)
            lab_printf(L, "  hint: write the TODO functions in student.c, then run "
                          "`make lab%s-check` again\n", L->id);
    } else {
        lab_printf(L, "  lab %s demo done in %.1f s\n", L->id, secs);
    }
    if (L->rank == 0) list_files(L->out_dir);
    if (L->csv) fclose(L->csv);
    if (L->card) fclose(L->card);
    zl_comm_destroy(L->world);
    if (L->check) return (L->items > 0 && failed == 0) ? 0 : 1;
    return failed == 0 ? 0 : 1;
}
