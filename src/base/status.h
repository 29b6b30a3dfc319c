/* Status codes and the error message that travels with them.
 *
 * Library functions that can fail because of the environment or the user (a file, a
 * config key, a budget) return a zl_status. The function that detects the failure records
 * one human-readable message with zl_errorf(); callers up the stack may prefix context
 * with zl_error_wrap(). The CLI prints zl_last_error() and picks the exit code. Nothing
 * below the CLI prints errors or exits.
 *
 * Programming errors (broken invariants, shape mismatches) are not statuses: they hit
 * ZL_ASSERT (base/log.h). */
#ifndef ZL_BASE_STATUS_H
#define ZL_BASE_STATUS_H

#include <stddef.h>

typedef enum zl_status {
    ZL_OK = 0,
    ZL_ERR_INVALID = -1,     /* bad argument or input value */
    ZL_ERR_NOMEM = -2,       /* host allocation failed */
    ZL_ERR_OOM = -3,         /* device memory budget exceeded (simulated or real) */
    ZL_ERR_IO = -4,          /* file missing, unreadable, short write */
    ZL_ERR_FORMAT = -5,      /* file present but malformed */
    ZL_ERR_CONFIG = -6,      /* DeepSpeed config or model JSON rejected */
    ZL_ERR_UNSUPPORTED = -7, /* valid request for something zerolab does not implement */
    ZL_ERR_COMM = -8,        /* communicator failure */
    ZL_ERR_NOT_FOUND = -9,   /* named thing (preset, backend, tag) does not exist */
    ZL_ERR_TRAINING = -10,   /* training cannot continue (e.g. loss scale at minimum) */
    ZL_ERR_DEVICE = -11,     /* a real device (CUDA) reported an error */
    ZL_ERR_TIMEOUT = -12,    /* a collective waited past its timeout (a stalled rank) */
    ZL_ERR_INTERRUPTED = -13, /* stopped by a signal (SIGTERM, SIGINT) */
} zl_status;

#ifdef __cplusplus /* included by the CUDA backend's .cu files */
extern "C" {
#endif

/* Short name of a status ("ok", "out of memory", ...). Never NULL. */
const char *zl_status_str(zl_status st);

/* Record a message for `st` (printf-style) and return `st`, so a failure site reads
 *     return zl_errorf(ZL_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
 * The message is thread-local and kept until the next zl_errorf/zl_error_clear. */
zl_status zl_errorf(zl_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefix the current message with context ("config 'ds.json': " + message). */
zl_status zl_error_wrap(zl_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The last recorded message, or "" if none. */
const char *zl_last_error(void);
void zl_error_clear(void);

/* Human-readable byte count into buf ("1.50 GiB", "312.00 KiB", "17 B"), for messages.
 * Returns buf. */
char *zl_format_bytes(char *buf, size_t buflen, size_t nbytes);

#ifdef __cplusplus
}
#endif

#endif
