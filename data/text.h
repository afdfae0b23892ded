/*
 * data/text.h — plain text as byte tokens (docs/data.md: vocab 256).
 *
 * Bytes are the tokens: no tokenizer to version, any file (UTF-8 or not) is
 * valid, and a byte model's loss is directly comparable across runs. Files are
 * read whole through zlib, so gzip and dictzip (.dz, gzip with a random-access
 * index in its header) files are decompressed on the fly; which kind a file is
 * comes from its first two bytes (1f 8b), never from its name. An empty,
 * unreadable or corrupt file is a user error naming the file.
 */
#ifndef QAT_DATA_TEXT_H
#define QAT_DATA_TEXT_H

#include <stdint.h>

#define QAT_TEXT_VOCAB 256

/* 1 when `path` starts with the gzip magic bytes 1f 8b, 0 otherwise (or unreadable). */
int qat_text_is_gzip(const char *path);

/* Read the concatenation of files[0..n_files) (each plain or gzip) into a fresh buffer
 * (caller frees). vocab in 1..255: every byte must be < vocab (the error names file and
 * byte offset); n_gzip (may be NULL) counts the compressed files. */
int qat_text_read_files(const char *const *files, int n_files, int vocab, uint16_t **tokens, int64_t *count,
                        int *n_gzip);

#endif
