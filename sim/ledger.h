/* The memory ledger: the single source of truth for how many bytes a device holds.
 *
 * Every allocation on a device is recorded here with a tag ("param", "grad", "adam.m",
 * "act.block3", ...). The ledger keeps current and peak bytes per tag and in total, and
 * enforces an optional budget: the VRAM of the card a rank impersonates. A request that
 * would pass the budget fails with ZL_ERR_OOM and a message naming the device, the
 * request, the budget, what is live by tag, and a hint derived from the largest tags.
 *
 * The ledger counts bytes; it does not own memory. The device (core/device.h) pairs each
 * ledger entry with the backend allocation, so nothing can allocate around it. */
#ifndef ZL_SIM_LEDGER_H
#define ZL_SIM_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "base/status.h"

/* Where a ledger's bytes live. Each device has one ledger, so the placement is the
 * device's: the card's own memory, the host's (pinned) memory an accelerator offloads to,
 * or NVMe swap space. It shapes how the ledger reports itself: "host memory" in printouts
 * and out-of-memory messages, and a hint that fits the place. */
typedef enum zl_placement {
    ZL_PLACE_DEVICE, /* the accelerator's memory (VRAM) */
    ZL_PLACE_HOST,   /* CPU memory, pinned for copies (offload) */
    ZL_PLACE_NVME,   /* swap files (ZeRO-Infinity) */
} zl_placement;

#define ZL_LEDGER_MAX_TAGS 512
#define ZL_LEDGER_TAG_LEN 48

typedef struct zl_ledger_entry {
    char tag[ZL_LEDGER_TAG_LEN];
    size_t cur_nbytes;
    size_t peak_nbytes;
    size_t nallocs; /* live allocations under this tag */
} zl_ledger_entry;

typedef struct zl_ledger {
    char device_name[64];  /* "rank 0: V100-16GB", "host", ... */
    zl_placement placement; /* ZL_PLACE_DEVICE unless zl_ledger_set_placement says */
    size_t budget_nbytes;  /* 0 = unlimited */
    size_t cur_nbytes;
    size_t peak_nbytes;
    /* A tag the budget does not count (zl_ledger_exempt): on a device that impersonates a
     * GPU, the f32 copies the CPU computes in ("cast"), which the GPU would not hold.
     * budgeted_* are cur/peak without it. */
    char exempt[ZL_LEDGER_TAG_LEN];
    size_t budgeted_nbytes, budgeted_peak_nbytes;
    /* Who suggests remedies the ledger does not know (zl_ledger_set_hint), and what they
     * told it. */
    struct zl_ledger_hinter {
        bool (*fn)(const int args[4], const char *tag, char *buf, size_t size);
        int args[4];
    } hinter;
    int num_tags;
    zl_ledger_entry entries[ZL_LEDGER_MAX_TAGS];
} zl_ledger;

void zl_ledger_init(zl_ledger *l, const char *device_name, size_t budget_nbytes);

/* Say where the ledger's bytes live (zl_device_init does, from the device's kind). */
void zl_ledger_set_placement(zl_ledger *l, zl_placement placement);
/* "device memory", "host memory", "NVMe" */
const char *zl_placement_name(zl_placement placement);

/* Record `nbytes` under `tag`. Fails with ZL_ERR_OOM (and records nothing) if the total
 * would pass the budget; fails with ZL_ERR_INVALID if the tag table is full. */
zl_status zl_ledger_alloc(zl_ledger *l, const char *tag, size_t nbytes);

/* The remedies for state the ledger holds but does not understand (what partitioning
 * over data-parallel ranks would do to optimizer state, gradients, parameters) come from
 * the layer that does: fn(args, tag, buf, size) writes the hint for memory dominated by
 * `tag` and returns true, or returns false to leave the ledger's own. args: three integers
 * fn reads, kept by value (src/zero/memory_hint.c: the data-parallel size, the ZeRO
 * stage, the activation checkpointing interval and the pipeline stages). NULL fn: the
 * ledger's hints only. */
void zl_ledger_set_hint(zl_ledger *l, bool (*fn)(const int args[4], const char *tag, char *buf,
                                                 size_t size),
                        int arg0, int arg1, int arg2, int arg3);

/* The hint for memory dominated by `tag` ("adam.m", "grad", "act.h.3", ...), as the
 * out-of-memory message gives it, into buf. */
void zl_ledger_hint(const zl_ledger *l, const char *tag, char *buf, size_t size);

/* Leave `tag` out of the budget (and of the budgeted totals); "" counts every tag again. */
void zl_ledger_exempt(zl_ledger *l, const char *tag);

/* Release `nbytes` previously recorded under `tag`. Releasing more than is live is a bug. */
void zl_ledger_free(zl_ledger *l, const char *tag, size_t nbytes);

/* Bytes under one tag, or under every tag starting with `prefix` ("act." sums all
 * activations). Unknown tags have 0 bytes. */
size_t zl_ledger_current(const zl_ledger *l, const char *tag);
size_t zl_ledger_peak(const zl_ledger *l, const char *tag);
size_t zl_ledger_current_prefix(const zl_ledger *l, const char *prefix);

/* Forget the peaks (set them to the current values), e.g. after initialisation. */
void zl_ledger_reset_peaks(zl_ledger *l);

/* Print a table: tag, current, peak, share of the total; sorted by peak, largest first. */
void zl_ledger_print(const zl_ledger *l, FILE *out);

/* (zl_format_bytes, the byte counts of its messages, is base/status.h's.) */

#endif
