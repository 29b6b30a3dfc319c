/* Loading token streams: llm.c shards and raw bytes. */
#include "data/dataset.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Files are read in chunks of this many bytes and widened to int32 as they arrive, so a
 * large shard never sits in memory twice. */
#define CHUNK_NBYTES (1 << 16)

static uint32_t read_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static zl_status read_exact(FILE *f, void *buf, size_t nbytes, const char *path)
{
    if (fread(buf, 1, nbytes, f) == nbytes) return ZL_OK;
    if (ferror(f))
        return zl_errorf(ZL_ERR_IO, "cannot read data file '%s': %s", path, strerror(errno));
    return zl_errorf(ZL_ERR_IO, "data file '%s' ended early (did it change while being read?)",
                     path);
}

static zl_status alloc_tokens(zl_dataset *ds, size_t ntokens, const char *what)
{
    ds->tokens = malloc((ntokens ? ntokens : 1) * sizeof(int32_t));
    if (!ds->tokens)
        return zl_errorf(ZL_ERR_NOMEM, "cannot allocate %zu tokens (%zu bytes) for %s", ntokens,
                         ntokens * sizeof(int32_t), what);
    ds->ntokens = ntokens;
    return ZL_OK;
}

/* Read `ntokens` tokens of `elem_nbytes` (1, 2 or 4, little-endian, unsigned) from f into
 * ds->tokens; returns the largest id through *max_id. */
static zl_status read_tokens(zl_dataset *ds, FILE *f, int elem_nbytes, const char *path,
                             uint32_t *max_id)
{
    unsigned char *buf = malloc(CHUNK_NBYTES);
    if (!buf) return zl_errorf(ZL_ERR_NOMEM, "cannot allocate a read buffer for '%s'", path);
    size_t per_chunk = CHUNK_NBYTES / (size_t)elem_nbytes;
    uint32_t max = 0;
    zl_status st = ZL_OK;
    for (size_t done = 0; done < ds->ntokens && st == ZL_OK;) {
        size_t n = ds->ntokens - done < per_chunk ? ds->ntokens - done : per_chunk;
        st = read_exact(f, buf, n * (size_t)elem_nbytes, path);
        for (size_t i = 0; i < n && st == ZL_OK; i++) {
            const unsigned char *p = buf + i * (size_t)elem_nbytes;
            uint32_t id = elem_nbytes == 1 ? p[0]
                        : elem_nbytes == 2 ? (uint32_t)(p[0] | p[1] << 8)
                                           : read_le32(p);
            /* INT32_MAX itself is refused too: the vocabulary, id + 1, must fit an int */
            if (id >= INT32_MAX)
                st = zl_errorf(ZL_ERR_FORMAT,
                               "data file '%s': token %zu has id %" PRIu32
                               ", too large (ids must be below 2^31 - 1); hint: the file is corrupt",
                               path, done + i, id);
            ds->tokens[done + i] = (int32_t)id;
            if (id > max) max = id;
        }
        done += n;
    }
    free(buf);
    *max_id = max;
    return st;
}

/* The shard header has been read; check it against the file size and read the tokens. */
static zl_status load_shard(zl_dataset *ds, FILE *f, const char *path, long long file_nbytes,
                            const unsigned char *header)
{
    int32_t magic = (int32_t)read_le32(header), version = (int32_t)read_le32(header + 4);
    int32_t ntok = (int32_t)read_le32(header + 8);
    const char *kind;
    int elem_nbytes, vocab;
    if (magic == ZL_SHARD_MAGIC_GPT2 && version == 1) {
        kind = "llm.c GPT-2 shard, uint16";
        elem_nbytes = 2;
        vocab = ZL_VOCAB_GPT2;
    } else if (magic == ZL_SHARD_MAGIC_LLAMA3 && version == 7) {
        kind = "llm.c Llama-3 shard, uint32";
        elem_nbytes = 4;
        vocab = ZL_VOCAB_LLAMA3;
    } else {
        return zl_errorf(ZL_ERR_FORMAT,
                         "data file '%s': llm.c shard magic %" PRId32 " with unknown version %"
                         PRId32 " (known: magic %d version 1 = GPT-2 uint16 tokens, magic %d "
                         "version 7 = Llama-3 uint32 tokens); hint: re-create the shard with "
                         "llm.c's dev/data scripts",
                         path, magic, version, ZL_SHARD_MAGIC_GPT2, ZL_SHARD_MAGIC_LLAMA3);
    }
    if (ntok <= 0)
        return zl_errorf(ZL_ERR_FORMAT,
                         "data file '%s' (%s): header says %" PRId32 " tokens; a shard must "
                         "hold at least one token",
                         path, kind, ntok);
    long long want = ZL_SHARD_HEADER_NBYTES + (long long)ntok * elem_nbytes;
    if (file_nbytes != want)
        return zl_errorf(ZL_ERR_FORMAT,
                         "data file '%s' (%s): header says %" PRId32 " tokens, so the file "
                         "should be %lld bytes (%d-byte header + %" PRId32 " x %d), but it is "
                         "%lld bytes; hint: the file is truncated or was not written by llm.c's "
                         "write_datafile, re-create it",
                         path, kind, ntok, want, ZL_SHARD_HEADER_NBYTES, ntok, elem_nbytes,
                         file_nbytes);

    zl_status st = alloc_tokens(ds, (size_t)ntok, path);
    uint32_t max_id = 0;
    if (st == ZL_OK) st = read_tokens(ds, f, elem_nbytes, path, &max_id);
    if (st != ZL_OK) return st;
    /* A shard made with another tokenizer may use ids past the default vocabulary. Widen it
     * so every id stays in range; the model compares vocab_size with its own. */
    const char *note = "";
    if (max_id >= (uint32_t)vocab) {
        vocab = (int)max_id + 1; /* fits: read_tokens refused ids from INT32_MAX up */
        note = ", ids beyond the default vocabulary";
    }
    ds->vocab_size = vocab;
    snprintf(ds->desc, sizeof ds->desc, "'%s' (%s, %" PRId32 " tokens, vocab %d%s)", path, kind,
             ntok, vocab, note);
    return ZL_OK;
}

/* Only regular files are data: a FIFO would block open() until a writer comes (and its
 * size says nothing), a device may never end, a directory cannot be read. */
static zl_status check_regular(const struct stat *sb, const char *path)
{
    if (S_ISREG(sb->st_mode)) return ZL_OK;
    const char *what = S_ISFIFO(sb->st_mode)  ? "a FIFO (named pipe)"
                       : S_ISCHR(sb->st_mode) ? "a character device"
                       : S_ISBLK(sb->st_mode) ? "a block device"
                       : S_ISDIR(sb->st_mode) ? "a directory"
                       : S_ISSOCK(sb->st_mode) ? "a socket"
                                               : "not a file";
    return zl_errorf(ZL_ERR_IO, "data file '%s' is %s, not a regular file\n  hint: give a file "
                     "on disk (write a stream to a file first)", path, what);
}

static zl_status load_file(zl_dataset *ds, FILE *f, const char *path)
{
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0)
        return zl_errorf(ZL_ERR_IO, "cannot stat data file '%s': %s", path, strerror(errno));
    zl_status rst = check_regular(&sb, path); /* again: the path may have changed since */
    if (rst != ZL_OK) return rst;
    long long file_nbytes = (long long)sb.st_size;
    if (file_nbytes == 0)
        return zl_errorf(ZL_ERR_FORMAT,
                         "data file '%s' is empty: there are no tokens to train on", path);

    unsigned char header[ZL_SHARD_HEADER_NBYTES];
    if (file_nbytes >= 4) {
        zl_status st = read_exact(f, header, 4, path);
        if (st != ZL_OK) return st;
        int32_t magic = (int32_t)read_le32(header);
        if (magic == ZL_SHARD_MAGIC_GPT2 || magic == ZL_SHARD_MAGIC_LLAMA3) {
            if (file_nbytes < ZL_SHARD_HEADER_NBYTES)
                return zl_errorf(ZL_ERR_FORMAT,
                                 "data file '%s' starts with the llm.c shard magic %" PRId32
                                 " but is only %lld bytes, shorter than the %d-byte header; "
                                 "hint: the file is truncated, re-create it",
                                 path, magic, file_nbytes, ZL_SHARD_HEADER_NBYTES);
            st = read_exact(f, header + 4, ZL_SHARD_HEADER_NBYTES - 4, path);
            if (st != ZL_OK) return st;
            return load_shard(ds, f, path, file_nbytes, header);
        }
        rewind(f);
    }

    /* Anything else is text (or any bytes): one token per byte. */
    if ((unsigned long long)file_nbytes > SIZE_MAX / sizeof(int32_t))
        return zl_errorf(ZL_ERR_NOMEM, "data file '%s' (%lld bytes) is too large to load",
                         path, file_nbytes);
    zl_status st = alloc_tokens(ds, (size_t)file_nbytes, path);
    uint32_t max_id;
    if (st == ZL_OK) st = read_tokens(ds, f, 1, path, &max_id);
    if (st != ZL_OK) return st;
    ds->vocab_size = ZL_VOCAB_BYTES;
    snprintf(ds->desc, sizeof ds->desc, "'%s' (bytes, %lld tokens, vocab 256)", path,
             file_nbytes);
    return ZL_OK;
}

zl_status zl_dataset_load(zl_dataset *ds, const char *path)
{
    memset(ds, 0, sizeof *ds);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return zl_errorf(ZL_ERR_IO, "cannot open data file '%s': %s", path, strerror(errno));
    zl_status st = check_regular(&sb, path);
    if (st != ZL_OK) return st;
    /* O_NONBLOCK: should a FIFO replace the file after the stat, open returns at once and
     * load_file's fstat refuses it (reads of a regular file never block on it). */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return zl_errorf(ZL_ERR_IO, "cannot open data file '%s': %s", path, strerror(errno));
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        st = zl_errorf(ZL_ERR_IO, "cannot open data file '%s': %s", path, strerror(errno));
        close(fd);
        return st;
    }
    st = load_file(ds, f, path);
    fclose(f);
    if (st != ZL_OK) zl_dataset_free(ds);
    return st;
}

zl_status zl_dataset_from_text(zl_dataset *ds, const char *text, size_t nbytes, const char *desc)
{
    memset(ds, 0, sizeof *ds);
    if (nbytes == 0)
        return zl_errorf(ZL_ERR_INVALID, "%s is empty: there are no tokens to train on", desc);
    zl_status st = alloc_tokens(ds, nbytes, desc);
    if (st != ZL_OK) return st;
    for (size_t i = 0; i < nbytes; i++) ds->tokens[i] = (unsigned char)text[i];
    ds->vocab_size = ZL_VOCAB_BYTES;
    snprintf(ds->desc, sizeof ds->desc, "%s", desc);
    return ZL_OK;
}

void zl_dataset_free(zl_dataset *ds)
{
    free(ds->tokens);
    memset(ds, 0, sizeof *ds);
}
