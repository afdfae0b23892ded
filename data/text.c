/*
 * data/text.c — plain or gzip-compressed text files as byte tokens (see text.h).
 *
 * One pass per file through zlib's gzread, which inflates gzip members and
 * passes other files through unchanged, into one growing buffer: a compressed
 * file's size is only known after inflating it. The buffer starts at the sum
 * of the sizes the files announce (st_size, or a gzip trailer's ISIZE), so the
 * common case allocates once. Bytes are widened to uint16 because every token
 * stream in qat shares the llm.c shard type (2 bytes per token in memory).
 */
#include "data/text.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "core/error.h"

int qat_text_is_gzip(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    unsigned char m[2];
    int gz = fread(m, 1, 2, f) == 2 && m[0] == 0x1f && m[1] == 0x8b;
    fclose(f);
    return gz;
}

/* Bytes the file will give: st_size, or for gzip the trailer's ISIZE (the size mod 2^32 of
 * the last member: only a first guess, the buffer grows if it is short). A truncated or
 * corrupt file's last four bytes are anything, so the guess is capped at 16 times the
 * compressed size (text inflates 3-10 times) rather than trusted with gigabytes. */
static int size_hint(const char *path, int gz, int64_t *hint) {
    struct stat st;
    *hint = 0;
    if (stat(path, &st) != 0) return qat_fail(QAT_EINPUT, "%s: cannot open text file: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return qat_fail(QAT_EINPUT, "%s: not a regular file, expected plain or gzip text", path);
    if (st.st_size == 0) return qat_fail(QAT_EINPUT, "%s: empty text file, expected at least one byte", path);
    *hint = (int64_t)st.st_size;
    if (gz && st.st_size >= 18) {
        FILE *f = fopen(path, "rb");
        unsigned char t[4];
        if (f && fseek(f, -4, SEEK_END) == 0 && fread(t, 1, 4, f) == 4)
        {
            int64_t isize = (int64_t)((uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 | (uint32_t)t[3] << 24);
            *hint = isize < 16 * *hint ? isize : 16 * *hint;
        }
        if (f) fclose(f);
    }
    return QAT_OK;
}

/* gzerror's message without the "PATH: " zlib puts before it (ours names the path already). */
static const char *gz_message(gzFile g, const char *path, int *zerr) {
    const char *msg = gzerror(g, zerr);
    size_t len = strlen(path);
    if (!strncmp(msg, path, len) && msg[len] == ':' && msg[len + 1] == ' ') msg += len + 2;
    return msg;
}

/* Append the bytes of one file to *buf (capacity *cap, length *n). */
static int read_one(const char *path, int gz, int vocab, uint16_t **buf, int64_t *cap, int64_t *n) {
    gzFile g = gzopen(path, "rb");
    if (!g) return qat_fail(QAT_EINPUT, "%s: cannot open text file: %s", path, strerror(errno ? errno : ENOMEM));
    gzbuffer(g, 1 << 18);
    static _Thread_local unsigned char chunk[1 << 18];
    int64_t start = *n;
    int rc = QAT_OK;
    for (;;) {
        int got = gzread(g, chunk, sizeof chunk);
        if (got < 0) {
            int zerr;
            const char *msg = gz_message(g, path, &zerr);
            /* zlib checks the trailer's CRC-32 and length only after inflating the
             * last chunk, and then returns nothing of it: "after 0 bytes" of a
             * 30,000-byte file would mislead, so a trailer mismatch is named as one */
            int trailer = zerr == Z_DATA_ERROR && (strstr(msg, "data check") || strstr(msg, "length check"));
            if (trailer)
                rc = qat_fail(QAT_EINPUT, "%s: corrupt gzip data: %s (the checksum or length at the end of the "
                              "stream does not match its data: the file is damaged)", path, msg);
            else
                rc = qat_fail(QAT_EINPUT, "%s: %s after %lld bytes: %s", path,
                              gz ? "corrupt gzip data" : "read error", (long long)(*n - start),
                              zerr == Z_ERRNO ? strerror(errno) : msg);
            break;
        }
        if (got == 0) {
            /* zlib reports a stream cut short only through gzerror, after returning what it had. */
            int zerr;
            const char *msg = gz_message(g, path, &zerr);
            if (zerr != Z_OK)
                rc = qat_fail(QAT_EINPUT, "%s: corrupt gzip data after %lld bytes: %s (truncated file?)", path,
                              (long long)(*n - start), msg);
            break;
        }
        if (*n + got > *cap) {
            int64_t c = *cap * 2 > *n + got ? *cap * 2 : *n + got;
            *buf = qat_xrealloc(*buf, (size_t)c * sizeof **buf);
            *cap = c;
        }
        uint16_t *dst = *buf + *n;
        for (int i = 0; i < got; i++) dst[i] = chunk[i];
        if (vocab > 0 && vocab < 256)
            for (int i = 0; i < got; i++)
                if (dst[i] >= vocab) {
                    rc = qat_fail(QAT_EINPUT, "%s: byte %u at offset %lld is >= vocab %d (text needs vocab 256)", path,
                                  (unsigned)dst[i], (long long)(*n - start + i), vocab);
                    break;
                }
        *n += got;
        if (rc) break;
    }
    gzclose(g);
    if (!rc && *n == start)
        rc = qat_fail(QAT_EINPUT, "%s: empty text file (%s), expected at least one byte", path,
                      gz ? "its gzip data inflates to nothing" : "0 bytes");
    return rc;
}

int qat_text_read_files(const char *const *files, int n_files, int vocab, uint16_t **tokens, int64_t *count,
                        int *n_gzip) {
    *tokens = NULL;
    *count = 0;
    if (n_gzip) *n_gzip = 0;
    if (n_files <= 0) return qat_fail(QAT_EINPUT, "no text files given, expected at least one path");
    int *gz = qat_xmalloc((size_t)n_files * sizeof *gz);
    int64_t cap = 0;
    for (int i = 0; i < n_files; i++) {
        int64_t h;
        gz[i] = qat_text_is_gzip(files[i]);
        int rc = size_hint(files[i], gz[i], &h);
        if (rc) { free(gz); return rc; }
        cap += h;
        if (n_gzip) *n_gzip += gz[i];
    }
    uint16_t *t = qat_xmalloc((size_t)(cap > 0 ? cap : 1) * sizeof *t);
    qat_advise_huge(t, (size_t)cap * sizeof *t); /* a corpus is tens of MiB, written once */
    int64_t n = 0;
    for (int i = 0; i < n_files; i++) {
        int rc = read_one(files[i], gz[i], vocab, &t, &cap, &n);
        if (rc) { free(gz); free(t); return rc; }
    }
    free(gz);
    if (cap > n + n / 8) t = qat_xrealloc(t, (size_t)n * sizeof *t); /* a generous guess: give it back */
    *tokens = t;
    *count = n;
    return QAT_OK;
}
