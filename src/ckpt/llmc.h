/* llm.c's GPT-2 model file (gpt2_124M.bin, gpt2_124M_bf16.bin), read into and written from
 * zerolab's flat parameter vector, so a model moves between zerolab and llm.c.
 *
 * Layout, as llm.c's train_gpt2.py (write_model) and train_gpt2.cu
 * (gpt2_write_to_checkpoint) write it, all little-endian:
 *
 *   header   256 x int32: [0] magic 20240326, [1] version (3: fp32 parameters,
 *            5: bf16), [2] maxT, [3] V, [4] L, [5] NH, [6] C, [7] Vp (the vocabulary
 *            padded, to a multiple of 128 by llm.c's exporter); [8..255] zero
 *   params   16 tensors, each covering all layers, in this order:
 *              wte (Vp,C) wpe (maxT,C) ln1w (L,C) ln1b (L,C) qkvw (L,3C,C) qkvb (L,3C)
 *              attprojw (L,C,C) attprojb (L,C) ln2w (L,C) ln2b (L,C) fcw (L,4C,C)
 *              fcb (L,4C) fcprojw (L,C,4C) fcprojb (L,C) lnfw (C) lnfb (C)
 *            as fp32 (version 3) or bf16 (version 5); nothing after them.
 *
 * llm.c's weights are torch.nn.Linear's (out, in), as zerolab's are (model.h), so no
 * tensor is transposed; what changes is the order: llm.c groups each kind of tensor over
 * all layers, zerolab keeps each block's parameters together (model.c's table, which this
 * module reads from zl_model_create, not from a copy). The head's projection is tied to
 * wte and not stored. Rows V..Vp-1 of wte are padding: llm.c's tools write zeros there,
 * zerolab's model has V rows, so the reader drops them (counting any that are not zero)
 * and the writer writes zeros.
 *
 * An llm.c file read and written again is byte-identical when its padding rows are zero:
 * fp32 values are copied bit for bit; bf16 values widen exactly to f32, and a value
 * that is exactly a bf16 (all of them, after such a read) is written back with its bits
 * as they were, NaN payloads included. */
#ifndef ZL_CKPT_LLMC_H
#define ZL_CKPT_LLMC_H

#include <stddef.h>

#include "base/status.h"
#include "model/model.h"

#define ZL_LLMC_MAGIC 20240326
#define ZL_LLMC_VERSION_F32 3
#define ZL_LLMC_VERSION_BF16 5
#define ZL_LLMC_HEADER_INTS 256

typedef struct zl_llmc_header {
    int version;       /* ZL_LLMC_VERSION_F32 or ZL_LLMC_VERSION_BF16 */
    zl_gpt_config cfg; /* V, maxT, L, NH, C from the header; name: the file's base name */
    int padded_vocab;  /* Vp >= V: rows of wte in the file */
    /* Set by zl_llmc_read: elements of the padding rows that were not zero (dropped; a
     * file written back then differs from the original there). Ignored by the writer. */
    size_t padding_nonzero;
} zl_llmc_header;

/* llm.c's padding of a vocabulary: V rounded up to a multiple of 128 (50257 -> 50304). */
int zl_llmc_padded_vocab(int vocab_size);

/* A header for writing the model `cfg` as `version` (3 or 5) with llm.c's padding. */
zl_llmc_header zl_llmc_header_for(const zl_gpt_config *cfg, int version);

/* Read the llm.c file at `path`: its header into *h, and the whole model into *flat, a
 * malloc'd array of zl_gpt_config_num_params(&h->cfg) floats in zerolab's parameter
 * order (model.c's table; the caller frees it). bf16 values are widened exactly. The
 * file is read in pieces, so the peak memory is the model's f32 size plus a fixed buffer.
 * ZL_ERR_IO if the file cannot be opened or read; ZL_ERR_FORMAT, naming the file and the
 * header field or the size that is wrong, for anything that is not a well-formed llm.c
 * GPT-2 model file (magic, version, a dimension that is not positive or overflows, C not
 * divisible by NH, Vp < V, nonzero reserved header ints, a file shorter or longer than
 * the header implies). On failure *flat is NULL. */
zl_status zl_llmc_read(const char *path, zl_llmc_header *h, float **flat);

/* Write `flat` (zl_gpt_config_num_params(&h->cfg) floats in zerolab's order) to `path`
 * as an llm.c file of h->version: f32 (3), or bf16 rounded to nearest even as
 * zl_f32_to_bf16 does (5); padding rows h->cfg.vocab_size..h->padded_vocab-1 zero.
 * Atomic: a temporary file beside `path`, fsync, rename over `path`, fsync of the
 * directory; on failure `path` is as it was and no temporary remains. ZL_ERR_INVALID for
 * a header that llm.c could not read (version, dimensions, Vp < V), ZL_ERR_IO naming the
 * path and the system error. */
zl_status zl_llmc_write(const char *path, const zl_llmc_header *h, const float *flat);

#endif
