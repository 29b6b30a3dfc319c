/* Rank-prefixed logging and assertions.
 *
 * zl_log_* print to stderr with a "[rank r]" prefix when the world has more than one
 * rank; zl_print0 prints to stdout on rank 0 only (progress lines, tables). The level
 * comes from ZL_LOG=debug|info|warn|error (default info).
 *
 * ZL_ASSERT is for bugs, not for input: it prints file, line, rank and the expression
 * and calls the panic hook. The default hook raises SIGABRT (a core dump for gdb); an
 * MPI program installs one that calls MPI_Abort, so one failing rank does not leave the
 * others waiting in a collective. */
#ifndef ZL_BASE_LOG_H
#define ZL_BASE_LOG_H

#include <stdio.h>

typedef enum zl_log_level { ZL_LOG_DEBUG, ZL_LOG_INFO, ZL_LOG_WARN, ZL_LOG_ERROR } zl_log_level;

/* Set by the communicator at start-up; used for prefixes and zl_print0. */
void zl_log_set_rank(int rank, int world_size);
int zl_log_rank(void);
int zl_log_world_size(void);
void zl_log_set_level(zl_log_level level);

void zl_log(zl_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define zl_log_debug(...) zl_log(ZL_LOG_DEBUG, __VA_ARGS__)
#define zl_log_info(...) zl_log(ZL_LOG_INFO, __VA_ARGS__)
#define zl_log_warn(...) zl_log(ZL_LOG_WARN, __VA_ARGS__)
#define zl_log_error(...) zl_log(ZL_LOG_ERROR, __VA_ARGS__)

/* printf on rank 0 only, to stdout. */
void zl_print0(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

typedef void (*zl_panic_hook)(void);
void zl_set_panic_hook(zl_panic_hook hook);
_Noreturn void zl__panic(const char *file, int line, const char *expr);

#define ZL_ASSERT(expr) \
    ((expr) ? (void)0 : zl__panic(__FILE__, __LINE__, #expr))

#endif
