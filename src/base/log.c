#include "base/log.h"

#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static int log_rank = 0, log_world = 1;
static int log_level = -1; /* -1: not yet read from ZL_LOG */
static zl_panic_hook panic_hook = NULL;

void zl_log_set_rank(int rank, int world_size)
{
    log_rank = rank;
    log_world = world_size;
}

int zl_log_rank(void) { return log_rank; }
int zl_log_world_size(void) { return log_world; }

void zl_log_set_level(zl_log_level level) { log_level = (int)level; }

static int current_level(void)
{
    if (log_level < 0) {
        const char *env = getenv("ZL_LOG");
        log_level = ZL_LOG_INFO;
        if (env && !strcmp(env, "debug")) log_level = ZL_LOG_DEBUG;
        else if (env && !strcmp(env, "warn")) log_level = ZL_LOG_WARN;
        else if (env && !strcmp(env, "error")) log_level = ZL_LOG_ERROR;
    }
    return log_level;
}

void zl_log(zl_log_level level, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warning", "error"};
    if ((int)level < current_level()) return;
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (log_world > 1)
        fprintf(stderr, "[rank %d] zerolab %s: %s\n", log_rank, names[level], line);
    else
        fprintf(stderr, "zerolab %s: %s\n", names[level], line);
}

void zl_print0(const char *fmt, ...)
{
    if (log_rank != 0) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fflush(stdout);
}

void zl_set_panic_hook(zl_panic_hook hook) { panic_hook = hook; }

_Noreturn void zl__panic(const char *file, int line, const char *expr)
{
    fprintf(stderr, "[rank %d] %s:%d: assertion '%s' failed\n", log_rank, file, line, expr);
    fflush(stderr);
    if (panic_hook) panic_hook();
    /* A bug, not an input error: stop with a core dump rather than a clean exit code. */
    raise(SIGABRT);
    for (;;) {}
}
