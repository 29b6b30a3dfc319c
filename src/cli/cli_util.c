/* The helpers zerolab's subcommands share (cli_util.h): help text, the error line, flag
 * parsing, the writable-path check. The bottom of the cli room: it knows no subcommand. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/status.h"
#include "cli/cli_util.h"

/* One line of help, wrapped at ZL_CLI_HELP_COLUMNS: continuation lines are indented to
 * where an option's description starts ("  --flag ARG   text": after the first run of
 * two or more spaces), or to the line's own indent for other lines. */
static void help_line(FILE *out, const char *line, size_t len)
{
    size_t lead = 0, hang;
    while (lead < len && line[lead] == ' ') lead++;
    hang = lead;
    if (lead < len && line[lead] == '-') {
        const char *gap = NULL;
        for (size_t i = lead; i + 1 < len && !gap; i++)
            if (line[i] == ' ' && line[i + 1] == ' ') gap = line + i;
        if (gap) {
            while (*gap == ' ') gap++;
            hang = (size_t)(gap - line);
        } else { /* "  --model NAME|FILE text": after the flag and its argument */
            size_t i = lead;
            for (int words = 0; words < 2 && i < len; words++) {
                while (i < len && line[i] != ' ') i++;
                while (i < len && line[i] == ' ') i++;
            }
            hang = i;
        }
    } else if (!strncmp(line + lead, "usage: ", 7)) {
        hang = lead + 7;
    }
    if (hang > ZL_CLI_HELP_COLUMNS / 2) hang = lead + 4;
    size_t col = 0, i = 0;
    while (i < len) {
        /* the next word with the spaces before it */
        size_t sp = i;
        while (sp < len && line[sp] == ' ') sp++;
        size_t end = sp;
        while (end < len && line[end] != ' ') end++;
        if (col > hang && col + (sp - i) + (end - sp) > ZL_CLI_HELP_COLUMNS) {
            fprintf(out, "\n%*s", (int)hang, "");
            col = hang;
            i = sp; /* the break eats the spaces */
        }
        fwrite(line + i, 1, end - i, out);
        col += end - i;
        i = end;
    }
    fputc('\n', out);
}

void zl_cli_help(FILE *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[8192], *text = small;
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof small) {
        if (!(text = malloc((size_t)n + 1))) return;
        va_start(ap, fmt);
        vsnprintf(text, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        help_line(out, p, len);
        p += len + (nl != NULL);
    }
    if (text != small) free(text);
}

int zl_cli_fail(void)
{
    if (zl_log_world_size() > 1)
        fprintf(stderr, "[rank %d] zerolab: error: %s\n", zl_log_rank(), zl_last_error());
    else
        fprintf(stderr, "zerolab: error: %s\n", zl_last_error());
    return ZL_EXIT_FAIL;
}

bool zl_cli_parse_positive(const char *cmd, const char *flag, const char *s, long max, long *out)
{
    char *end;
    errno = 0;
    /* Digits only: strtol would also take leading blanks and a '+'. */
    long v = s[0] >= '0' && s[0] <= '9' ? strtol(s, &end, 10) : 0;
    if (v == 0 || *end != '\0') {
        fprintf(stderr, "zerolab %s: %s expects a positive integer, got '%s'\n", cmd, flag, s);
        return false;
    }
    if (errno == ERANGE || v > max) { /* a number, only too large for its flag */
        fprintf(stderr, "zerolab %s: %s %s is out of range: at most %ld\n", cmd, flag, s, max);
        return false;
    }
    *out = v;
    return true;
}

bool zl_cli_parse_pipeline_schedule(const char *cmd, const char *s, bool *gpipe)
{
    if (strcmp(s, "1f1b") && strcmp(s, "gpipe")) {
        fprintf(stderr, "zerolab %s: --pipeline-schedule is 1f1b (DeepSpeed's, the default) or "
                        "gpipe, got '%s'\n", cmd, s);
        return false;
    }
    *gpipe = !strcmp(s, "gpipe");
    return true;
}
