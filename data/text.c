/*
 * data/text.c — plain or gzip-compressed text files as byte tokens (see text.h).
 *
 * One pass per file into one growing buffer (a compressed file's size is only
 * known after inflating it): plain files through stdio, gzip ones member by
 * member through zlib's inflate (read_gzip says why not gzread). The buffer
 * starts at the sum of the sizes the files announce (st_size, or a gzip trailer's ISIZE), so the
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

/* Append got bytes of chunk to *buf (capacity *cap, length *n); start is where
 * this file's bytes began, for the offset in a vocab error. */
static int append(const char *path, const unsigned char *chunk, size_t got, int vocab, int64_t start, uint16_t **buf,
                  int64_t *cap, int64_t *n) {
    if (*n + (int64_t)got > *cap) {
        int64_t c = *cap * 2 > *n + (int64_t)got ? *cap * 2 : *n + (int64_t)got;
        *buf = qat_xrealloc(*buf, (size_t)c * sizeof **buf);
        *cap = c;
    }
    uint16_t *dst = *buf + *n;
    for (size_t i = 0; i < got; i++) dst[i] = chunk[i];
    if (vocab > 0 && vocab < 256)
        for (size_t i = 0; i < got; i++)
            if (dst[i] >= vocab)
                return qat_fail(QAT_EINPUT, "%s: byte %u at offset %lld is >= vocab %d (text needs vocab 256)", path,
                                (unsigned)dst[i], (long long)(*n - start + (int64_t)i), vocab);
    *n += (int64_t)got;
    return QAT_OK;
}

/* 1 when every byte from the stream's position on is zero (tar and dictzip
 * pad so; gzip -d accepts it without a word), the bytes in[0..have) first. */
static int only_zeros(FILE *f, const unsigned char *in, size_t have, unsigned char *scratch, size_t size) {
    for (size_t i = 0; i < have; i++)
        if (in[i]) return 0;
    size_t got;
    while ((got = fread(scratch, 1, size, f)) > 0)
        for (size_t i = 0; i < got; i++)
            if (scratch[i]) return 0;
    return !ferror(f);
}

/* One gzip file: its members in turn, inflated by hand rather than through
 * gzread, which ends a file quietly at the first bytes after a member that are
 * not another member's header: `(gzip -c a.txt; cat a.txt) > x.gz` packed only
 * the gzip part, exit 0, where gzip -d says "trailing garbage ignored" and
 * exits 2. Here such bytes are an input error naming their offset; zeros only
 * (padding) are accepted, as gzip does. */
static int read_gzip(const char *path, FILE *f, int vocab, uint16_t **buf, int64_t *cap, int64_t *n) {
    static _Thread_local unsigned char in[1 << 16], out[1 << 18];
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return qat_fail(QAT_ERUNTIME, "%s: zlib: cannot start inflating", path);
    int64_t start = *n, read_in = 0; /* read_in: bytes of the file read into `in` so far */
    int rc = QAT_OK, ended = 0;      /* ended: the last member ended (Z_STREAM_END) and no other began */
    for (;;) {
        if (z.avail_in == 0) {
            size_t got = fread(in, 1, sizeof in, f);
            if (!got && ferror(f)) {
                rc = qat_fail(QAT_EINPUT, "%s: read error after %lld bytes: %s", path, (long long)(*n - start),
                              strerror(errno));
                break;
            }
            if (!got) {
                if (!ended) /* the input ended inside a member */
                    rc = qat_fail(QAT_EINPUT, "%s: corrupt gzip data after %lld bytes: unexpected end of file "
                                  "(truncated file?)", path, (long long)(*n - start));
                break;
            }
            read_in += (int64_t)got;
            z.next_in = in;
            z.avail_in = (uInt)got;
        }
        if (ended) { /* bytes after a member: another member, padding, or not gzip at all */
            if (z.avail_in < 2) { /* a header's two bytes may straddle two reads */
                memmove(in, z.next_in, z.avail_in);
                size_t got = fread(in + z.avail_in, 1, sizeof in - z.avail_in, f);
                read_in += (int64_t)got;
                z.next_in = in;
                z.avail_in += (uInt)got;
            }
            int64_t at = read_in - z.avail_in;
            if (z.avail_in >= 2 && z.next_in[0] == 0x1f && z.next_in[1] == 0x8b) {
                inflateReset(&z);
                ended = 0;
            } else if (only_zeros(f, z.next_in, z.avail_in, out, sizeof out)) {
                break;
            } else {
                rc = qat_fail(QAT_EINPUT, "%s: data that is not gzip after the gzip data, at byte offset %lld (gzip "
                              "-d ignores it as \"trailing garbage\"); expected gzip members only (was a file "
                              "appended to a compressed one?)", path, (long long)at);
                break;
            }
        }
        z.next_out = out;
        z.avail_out = sizeof out;
        int zr = inflate(&z, Z_NO_FLUSH);
        size_t got = sizeof out - z.avail_out;
        if (got && (rc = append(path, out, got, vocab, start, buf, cap, n))) break;
        if (zr == Z_STREAM_END) { ended = 1; continue; }
        if (zr == Z_OK || (zr == Z_BUF_ERROR && z.avail_in == 0)) continue;
        const char *msg = z.msg ? z.msg : zError(zr);
        /* the trailer's CRC-32 and length are checked after the member's last
         * byte is out: "after N bytes" would read as a cut, so it is named */
        if (zr == Z_DATA_ERROR && (strstr(msg, "data check") || strstr(msg, "length check")))
            rc = qat_fail(QAT_EINPUT, "%s: corrupt gzip data: %s (the checksum or length at the end of the "
                          "stream does not match its data: the file is damaged)", path, msg);
        else if (zr == Z_MEM_ERROR)
            rc = qat_fail(QAT_ERUNTIME, "%s: zlib: out of memory", path);
        else
            rc = qat_fail(QAT_EINPUT, "%s: corrupt gzip data after %lld bytes: %s", path, (long long)(*n - start), msg);
        break;
    }
    inflateEnd(&z);
    return rc;
}

/* Append the bytes of one file to *buf (capacity *cap, length *n). */
static int read_one(const char *path, int gz, int vocab, uint16_t **buf, int64_t *cap, int64_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return qat_fail(QAT_EINPUT, "%s: cannot open text file: %s", path, strerror(errno));
    int64_t start = *n;
    int rc = QAT_OK;
    if (gz) rc = read_gzip(path, f, vocab, buf, cap, n);
    else {
        static _Thread_local unsigned char chunk[1 << 18];
        size_t got;
        while (!rc && (got = fread(chunk, 1, sizeof chunk, f)) > 0) rc = append(path, chunk, got, vocab, start, buf, cap, n);
        if (!rc && ferror(f))
            rc = qat_fail(QAT_EINPUT, "%s: read error after %lld bytes: %s", path, (long long)(*n - start),
                          strerror(errno));
    }
    fclose(f);
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
