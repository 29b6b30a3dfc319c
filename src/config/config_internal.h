/* Private to src/config/config*.c: the settings table, the reader state, and the helpers
 * that turn JSON values into settings with DeepSpeed's checks and zerolab's messages.
 *
 * Most settings are rows of one table (config_table.c): block, key, type, where the value
 * lives in zl_config, default, range. Defaults, generic reading, unknown-key detection,
 * zl_config_set and printing all walk that table, so a setting is declared once. The few
 * settings with cross-field rules (batch triad, optimizer, scheduler, deprecated ZeRO keys)
 * are rows too, and config_blocks.c applies their rules after the generic read. */
#ifndef ZL_CONFIG_CONFIG_INTERNAL_H
#define ZL_CONFIG_CONFIG_INTERNAL_H

#include <jansson.h>
#include <stddef.h>

#include "config/config.h"

typedef enum zl__cfg_type {
    ZL__CT_BOOL,    /* bool */
    ZL__CT_INT,     /* int64_t */
    ZL__CT_FLOAT,   /* double */
    ZL__CT_STR,     /* char * (owned) */
    ZL__CT_ENUM,    /* int: index into choices */
    ZL__CT_OPTBOOL, /* int: -1 None, 0, 1 */
    ZL__CT_STRLIST, /* char *: array of strings joined with ',' */
    ZL__CT_BETAS,   /* double[2] at off and off2: a two-element array */
} zl__cfg_type;

enum {
    ZL__CF_LO = 1u << 0,       /* value >= lo */
    ZL__CF_HI = 1u << 1,       /* value <= hi */
    ZL__CF_NULLABLE = 1u << 2, /* JSON null (and the default) is None, printed "None" */
    ZL__CF_NOCASE = 1u << 3,   /* enum choices match case-insensitively */
    ZL__CF_AUTO_NONE = 1u << 4, /* the None value prints as "auto" */
    ZL__CF_SECRET = 1u << 5,   /* never print the value */
    ZL__CF_NULL_UNSET = 1u << 6, /* JSON null means "not given" (batch triad) */
    ZL__CF_WARN_FALLBACK = 1u << 7, /* a value outside choices warns (bad_msg), keeps default */
};

/* Whether zerolab honours a setting (the reference's column; config_table.c's DOC). */
typedef enum zl__cfg_honour {
    ZL__HON_NONE,      /* not documented: `zerolab config --reference` fails on it */
    ZL__HON_YES,       /* does what DeepSpeed does with it */
    ZL__HON_NO_EFFECT, /* read and checked; training unchanged */
    ZL__HON_REFUSED,   /* a value other than the default is refused */
    ZL__HON_PARTLY,    /* some values built, the others refused */
} zl__cfg_honour;

typedef struct zl__cfg_entry {
    const char *block;  /* dotted block path; "" = top level */
    const char *key;    /* the key DeepSpeed documents */
    const char *alias;  /* another accepted key (pydantic field name) or NULL */
    zl__cfg_type type;
    size_t off, off2;
    double def, def2;    /* default of BOOL/INT/FLOAT/ENUM/OPTBOOL (None sentinel if NULLABLE);
                          * def2: second element of BETAS */
    const char *def_str; /* default of STR (NULL = None) */
    const char *const *choices; /* ENUM: accepted spellings, index = stored value */
    double lo, hi;
    unsigned flags;
    unsigned sched_mask; /* scheduler.params: bit (1 << zl_lr_schedule_type) accepting it */
    const char *bad_msg; /* DeepSpeed's message for a value outside choices (one %s) */
    zl__cfg_honour honour; /* for the reference (docs/config-reference.md) */
    const char *doc;       /* its meaning, one line */
} zl__cfg_entry;

extern const zl__cfg_entry zl__cfg_table[];
extern const int zl__cfg_ntable;

/* Blocks: which are strict (pydantic extra=forbid) and which sub-keys the block code
 * handles itself (sub-blocks, deprecated keys). */
typedef struct zl__cfg_block {
    const char *path;
    bool strict;
    const char *const *extra_keys; /* handled elsewhere; NULL-terminated */
} zl__cfg_block;

extern const zl__cfg_block zl__cfg_blocks[];
extern const int zl__cfg_nblocks;

/* Top-level keys of DeepSpeed features zerolab does not implement, and when they matter. */
typedef enum zl__cfg_unsup_rule {
    ZL__UNSUP_ENABLED,  /* any "enabled": true inside */
    ZL__UNSUP_NONEMPTY, /* any non-empty object / true / non-null value */
    ZL__UNSUP_TRUE,     /* the value true */
} zl__cfg_unsup_rule;

typedef struct zl__cfg_unsupported {
    const char *key;
    zl__cfg_unsup_rule rule;
    const char *what; /* the feature, for the message */
} zl__cfg_unsupported;

extern const zl__cfg_unsupported zl__cfg_unsupported_keys[];
extern const int zl__cfg_nunsupported;
/* Top-level keys zerolab reads outside the table (blocks) or accepts and ignores. */
extern const char *const zl__cfg_other_top_keys[];

/* ---- key positions (config_json.c) ---------------------------------------------------- */

typedef struct zl__cfg_keypos {
    char *path; /* "zero_optimization.offload_optimizer.device" */
    int line, col;
    int parent;  /* id of the enclosing object */
} zl__cfg_keypos;

typedef struct zl__cfg_reader {
    zl_config *cfg;
    const char *name;
    const char *block_alias; /* reading "bfloat16" into the bf16 rows: origins say so */
    zl__cfg_keypos *keys;
    int nkeys, capkeys;
    int *by_path; /* key indices sorted by path (then position), for zl__cfg_line */
} zl__cfg_reader;

/* hjson-lite -> JSON in place: comments and trailing commas become spaces (newlines kept, so
 * line and column numbers stay those of the file). ZL_ERR_FORMAT on an unterminated comment. */
zl_status zl__cfg_strip(char *text, const char *name);
/* Parse the stripped text with jansson ("FILE:LINE:COL: message" on a syntax error), then
 * index key positions and reject duplicate keys as DeepSpeed does. */
zl_status zl__cfg_load_json(zl__cfg_reader *r, const char *text, json_t **out);
void zl__cfg_reader_free(zl__cfg_reader *r);
/* Line of a key by dotted path, 0 if unknown. */
int zl__cfg_line(const zl__cfg_reader *r, const char *path);

/* Damerau (optimal string alignment) distance, ASCII case-insensitive. */
int zl__cfg_distance(const char *a, const char *b);
/* The candidate closest to `key` if it is close enough to be a likely typo, else NULL. */
const char *zl__cfg_suggest(const char *key, const char *const *cands, int ncands);

/* ---- reading (config_read.c, config_keys.c) ------------------------------------------- */

/* "a" + "." + "b" (or "b" if a is empty) into buf. */
const char *zl__cfg_join(char *buf, size_t nbuf, const char *a, const char *b);

/* Record an error "NAME:LINE: PATH: msg" (line looked up from path; path may be NULL). */
zl_status zl__cfg_fail(const zl__cfg_reader *r, zl_status st, const char *path, const char *fmt,
                       ...) __attribute__((format(printf, 4, 5)));
/* Same format, appended to cfg->warnings. */
void zl__cfg_warn(const zl__cfg_reader *r, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A short JSON rendering of a value for messages (static buffer). */
const char *zl__cfg_show(const json_t *v);

int zl__cfg_find(const char *block, const char *key); /* by key or alias; -1 if none */
int zl__cfg_find_path(const char *dotted);            /* by "block.key"; -1 if none */
void *zl__cfg_ptr(zl_config *cfg, size_t off);

/* Read one value into table row i. `key` is the key as written (canonical or alias). */
zl_status zl__cfg_read_value(zl__cfg_reader *r, int i, const char *key, const json_t *v,
                             zl_config_source src);
/* Read every key of `obj` into block `block`'s rows; unknown keys per the block rules.
 * `type_mask` restricts rows by sched_mask (0 = no restriction); `owner` names the thing
 * for unknown-key messages of strict blocks (e.g. "WarmupLR"). */
zl_status zl__cfg_read_block(zl__cfg_reader *r, const json_t *obj, const char *block,
                             unsigned type_mask, const char *owner);
/* Require `v` to be an object (or null if allow_null); error names the block. */
zl_status zl__cfg_expect_object(zl__cfg_reader *r, const json_t *v, const char *path);
/* Unknown key `key` in block `block`: error (strict, typo or misplaced) or warning. */
zl_status zl__cfg_unknown_key(zl__cfg_reader *r, const char *block, const char *key, bool strict,
                              const char *owner, unsigned type_mask);

const zl__cfg_block *zl__cfg_find_block(const char *path);
bool zl__cfg_in_list(const char *const *list, const char *key); /* NULL-terminated list */

void zl__cfg_set_defaults(zl_config *cfg);
void zl__cfg_free_strings(zl_config *cfg);
bool zl__cfg_is_auto(const json_t *v);

/* ---- blocks (config_blocks.c, config_features.c) -------------------------------------- */

zl_status zl__cfg_read_zero(zl__cfg_reader *r, const json_t *root);
zl_status zl__cfg_read_precision(zl__cfg_reader *r, const json_t *root);
zl_status zl__cfg_read_optimizer(zl__cfg_reader *r, const json_t *root);
zl_status zl__cfg_read_scheduler(zl__cfg_reader *r, const json_t *root);
zl_status zl__cfg_read_checkpoint(zl__cfg_reader *r, const json_t *root);
zl_status zl__cfg_check_unsupported(zl__cfg_reader *r, const json_t *root);
/* Values that follow from others (overlap_comm, communication_data_type, ...); safe to
 * re-run after zl_config_set. */
void zl__cfg_derive(zl_config *cfg);
/* Fill "auto" (and absent keys) from the caller's values; refuse mismatches and unfilled
 * "auto" (config_fill.c). Runs after the blocks are read, before the triad is resolved. */
zl_status zl__cfg_fill(zl__cfg_reader *r, const zl_config_fill *fill);
/* The chosen schedule's required parameters (after the fill: "auto" may supply them). */
zl_status zl__cfg_check_scheduler(zl__cfg_reader *r);
/* Cross-field checks DeepSpeed makes after parsing (_do_error_check) and derived values. */
zl_status zl__cfg_finish(zl__cfg_reader *r);

#endif
