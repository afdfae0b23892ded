/*
 * tests/h5fuzz.h — byte-flip fuzzing of the HDF5 files qat writes, and files
 * in the layout qat wrote before its strings were fixed-length.
 *
 * h5fuzz_run damages one byte at a time (XOR 0x5a) of a copy of a file and
 * calls the reader under test on it. The reader says what it got: the same
 * content as from the intact file, a qat error, or (a failure of the test)
 * other content without an error. Run in this process, a crash fails the test
 * and an alarm turns a hang into one; with `fork` set each flip is read in a
 * child, so that the test can name the offset that crashed or hung (for the
 * old layout, whose heap HDF5 does not checksum).
 *
 * h5fuzz_write_old copies a file into the old layout: every string attribute of
 * the root and the listed string datasets variable-length (their characters in
 * HDF5's global heap), root attributes in HDF5's default (dense) storage, as
 * qat wrote run.h5, ckpt.h5 and FIT.h5 before. Include after cmocka.h and hdf5.h.
 * H5FUZZ_VERBOSE=1 in the environment prints every refusal's message.
 */
#ifndef QAT_TESTS_H5FUZZ_H
#define QAT_TESTS_H5FUZZ_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/error.h"

/* Under AddressSanitizer: HDF5 1.10 loses what it allocated while loading an
 * object header whose checksum fails (tests/lsan-hdf5.supp), and a fuzz takes
 * that path thousands of times in the test's own process. Only allocations
 * with a frame in that library are left out of the leak report. */
const char *__lsan_default_suppressions(void);
__attribute__((used)) const char *__lsan_default_suppressions(void) {
    return "leak:libhdf5_serial.so\nleak:libhdf5.so\n";
}

/* What a reader returns for one damaged copy. */
enum { H5FUZZ_SAME = 0, H5FUZZ_DAMAGED = 1, H5FUZZ_INPUT = 2, H5FUZZ_WRONG = 3 };

/* Read the file at `path`; H5FUZZ_SAME when the content equals the intact
 * file's, the qat code (QAT_ERUNTIME, QAT_EINPUT) of a refusal, H5FUZZ_WRONG
 * for other content read without an error. */
typedef int (*h5fuzz_read_fn)(const char *path, void *ctx);

typedef struct {
    int flips, same, damaged, input, wrong, crashed, bad_message;
    long first_bad; /* offset of the first wrong, crashed or badly reported flip, -1 */
} h5fuzz_counts;

static inline size_t h5fuzz_size(const char *path) {
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (size_t)st.st_size;
}

static inline void h5fuzz_copy(const char *src, const char *dst) {
    FILE *a = fopen(src, "rb"), *b = fopen(dst, "wb");
    assert_non_null(a);
    assert_non_null(b);
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0) assert_int_equal(fwrite(buf, 1, n, b), n);
    fclose(a);
    assert_int_equal(fclose(b), 0);
}

/* A refusal must be one line naming the file. */
static inline int h5fuzz_message_ok(const char *path) {
    const char *m = qat_errmsg();
    return m && strstr(m, path) && !strchr(m, '\n');
}

/* One flip read here (alarm: a hang is SIGALRM) or in a child. */
static inline int h5fuzz_one(const char *dst, int use_fork, unsigned secs, h5fuzz_read_fn read, void *ctx) {
    if (!use_fork) {
        alarm(secs);
        int r = read(dst, ctx);
        alarm(0);
        if (getenv("H5FUZZ_VERBOSE") && r != H5FUZZ_SAME && r != H5FUZZ_WRONG)
            printf("      %d: %s\n", r, qat_errmsg());
        if (r != H5FUZZ_SAME && r != H5FUZZ_WRONG && !h5fuzz_message_ok(dst)) r += 16;
        return r;
    }
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(secs);
        int r = read(dst, ctx);
        if (r != H5FUZZ_SAME && r != H5FUZZ_WRONG && !h5fuzz_message_ok(dst)) r += 16;
        _exit(r);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Set while fuzzing a file whose strings may read as other text (the old
 * layout without CRCs): such flips are counted, not printed. */
static int h5fuzz_quiet_wrong;

/* Flip each byte at [from, to) with step `stride` of `src`, copied to `dst`,
 * and read; bytes inside [skip_from[k], skip_to[k]) (chunk data, say) only every
 * `skip_stride`-th. Counts into c; prints the first few bad flips. */
static inline void h5fuzz_run(const char *src, const char *dst, size_t from, size_t to, size_t stride, int use_fork,
                              const size_t *skip_from, const size_t *skip_to, int n_skip, size_t skip_stride,
                              h5fuzz_read_fn read, void *ctx, h5fuzz_counts *c) {
    memset(c, 0, sizeof *c);
    c->first_bad = -1;
    h5fuzz_copy(src, dst);
    size_t size = h5fuzz_size(dst);
    if (to > size) to = size;
    FILE *f = fopen(dst, "r+b");
    assert_non_null(f);
    int printed = 0;
    for (size_t i = from; i < to; i += stride) {
        int skipped = 0;
        for (int k = 0; k < n_skip && !skipped; k++)
            skipped = i >= skip_from[k] && i < skip_to[k] && (i - skip_from[k]) % skip_stride;
        if (skipped) continue;
        unsigned char b;
        assert_int_equal(fseek(f, (long)i, SEEK_SET), 0);
        assert_int_equal(fread(&b, 1, 1, f), 1);
        unsigned char x = b ^ 0x5a;
        assert_int_equal(fseek(f, (long)i, SEEK_SET), 0);
        assert_int_equal(fwrite(&x, 1, 1, f), 1);
        fflush(f);
        int r = h5fuzz_one(dst, use_fork, 10, read, ctx);
        assert_int_equal(fseek(f, (long)i, SEEK_SET), 0);
        assert_int_equal(fwrite(&b, 1, 1, f), 1);
        fflush(f);
        c->flips++;
        int bad = 1;
        if (r == H5FUZZ_SAME) c->same++, bad = 0;
        else if (r == QAT_ERUNTIME) c->damaged++, bad = 0;
        else if (r == QAT_EINPUT) c->input++, bad = 0;
        else if (r == H5FUZZ_WRONG) c->wrong++;
        else if (r >= 16) c->bad_message++;
        else c->crashed++;
        if (bad && c->first_bad < 0) c->first_bad = (long)i;
        if (bad && !(r == H5FUZZ_WRONG && h5fuzz_quiet_wrong) && printed++ < 5)
            printf("    flip at %zu: %s\n", i, r == H5FUZZ_WRONG ? "other content, no error"
                                           : r >= 16               ? "a message not one line naming the file"
                                                                   : "crashed or hung");
    }
    fclose(f);
}

static inline void h5fuzz_print(const char *what, const h5fuzz_counts *c) {
    printf("  %s: %d flips: %d read the same, %d damaged (exit 1), %d not recognised (exit 2), %d wrong, "
           "%d crashed or hung, %d badly reported\n",
           what, c->flips, c->same, c->damaged, c->input, c->wrong, c->crashed, c->bad_message);
}

/* The byte ranges of every chunk of every chunked dataset of `path`. */
typedef struct {
    size_t from[256], to[256];
    int n;
} h5fuzz_chunks;

static inline herr_t h5fuzz_chunk_cb(hid_t o, const char *name, const H5O_info_t *info, void *op) {
    h5fuzz_chunks *c = op;
    if (info->type != H5O_TYPE_DATASET) return 0;
    hid_t d = H5Dopen2(o, name, H5P_DEFAULT);
    hid_t dcpl = H5Dget_create_plist(d);
    if (H5Pget_layout(dcpl) == H5D_CHUNKED) {
        hid_t sp = H5Dget_space(d);
        hsize_t n = 0;
        H5Dget_num_chunks(d, sp, &n);
        for (hsize_t k = 0; k < n && c->n < 256; k++) {
            haddr_t addr;
            hsize_t size;
            if (H5Dget_chunk_info(d, sp, k, NULL, NULL, &addr, &size) >= 0) {
                c->from[c->n] = (size_t)addr;
                c->to[c->n++] = (size_t)(addr + size);
            }
        }
        H5Sclose(sp);
    }
    H5Pclose(dcpl);
    H5Dclose(d);
    return 0;
}

static inline void h5fuzz_find_chunks(const char *path, h5fuzz_chunks *c) {
    memset(c, 0, sizeof *c);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    assert_true(f >= 0);
    assert_true(H5Ovisit(f, H5_INDEX_NAME, H5_ITER_INC, h5fuzz_chunk_cb, c) >= 0);
    H5Fclose(f);
    H5Pclose(fapl);
}

/* Offsets of the global heap collections ("GCOL") of a file, and each one's size. */
static inline int h5fuzz_find_gcol(const char *path, size_t *at, size_t *size, int max) {
    size_t n = h5fuzz_size(path);
    unsigned char *b = malloc(n);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(b, 1, n, f), n);
    fclose(f);
    int k = 0;
    for (size_t i = 0; i + 16 <= n && k < max; i++)
        if (!memcmp(b + i, "GCOL", 4) && b[i + 4] == 1) {
            uint64_t s = 0;
            for (int j = 7; j >= 0; j--) s = s << 8 | b[i + 8 + j];
            at[k] = i;
            size[k++] = (size_t)s;
        }
    free(b);
    return k;
}

/* ---- the old layout ------------------------------------------------------ */

static inline hid_t h5fuzz_vlen_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

typedef struct {
    hid_t dst;
    int keep_crc;
} h5fuzz_old_ctx;

/* Copy one root attribute, a string one as variable-length. */
static inline herr_t h5fuzz_attr_cb(hid_t loc, const char *name, const H5A_info_t *info, void *op) {
    (void)info;
    h5fuzz_old_ctx *c = op;
    size_t len = strlen(name);
    if (!c->keep_crc && len > 6 && !strcmp(name + len - 6, "_crc32")) return 0;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT), t = H5Aget_type(a), sp = H5Aget_space(a);
    if (H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) <= 0) {
        size_t n = H5Tget_size(t);
        char *s = calloc(n + 1, 1);
        assert_true(H5Aread(a, t, s) >= 0);
        hid_t vt = h5fuzz_vlen_type();
        hid_t b = H5Acreate2(c->dst, name, vt, sp, H5P_DEFAULT, H5P_DEFAULT);
        const char *p = s;
        assert_true(b >= 0 && H5Awrite(b, vt, &p) >= 0);
        H5Aclose(b);
        H5Tclose(vt);
        free(s);
    } else {
        size_t n = H5Tget_size(t) * (size_t)H5Sget_simple_extent_npoints(sp);
        void *v = malloc(n ? n : 1);
        assert_true(H5Aread(a, t, v) >= 0);
        hid_t b = H5Acreate2(c->dst, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
        assert_true(b >= 0 && H5Awrite(b, t, v) >= 0);
        H5Aclose(b);
        free(v);
    }
    H5Sclose(sp);
    H5Tclose(t);
    H5Aclose(a);
    return 0;
}

static inline herr_t h5fuzz_child_cb(hid_t g, const char *name, const H5L_info_t *info, void *op) {
    (void)info;
    h5fuzz_old_ctx *c = op;
    assert_true(H5Ocopy(g, name, c->dst, name, H5P_DEFAULT, H5P_DEFAULT) >= 0);
    return 0;
}

/* Replace string dataset `name` of f with a variable-length copy, compact as
 * the old FIT.h5 writer made it, with its crc32 attribute when keep_crc. */
static inline void h5fuzz_vlen_dataset(hid_t f, const char *name, int keep_crc) {
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0) return;
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT), t = H5Dget_type(d), sp = H5Dget_space(d);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    size_t w = H5Tget_size(t);
    char *buf = calloc((size_t)(n ? n : 1) * w + 1, 1);
    if (n) assert_true(H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
    uint32_t crc = 0;
    int has_crc = keep_crc && H5Aexists(d, "crc32") > 0;
    if (has_crc) {
        hid_t a = H5Aopen(d, "crc32", H5P_DEFAULT);
        H5Aread(a, H5T_NATIVE_UINT32, &crc);
        H5Aclose(a);
    }
    H5Dclose(d);
    assert_true(H5Ldelete(f, name, H5P_DEFAULT) >= 0);
    char **rows = calloc((size_t)(n ? n : 1), sizeof *rows);
    for (hssize_t i = 0; i < n; i++) {
        rows[i] = calloc(w + 1, 1);
        memcpy(rows[i], buf + (size_t)i * w, w);
    }
    hid_t vt = h5fuzz_vlen_type(), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_layout(dcpl, H5D_COMPACT);
    hid_t e = H5Dcreate2(f, name, vt, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    assert_true(e >= 0);
    if (n) assert_true(H5Dwrite(e, vt, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) >= 0);
    if (has_crc) {
        hid_t s1 = H5Screate(H5S_SCALAR), a = H5Acreate2(e, "crc32", H5T_STD_U32LE, s1, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, H5T_NATIVE_UINT32, &crc);
        H5Aclose(a);
        H5Sclose(s1);
    }
    H5Dclose(e);
    H5Pclose(dcpl);
    H5Tclose(vt);
    for (hssize_t i = 0; i < n; i++) free(rows[i]);
    free(rows);
    free(buf);
    H5Sclose(sp);
    H5Tclose(t);
}

/* `src` (written by this qat) as qat wrote it before: a new file `dst` in the
 * latest format with default storage, the root's attributes copied with
 * strings variable-length (their *_crc32 companions only with keep_crc), every
 * object below the root copied, then the string datasets of `vl_dsets`
 * (NULL-terminated, may be NULL) made variable-length. */
static inline void h5fuzz_write_old(const char *src, const char *dst, int keep_crc, const char *const *vl_dsets) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
    hid_t s = H5Fopen(src, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(s >= 0);
    hid_t d = H5Fcreate(dst, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    assert_true(d >= 0);
    h5fuzz_old_ctx c = {d, keep_crc};
    assert_true(H5Aiterate2(s, H5_INDEX_NAME, H5_ITER_INC, NULL, h5fuzz_attr_cb, &c) >= 0);
    assert_true(H5Literate(s, H5_INDEX_NAME, H5_ITER_INC, NULL, h5fuzz_child_cb, &c) >= 0);
    H5Fclose(s);
    for (int i = 0; vl_dsets && vl_dsets[i]; i++) h5fuzz_vlen_dataset(d, vl_dsets[i], keep_crc);
    assert_true(H5Fclose(d) >= 0);
    H5Pclose(fapl);
}

#endif
