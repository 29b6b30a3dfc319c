#include "sim/ledger.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"

void zl_ledger_init(zl_ledger *l, const char *device_name, size_t budget_nbytes)
{
    memset(l, 0, sizeof *l);
    snprintf(l->device_name, sizeof l->device_name, "%s", device_name);
    l->budget_nbytes = budget_nbytes;
}

void zl_ledger_set_placement(zl_ledger *l, zl_placement placement) { l->placement = placement; }

const char *zl_placement_name(zl_placement placement)
{
    return placement == ZL_PLACE_HOST ? "host memory" : placement == ZL_PLACE_NVME ? "NVMe" : "device memory";
}

/* How messages name the ledger: "rank 0 (V100-16GB)" for a card's memory (the usual case
 * needs no qualifier), "rank 0 host (host memory)" elsewhere. */
static const char *who(const zl_ledger *l, char *buf, size_t size)
{
    if (l->placement == ZL_PLACE_DEVICE) return l->device_name;
    snprintf(buf, size, "%s (%s)", l->device_name, zl_placement_name(l->placement));
    return buf;
}

static zl_ledger_entry *find(const zl_ledger *l, const char *tag)
{
    for (int i = 0; i < l->num_tags; i++)
        if (!strcmp(l->entries[i].tag, tag)) return (zl_ledger_entry *)&l->entries[i];
    return NULL;
}

/* The hint names the remedy for whatever holds the most memory: the hinter's (src/zero
 * for ZeRO's partitioned state), else the ledger's own for what any device holds. */
void zl_ledger_hint(const zl_ledger *l, const char *tag, char *buf, size_t size)
{
    /* Off the card, partitioning and micro-batches are not the remedy: the host's memory
     * is the node's RAM, shared by its GPUs, and NVMe is a swap budget. */
    if (l->placement != ZL_PLACE_DEVICE) {
        snprintf(buf, size, "%s holds what is placed there; give it a larger budget or place "
                 "less on it", zl_placement_name(l->placement));
        return;
    }
    if (l->hinter.fn && l->hinter.fn(l->hinter.args, tag, buf, size)) return;
    if (!strncmp(tag, "act", 3))
        snprintf(buf, size, "activations dominate: lower train_micro_batch_size_per_gpu (raising "
                 "gradient_accumulation_steps keeps the global batch) or the sequence length");
    else if (!strcmp(tag, "cast"))
        snprintf(buf, size, "the f32 copies the CPU uses to run 16-bit layers dominate (a GPU "
                 "holds none): they scale with the largest layer and the micro-batch, so a "
                 "smaller train_micro_batch_size_per_gpu or vocabulary shrinks them");
    else
        snprintf(buf, size, "use a device with more memory, a smaller model or a smaller "
                 "micro-batch");
}

void zl_ledger_set_hint(zl_ledger *l, bool (*fn)(const int args[4], const char *tag, char *buf,
                                                 size_t size),
                        int arg0, int arg1, int arg2, int arg3)
{
    l->hinter.fn = fn;
    l->hinter.args[0] = arg0;
    l->hinter.args[1] = arg1;
    l->hinter.args[2] = arg2;
    l->hinter.args[3] = arg3;
}

zl_status zl_ledger_alloc(zl_ledger *l, const char *tag, size_t nbytes)
{
    zl_ledger_entry *e = find(l, tag);
    if (!e) {
        if (l->num_tags == ZL_LEDGER_MAX_TAGS)
            return zl_errorf(ZL_ERR_INVALID, "%s: memory ledger holds at most %d tags; cannot add '%s'",
                             l->device_name, ZL_LEDGER_MAX_TAGS, tag);
        if (strlen(tag) >= ZL_LEDGER_TAG_LEN)
            return zl_errorf(ZL_ERR_INVALID, "%s: ledger tag '%s' is longer than %d characters",
                             l->device_name, tag, ZL_LEDGER_TAG_LEN - 1);
        e = &l->entries[l->num_tags];
        memset(e, 0, sizeof *e);
        snprintf(e->tag, sizeof e->tag, "%s", tag);
        /* Counted only once the allocation succeeds, so a failed request leaves no trace. */
    }

    /* Written so that a huge request cannot wrap around. */
    bool counted = strcmp(tag, l->exempt) != 0;
    if (counted && l->budget_nbytes &&
        (nbytes > l->budget_nbytes || l->budgeted_nbytes > l->budget_nbytes - nbytes)) {
        char req[32], bud[32], live[32], row[32];
        char breakdown[2048] = "";
        size_t off = 0, acts = 0, nacts = 0;
        const zl_ledger_entry *largest = NULL;
        for (int i = 0; i < l->num_tags; i++) {
            const zl_ledger_entry *t = &l->entries[i];
            if (!t->cur_nbytes || !strcmp(t->tag, l->exempt)) continue;
            /* per-layer activations ("act.h.7") are listed as one line, and weighed as one */
            if (!strncmp(t->tag, "act.", 4)) {
                acts += t->cur_nbytes, nacts++;
                continue;
            }
            if (!largest || t->cur_nbytes > largest->cur_nbytes) largest = t;
            if (off < sizeof breakdown - 64)
                off += (size_t)snprintf(breakdown + off, sizeof breakdown - off, "\n    %-24s %12s",
                                        t->tag, zl_format_bytes(row, sizeof row, t->cur_nbytes));
        }
        if (nacts && off < sizeof breakdown - 64) {
            char name[48];
            snprintf(name, sizeof name, "act.* (%zu tags)", nacts);
            off += (size_t)snprintf(breakdown + off, sizeof breakdown - off, "\n    %-24s %12s",
                                    name, zl_format_bytes(row, sizeof row, acts));
        }
        /* The request itself may be the largest consumer (on a tie, its kind is what grows). */
        size_t top = largest ? largest->cur_nbytes : 0;
        const char *hint_tag = largest ? largest->tag : tag;
        if (acts > top) hint_tag = "act.", top = acts;
        if (nbytes >= top) hint_tag = tag;
        char hint[512], name[96];
        zl_ledger_hint(l, hint_tag, hint, sizeof hint);
        return zl_errorf(ZL_ERR_OOM,
                         "%s: out of memory allocating %s for '%s': budget %s, %s already live%s%s\n"
                         "  hint: %s",
                         who(l, name, sizeof name), zl_format_bytes(req, sizeof req, nbytes), tag,
                         zl_format_bytes(bud, sizeof bud, l->budget_nbytes),
                         zl_format_bytes(live, sizeof live, l->budgeted_nbytes),
                         off ? ", by tag:" : "", breakdown, hint);
    }

    if (e == &l->entries[l->num_tags]) l->num_tags++;
    e->cur_nbytes += nbytes;
    e->nallocs++;
    if (e->cur_nbytes > e->peak_nbytes) e->peak_nbytes = e->cur_nbytes;
    l->cur_nbytes += nbytes;
    if (l->cur_nbytes > l->peak_nbytes) l->peak_nbytes = l->cur_nbytes;
    if (counted) l->budgeted_nbytes += nbytes;
    if (l->budgeted_nbytes > l->budgeted_peak_nbytes) l->budgeted_peak_nbytes = l->budgeted_nbytes;
    return ZL_OK;
}

void zl_ledger_exempt(zl_ledger *l, const char *tag)
{
    snprintf(l->exempt, sizeof l->exempt, "%s", tag);
}

void zl_ledger_free(zl_ledger *l, const char *tag, size_t nbytes)
{
    zl_ledger_entry *e = find(l, tag);
    ZL_ASSERT(e && "freeing under a tag that was never allocated");
    ZL_ASSERT(e->cur_nbytes >= nbytes && e->nallocs > 0);
    e->cur_nbytes -= nbytes;
    e->nallocs--;
    l->cur_nbytes -= nbytes;
    if (strcmp(tag, l->exempt)) l->budgeted_nbytes -= nbytes;
}

size_t zl_ledger_current(const zl_ledger *l, const char *tag)
{
    const zl_ledger_entry *e = find(l, tag);
    return e ? e->cur_nbytes : 0;
}

size_t zl_ledger_peak(const zl_ledger *l, const char *tag)
{
    const zl_ledger_entry *e = find(l, tag);
    return e ? e->peak_nbytes : 0;
}

size_t zl_ledger_current_prefix(const zl_ledger *l, const char *prefix)
{
    size_t n = strlen(prefix), sum = 0;
    for (int i = 0; i < l->num_tags; i++)
        if (!strncmp(l->entries[i].tag, prefix, n)) sum += l->entries[i].cur_nbytes;
    return sum;
}

void zl_ledger_reset_peaks(zl_ledger *l)
{
    for (int i = 0; i < l->num_tags; i++) l->entries[i].peak_nbytes = l->entries[i].cur_nbytes;
    l->peak_nbytes = l->cur_nbytes;
    l->budgeted_peak_nbytes = l->budgeted_nbytes;
}

static int by_peak_desc(const void *a, const void *b)
{
    size_t pa = (*(const zl_ledger_entry *const *)a)->peak_nbytes;
    size_t pb = (*(const zl_ledger_entry *const *)b)->peak_nbytes;
    return pa < pb ? 1 : pa > pb ? -1 : 0;
}

void zl_ledger_print(const zl_ledger *l, FILE *out)
{
    const zl_ledger_entry *sorted[ZL_LEDGER_MAX_TAGS];
    char cur[32], peak[32];
    for (int i = 0; i < l->num_tags; i++) sorted[i] = &l->entries[i];
    qsort(sorted, (size_t)l->num_tags, sizeof sorted[0], by_peak_desc);
    /* "of rank 0 (budget 16.00 GiB)", "of rank 0 host (host memory, budget 64.00 GiB)" */
    bool card = l->placement == ZL_PLACE_DEVICE;
    fprintf(out, "memory ledger of %s", l->device_name);
    if (!card) fprintf(out, " (%s", zl_placement_name(l->placement));
    if (l->budget_nbytes)
        fprintf(out, "%sbudget %s", card ? " (" : ", ", zl_format_bytes(cur, sizeof cur, l->budget_nbytes));
    if (!card || l->budget_nbytes) fputc(')', out);
    fprintf(out, "\n  %-24s %12s %12s %7s\n", "tag", "current", "peak", "peak%");
    for (int i = 0; i < l->num_tags; i++)
        fprintf(out, "  %-24s %12s %12s %6.1f%%\n", sorted[i]->tag,
                zl_format_bytes(cur, sizeof cur, sorted[i]->cur_nbytes),
                zl_format_bytes(peak, sizeof peak, sorted[i]->peak_nbytes),
                l->peak_nbytes ? 100.0 * (double)sorted[i]->peak_nbytes / (double)l->peak_nbytes : 0.0);
    fprintf(out, "  %-24s %12s %12s\n", "total", zl_format_bytes(cur, sizeof cur, l->cur_nbytes),
            zl_format_bytes(peak, sizeof peak, l->peak_nbytes));
}
