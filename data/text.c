/*
 * data/text.c — plain text files as byte tokens (see text.h).
 *
 * Two passes (sizes, then bytes) so several files concatenate into one buffer
 * allocated once. Bytes are widened to uint16 because every token stream in
 * qat shares the llm.c shard type.
 */
#include "data/text.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"

int qat_text_size(const char *path, int64_t *n) {
    *n = 0;
    struct stat st;
    if (stat(path, &st) != 0) return qat_fail(QAT_EINPUT, "%s: cannot open text file: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return qat_fail(QAT_EINPUT, "%s: not a regular file, expected plain text", path);
    if (st.st_size == 0) return qat_fail(QAT_EINPUT, "%s: empty text file, expected at least one byte", path);
    *n = (int64_t)st.st_size;
    return QAT_OK;
}

int qat_text_read_into(const char *path, int64_t n, uint16_t *dst) {
    FILE *f = fopen(path, "rb");
    if (!f) return qat_fail(QAT_EINPUT, "%s: cannot open text file: %s", path, strerror(errno));
    unsigned char buf[1 << 16];
    int64_t done = 0;
    while (done < n) {
        size_t want = (size_t)(n - done < (int64_t)sizeof buf ? n - done : (int64_t)sizeof buf);
        size_t got = fread(buf, 1, want, f);
        for (size_t i = 0; i < got; i++) dst[done + (int64_t)i] = buf[i];
        done += (int64_t)got;
        if (got < want) break;
    }
    fclose(f);
    if (done != n)
        return qat_fail(QAT_EINPUT, "%s: file shrank while reading (%lld of %lld bytes)", path,
                        (long long)done, (long long)n);
    return QAT_OK;
}

int qat_text_read_files(const char *const *files, int n_files, int vocab, uint16_t **tokens, int64_t *count) {
    *tokens = NULL;
    *count = 0;
    if (n_files <= 0) return qat_fail(QAT_EINPUT, "no text files given, expected at least one path");
    int64_t total = 0;
    int64_t *sizes = qat_xmalloc((size_t)n_files * sizeof *sizes);
    for (int i = 0; i < n_files; i++) {
        int rc = qat_text_size(files[i], &sizes[i]);
        if (rc) { free(sizes); return rc; }
        total += sizes[i];
    }
    uint16_t *t = qat_xmalloc((size_t)total * sizeof *t);
    int64_t at = 0;
    for (int i = 0; i < n_files; i++) {
        int rc = qat_text_read_into(files[i], sizes[i], t + at);
        for (int64_t j = 0; !rc && vocab > 0 && vocab < 256 && j < sizes[i]; j++)
            if (t[at + j] >= vocab)
                rc = qat_fail(QAT_EINPUT, "%s: byte %u at offset %lld is >= vocab %d (text needs vocab 256)",
                              files[i], (unsigned)t[at + j], (long long)j, vocab);
        if (rc) { free(sizes); free(t); return rc; }
        at += sizes[i];
    }
    free(sizes);
    *tokens = t;
    *count = total;
    return QAT_OK;
}
