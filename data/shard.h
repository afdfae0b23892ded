/*
 * data/shard.h — llm.c token shards (docs/data.md), read and written.
 *
 * The format is Karpathy's llm.c layout so that shards made by its Python
 * tokenizers load here unchanged: a 1024-byte header of 256 little-endian int32
 * (magic 20240520, version 1, token count, rest zero), then `count` uint16
 * little-endian tokens; the file size must equal 1024 + 2·count exactly.
 *
 * Every check a user's file can fail (missing, bad magic or version, truncated,
 * size that disagrees with the header, token id >= vocab) returns QAT_EINPUT
 * with a message that starts with the file name, so `qat` exits 2 and says
 * which file to fix. Reading is two-phase (header, then tokens into a buffer
 * the caller sized from all headers) so a glob of shards is concatenated with
 * one allocation.
 */
#ifndef QAT_DATA_SHARD_H
#define QAT_DATA_SHARD_H

#include <stdint.h>

#define QAT_SHARD_MAGIC 20240520
#define QAT_SHARD_VERSION 1
#define QAT_SHARD_HEADER_BYTES 1024
#define QAT_SHARD_MAX_TOKENS 2147483647LL /* the header's count is an int32 */

typedef struct {
    int32_t magic;     /* as read from the file (checked against QAT_SHARD_MAGIC) */
    int32_t version;   /* as read (checked against QAT_SHARD_VERSION) */
    int64_t count;     /* tokens the header announces */
    int64_t file_size; /* bytes on disk, == 1024 + 2·count for a valid shard */
} qat_shard_info;

/* Read and validate the header of `path` (magic, version, count >= 0, file size). */
int qat_shard_read_header(const char *path, qat_shard_info *info);

/* Read the tokens of a shard whose header was validated into dst[0..info->count).
 * vocab > 0: every token must be < vocab (error names file and token index). */
int qat_shard_read_tokens(const char *path, const qat_shard_info *info, int vocab, uint16_t *dst);

/* Convenience: header + tokens into a fresh buffer (caller frees). */
int qat_shard_read(const char *path, int vocab, uint16_t **tokens, int64_t *count);

/* Write tokens as a shard (atomically: a temporary file renamed into place). */
int qat_shard_write(const char *path, const uint16_t *tokens, int64_t count);

/* Expand a glob into a sorted list of paths (caller frees with qat_shard_free_paths).
 * No match is QAT_EINPUT naming the pattern. */
int qat_shard_glob(const char *pattern, char ***paths, int *n);
void qat_shard_free_paths(char **paths, int n);

/* First token >= vocab in t[0..n), or -1 when all are valid. */
int64_t qat_shard_find_oov(const uint16_t *t, int64_t n, int vocab);

#endif
