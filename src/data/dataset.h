/* Training data: a token stream held in host memory.
 *
 * A dataset is one flat array of int32 token ids. It comes from one of three places:
 *   - an llm.c token shard (a 256 x int32 header, then uint16 GPT-2 or uint32 Llama-3
 *     tokens), as written by llm.c's dev/data/data_common.py write_datafile;
 *   - any other file, read as raw bytes (a byte-level "tokenizer", vocabulary 256);
 *   - the built-in corpus (zl_dataset_default), generated from a small grammar.
 * The data is plain malloc'ed host memory, not device memory: the loader copies each
 * batch out of it, and the engine uploads the batch to the (simulated) device. */
#ifndef ZL_DATA_DATASET_H
#define ZL_DATA_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

/* llm.c shard header: 256 little-endian int32; [0] magic, [1] version, [2] token count. */
#define ZL_SHARD_HEADER_INTS 256
#define ZL_SHARD_HEADER_NBYTES (ZL_SHARD_HEADER_INTS * 4)
#define ZL_SHARD_MAGIC_GPT2 20240520   /* version 1: uint16 tokens */
#define ZL_SHARD_MAGIC_LLAMA3 20240801 /* version 7: uint32 tokens */

#define ZL_VOCAB_BYTES 256
#define ZL_VOCAB_GPT2 50257
#define ZL_VOCAB_LLAMA3 128256

typedef struct zl_dataset {
    int32_t *tokens; /* (ntokens), every id in [0, vocab_size) */
    size_t ntokens;
    int vocab_size;  /* 256 for bytes; the tokenizer's vocabulary for shards */
    char desc[320];  /* for logs and messages: "'train.bin' (llm.c GPT-2 shard, 1000 tokens)" */
} zl_dataset;

/* Load `path`: an llm.c shard if it starts with a shard magic, raw bytes otherwise.
 * Errors: ZL_ERR_IO (missing or unreadable, with strerror), ZL_ERR_FORMAT (header and
 * file size disagree, unknown shard version, empty file), ZL_ERR_NOMEM. On error *ds is
 * left empty (safe to free). */
zl_status zl_dataset_load(zl_dataset *ds, const char *path);

/* The built-in corpus used by `zerolab train` without a data file (see corpus.c):
 * deterministic English-like text, byte-level, a few hundred KB. */
zl_status zl_dataset_default(zl_dataset *ds);

/* A byte-level dataset from text in memory (copied); desc names it in messages. */
zl_status zl_dataset_from_text(zl_dataset *ds, const char *text, size_t nbytes, const char *desc);

/* Release the tokens and clear the struct. Safe on a zeroed or already freed dataset. */
void zl_dataset_free(zl_dataset *ds);

#endif
