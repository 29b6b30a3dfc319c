#include "base/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* 4 KiB holds the longest message we build (an out-of-memory report with a per-tag
 * breakdown); longer messages are truncated, never overflowed. */
static _Thread_local char last_msg[4096];

const char *zl_status_str(zl_status st)
{
    switch (st) {
    case ZL_OK: return "ok";
    case ZL_ERR_INVALID: return "invalid argument";
    case ZL_ERR_NOMEM: return "host out of memory";
    case ZL_ERR_OOM: return "device out of memory";
    case ZL_ERR_IO: return "i/o error";
    case ZL_ERR_FORMAT: return "bad file format";
    case ZL_ERR_CONFIG: return "configuration error";
    case ZL_ERR_UNSUPPORTED: return "unsupported";
    case ZL_ERR_COMM: return "communication error";
    case ZL_ERR_NOT_FOUND: return "not found";
    case ZL_ERR_TRAINING: return "training stopped";
    case ZL_ERR_DEVICE: return "device error";
    case ZL_ERR_TIMEOUT: return "timed out";
    case ZL_ERR_INTERRUPTED: return "interrupted";
    }
    return "unknown status";
}

zl_status zl_errorf(zl_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_msg, sizeof last_msg, fmt, ap);
    va_end(ap);
    return st;
}

zl_status zl_error_wrap(zl_status st, const char *fmt, ...)
{
    char prefix[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* Shift the old message right and put the prefix in front, truncating the tail. */
    size_t plen = strlen(prefix), olen = strlen(last_msg);
    if (plen + olen >= sizeof last_msg) olen = sizeof last_msg - 1 - plen;
    memmove(last_msg + plen, last_msg, olen);
    memcpy(last_msg, prefix, plen);
    last_msg[plen + olen] = '\0';
    return st;
}

const char *zl_last_error(void) { return last_msg; }

void zl_error_clear(void) { last_msg[0] = '\0'; }

char *zl_format_bytes(char *buf, size_t buflen, size_t nbytes)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)nbytes;
    int u = 0;
    while (v >= 1024.0 && u < 5) {
        v /= 1024.0;
        u++;
    }
    if (u == 0) snprintf(buf, buflen, "%zu B", nbytes);
    else snprintf(buf, buflen, "%.2f %s", v, units[u]);
    return buf;
}
