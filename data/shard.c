/*
 * data/shard.c — reading and writing llm.c token shards (see shard.h).
 *
 * The header is decoded byte by byte rather than by casting, so the code means
 * the same on any host; tokens are read with one fread and swapped only on a
 * big-endian host. Writes go to "PATH.tmp" and are renamed, so a killed
 * `qat data pack` never leaves a shard whose header lies about its size.
 */
#include "data/shard.h"

#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/fsutil.h"

static int32_t le32(const unsigned char *p) {
    return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
}

static void put_le32(unsigned char *p, int32_t v) {
    uint32_t u = (uint32_t)v;
    p[0] = (unsigned char)u; p[1] = (unsigned char)(u >> 8);
    p[2] = (unsigned char)(u >> 16); p[3] = (unsigned char)(u >> 24);
}

static void swap_tokens_if_big_endian(uint16_t *t, int64_t n) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (int64_t i = 0; i < n; i++) t[i] = (uint16_t)(t[i] << 8 | t[i] >> 8);
#else
    (void)t; (void)n;
#endif
}

int qat_shard_read_header(const char *path, qat_shard_info *info) {
    memset(info, 0, sizeof *info);
    FILE *f = fopen(path, "rb");
    if (!f) return qat_fail(QAT_EINPUT, "%s: cannot open shard: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return qat_fail(QAT_EINPUT, "%s: not a regular file, expected an llm.c token shard", path);
    }
    info->file_size = (int64_t)st.st_size;
    unsigned char h[QAT_SHARD_HEADER_BYTES];
    size_t got = fread(h, 1, sizeof h, f);
    fclose(f);
    if (got < 12)
        return qat_fail(QAT_EINPUT, "%s: truncated shard: %zu bytes, expected a %d-byte llm.c header",
                        path, got, QAT_SHARD_HEADER_BYTES);
    info->magic = le32(h);
    info->version = le32(h + 4);
    info->count = le32(h + 8);
    /* shorter than a header and not one either: "bad magic 0" would say less than the size does */
    if (info->magic != QAT_SHARD_MAGIC && got < sizeof h)
        return qat_fail(QAT_EINPUT, "%s: not an llm.c token shard: %zu bytes, shorter than the %d-byte header, "
                        "and no shard magic (%d) at its start", path, got, QAT_SHARD_HEADER_BYTES, QAT_SHARD_MAGIC);
    if (info->magic != QAT_SHARD_MAGIC)
        return qat_fail(QAT_EINPUT, "%s: bad magic %d, expected %d (an llm.c token shard)", path,
                        info->magic, QAT_SHARD_MAGIC);
    if (info->version != QAT_SHARD_VERSION)
        return qat_fail(QAT_EINPUT, "%s: unsupported shard version %d, expected %d (uint16 tokens)",
                        path, info->version, QAT_SHARD_VERSION);
    if (got < sizeof h)
        return qat_fail(QAT_EINPUT, "%s: truncated shard: %zu bytes, expected a %d-byte header", path,
                        got, QAT_SHARD_HEADER_BYTES);
    if (info->count < 0)
        return qat_fail(QAT_EINPUT, "%s: negative token count %lld in the header", path,
                        (long long)info->count);
    int64_t want = QAT_SHARD_HEADER_BYTES + 2 * info->count;
    if (info->file_size != want)
        return qat_fail(QAT_EINPUT,
                        "%s: %s shard: header says %lld tokens (%lld bytes) but the file has %lld bytes",
                        path, info->file_size < want ? "truncated" : "oversized",
                        (long long)info->count, (long long)want, (long long)info->file_size);
    return QAT_OK;
}

int64_t qat_shard_find_oov(const uint16_t *t, int64_t n, int vocab) {
    if (vocab <= 0 || vocab > 65535) return -1;
    for (int64_t i = 0; i < n; i++)
        if (t[i] >= vocab) return i;
    return -1;
}

int qat_shard_read_tokens(const char *path, const qat_shard_info *info, int vocab, uint16_t *dst) {
    FILE *f = fopen(path, "rb");
    if (!f) return qat_fail(QAT_EINPUT, "%s: cannot open shard: %s", path, strerror(errno));
    size_t got = 0;
    if (fseek(f, QAT_SHARD_HEADER_BYTES, SEEK_SET) == 0)
        got = fread(dst, sizeof *dst, (size_t)info->count, f);
    fclose(f);
    if ((int64_t)got != info->count)
        return qat_fail(QAT_EINPUT, "%s: truncated shard: read %zu of %lld tokens", path, got,
                        (long long)info->count);
    swap_tokens_if_big_endian(dst, info->count);
    int64_t bad = qat_shard_find_oov(dst, info->count, vocab);
    if (bad >= 0)
        return qat_fail(QAT_EINPUT, "%s: token id %u at token index %lld is >= vocab %d", path,
                        (unsigned)dst[bad], (long long)bad, vocab);
    return QAT_OK;
}

int qat_shard_read(const char *path, int vocab, uint16_t **tokens, int64_t *count) {
    *tokens = NULL;
    *count = 0;
    qat_shard_info info;
    QAT_TRY(qat_shard_read_header(path, &info));
    uint16_t *t = qat_xmalloc((size_t)info.count * sizeof *t);
    int rc = qat_shard_read_tokens(path, &info, vocab, t);
    if (rc) { free(t); return rc; }
    *tokens = t;
    *count = info.count;
    return QAT_OK;
}

int qat_shard_write(const char *path, const uint16_t *tokens, int64_t count) {
    if (count < 0 || count > QAT_SHARD_MAX_TOKENS)
        return qat_fail(QAT_EINPUT, "%s: %lld tokens do not fit one llm.c shard (at most %lld)", path,
                        (long long)count, QAT_SHARD_MAX_TOKENS);
    qat_out o; /* PATH.tmp renamed into place, never over a non-regular file (core/fsutil.h) */
    QAT_TRY(qat_out_begin(&o, path, QAT_OUT_AS(QAT_OUT_SHARD), NULL, 0)); /* replaces a shard only */
    FILE *f = qat_out_stream(&o);
    unsigned char h[QAT_SHARD_HEADER_BYTES] = {0};
    put_le32(h, QAT_SHARD_MAGIC);
    put_le32(h + 4, QAT_SHARD_VERSION);
    put_le32(h + 8, (int32_t)count);
    fwrite(h, 1, sizeof h, f);
    /* Little-endian host: write directly; otherwise swap through a bounded buffer. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    uint16_t buf[4096];
    for (int64_t i = 0; i < count; i += 4096) {
        int64_t m = count - i < 4096 ? count - i : 4096;
        memcpy(buf, tokens + i, (size_t)m * 2);
        swap_tokens_if_big_endian(buf, m);
        fwrite(buf, 2, (size_t)m, f);
    }
#else
    if (count > 0) fwrite(tokens, 2, (size_t)count, f);
#endif
    return qat_out_commit(&o); /* a failed write above is reported here, with its errno */
}

int qat_shard_glob(const char *pattern, char ***paths, int *n) {
    *paths = NULL;
    *n = 0;
    glob_t g;
    int rc = glob(pattern, 0, NULL, &g); /* glob sorts its matches: shard order is stable */
    if (rc == GLOB_NOMATCH || (rc == 0 && g.gl_pathc == 0)) {
        if (rc == 0) globfree(&g);
        return qat_fail(QAT_EINPUT, "%s: no data files match this pattern", pattern);
    }
    if (rc != 0) return qat_fail(QAT_EINPUT, "%s: cannot expand the pattern (read error)", pattern);
    char **p = qat_xmalloc(g.gl_pathc * sizeof *p);
    for (size_t i = 0; i < g.gl_pathc; i++) p[i] = qat_xstrdup(g.gl_pathv[i]);
    *paths = p;
    *n = (int)g.gl_pathc;
    globfree(&g);
    return QAT_OK;
}

void qat_shard_free_paths(char **paths, int n) {
    for (int i = 0; i < n; i++) free(paths[i]);
    free(paths);
}
