/*
 * data/text.h — plain text as byte tokens (docs/data.md: vocab 256).
 *
 * Bytes are the tokens: no tokenizer to version, any file (UTF-8 or not) is
 * valid, and a byte model's loss is directly comparable across runs. Files are
 * read whole; an empty or unreadable file is a user error naming the file.
 */
#ifndef QAT_DATA_TEXT_H
#define QAT_DATA_TEXT_H

#include <stdint.h>

#define QAT_TEXT_VOCAB 256

/* Size in bytes (= tokens) of a readable, non-empty regular file. */
int qat_text_size(const char *path, int64_t *n);

/* Read the bytes of `path` as tokens into dst[0..n) (n from qat_text_size). */
int qat_text_read_into(const char *path, int64_t n, uint16_t *dst);

/* Read the concatenation of files[0..n_files) into a fresh buffer (caller frees).
 * vocab in 1..255: every byte must be < vocab (the error names file and byte offset). */
int qat_text_read_files(const char *const *files, int n_files, int vocab, uint16_t **tokens, int64_t *count);

#endif
