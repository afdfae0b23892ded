/*
 * tests/test_data_shard.c — llm.c shards and byte text (data/shard.h, data/text.h):
 * a round trip that also pins the on-disk layout, and every malformed input a user
 * can hand us (bad magic, bad version, truncated, size mismatch, token >= vocab,
 * glob without matches, empty text) must be QAT_EINPUT naming the file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "testutil.h"

#include "core/error.h"
#include "data/shard.h"
#include "data/text.h"

static char dir[64];

static int setup(void **state) {
    (void)state;
    return qat_test_mkdtemp(dir, sizeof dir, "data_shard");
}

static int teardown(void **state) {
    (void)state;
    return qat_test_rmtree(dir);
}

static void path_in(char *out, const char *name) { sprintf(out, "%s/%s", dir, name); }

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

/* A shard header by hand, so the tests do not trust the writer they check. */
static void write_raw_shard(const char *path, int32_t magic, int32_t version, int32_t count, const uint16_t *t,
                            size_t n_tokens) {
    unsigned char buf[1024 + 2 * 64] = {0};
    int32_t h[3] = {magic, version, count};
    memcpy(buf, h, sizeof h); /* x86: little-endian */
    memcpy(buf + 1024, t, 2 * n_tokens);
    write_bytes(path, buf, 1024 + 2 * n_tokens);
}

static void assert_msg_has(const char *needle) {
    if (!strstr(qat_errmsg(), needle)) fail_msg("message '%s' lacks '%s'", qat_errmsg(), needle);
}

static void test_round_trip_and_layout(void **state) {
    (void)state;
    char p[128];
    path_in(p, "rt.bin");
    uint16_t t[1000];
    for (int i = 0; i < 1000; i++) t[i] = (uint16_t)(i * 7919 % 50257);
    assert_int_equal(qat_shard_write(p, t, 1000), QAT_OK);
    FILE *f = fopen(p, "rb");
    unsigned char h[1024];
    assert_int_equal(fread(h, 1, 1024, f), 1024);
    fseek(f, 0, SEEK_END);
    assert_int_equal(ftell(f), 1024 + 2000);
    fclose(f);
    assert_int_equal(h[0] | h[1] << 8 | h[2] << 16 | h[3] << 24, 20240520);
    assert_int_equal(h[4] | h[5] << 8, 1);
    assert_int_equal(h[8] | h[9] << 8 | h[10] << 16, 1000);
    for (int i = 12; i < 1024; i++) assert_int_equal(h[i], 0);
    uint16_t *r;
    int64_t n;
    assert_int_equal(qat_shard_read(p, 50257, &r, &n), QAT_OK);
    assert_int_equal(n, 1000);
    assert_memory_equal(r, t, sizeof t);
    free(r);
    /* An empty shard is valid. */
    assert_int_equal(qat_shard_write(p, t, 0), QAT_OK);
    assert_int_equal(qat_shard_read(p, 256, &r, &n), QAT_OK);
    assert_int_equal(n, 0);
    free(r);
}

static void test_bad_magic(void **state) {
    (void)state;
    char p[128];
    path_in(p, "magic.bin");
    uint16_t t[4] = {1, 2, 3, 4};
    write_raw_shard(p, 20240521, 1, 4, t, 4);
    uint16_t *r;
    int64_t n;
    assert_int_equal(qat_shard_read(p, 256, &r, &n), QAT_EINPUT);
    assert_msg_has(p);
    assert_msg_has("magic");
    assert_null(r);
}

static void test_bad_version(void **state) {
    (void)state;
    char p[128];
    path_in(p, "version.bin");
    uint16_t t[4] = {1, 2, 3, 4};
    write_raw_shard(p, 20240520, 2, 4, t, 4);
    uint16_t *r;
    int64_t n;
    assert_int_equal(qat_shard_read(p, 256, &r, &n), QAT_EINPUT);
    assert_msg_has(p);
    assert_msg_has("version");
}

static void test_truncated(void **state) {
    (void)state;
    char p[128];
    uint16_t t[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    uint16_t *r;
    int64_t n;
    /* Header announces 8 tokens, the file holds 5: a cut-off download. */
    path_in(p, "cut.bin");
    write_raw_shard(p, 20240520, 1, 8, t, 5);
    assert_int_equal(qat_shard_read(p, 256, &r, &n), QAT_EINPUT);
    assert_msg_has(p);
    assert_msg_has("truncated");
    /* Not even a header. */
    path_in(p, "tiny.bin");
    write_bytes(p, "\x28\xd5\x34\x01", 4);
    assert_int_equal(qat_shard_read(p, 256, &r, &n), QAT_EINPUT);
    assert_msg_has(p);
    assert_msg_has("truncated");
    /* Magic and version fine but the header itself is cut at 100 bytes. */
    path_in(p, "cuthead.bin");
    unsigned char h[100] = {0};
    int32_t hv[3] = {20240520, 1, 0};
    memcpy(h, hv, sizeof hv);
    write_bytes(p, h, sizeof h);
    assert_int_equal(qat_shard_read(p, 256, &r, &n), QAT_EINPUT);
    assert_msg_has(p);
    assert_msg_has("truncated");
    /* 100 zero bytes: neither a header nor a shard; the size says so, not "bad magic 0" */
    path_in(p, "zeros.bin");
    memset(h, 0, sizeof h);
    write_bytes(p, h, sizeof h);
    assert_int_equal(qat_shard_read(p, 256, &r, &n), QAT_EINPUT);
    assert_msg_has(p);
    assert_msg_has("100 bytes, shorter than the 1024-byte header");
}

static void test_count_mismatch(void **state) {
    (void)state;
    char p[128];
    path_in(p, "long.bin");
    uint16_t t[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    write_raw_shard(p, 20240520, 1, 5, t, 8); /* more tokens than announced */
    uint16_t *r;
    int64_t n;
    assert_int_equal(qat_shard_read(p, 256, &r, &n), QAT_EINPUT);
    assert_msg_has(p);
    assert_msg_has("header says 5 tokens");
}

static void test_token_out_of_vocab(void **state) {
    (void)state;
    char p[128];
    path_in(p, "oov.bin");
    uint16_t t[6] = {1, 2, 255, 256, 3, 4};
    assert_int_equal(qat_shard_write(p, t, 6), QAT_OK);
    uint16_t *r;
    int64_t n;
    assert_int_equal(qat_shard_read(p, 256, &r, &n), QAT_EINPUT);
    assert_msg_has(p);
    assert_msg_has("token id 256 at token index 3");
    assert_int_equal(qat_shard_read(p, 257, &r, &n), QAT_OK);
    free(r);
}

static void test_missing_file_and_empty_glob(void **state) {
    (void)state;
    char p[128];
    path_in(p, "absent.bin");
    uint16_t *r;
    int64_t n;
    assert_int_equal(qat_shard_read(p, 256, &r, &n), QAT_EINPUT);
    assert_msg_has(p);
    char **paths;
    int np;
    path_in(p, "nothing_*.bin");
    assert_int_equal(qat_shard_glob(p, &paths, &np), QAT_EINPUT);
    assert_msg_has(p);
    assert_msg_has("no data files match");
    /* Matches come back sorted. */
    char a[128], b[128];
    uint16_t t[2] = {1, 2};
    path_in(b, "g_b.bin");
    path_in(a, "g_a.bin");
    assert_int_equal(qat_shard_write(b, t, 2), QAT_OK);
    assert_int_equal(qat_shard_write(a, t, 2), QAT_OK);
    path_in(p, "g_*.bin");
    assert_int_equal(qat_shard_glob(p, &paths, &np), QAT_OK);
    assert_int_equal(np, 2);
    assert_string_equal(paths[0], a);
    assert_string_equal(paths[1], b);
    qat_shard_free_paths(paths, np);
}

static void test_text_bytes(void **state) {
    (void)state;
    char p[128], q[128], e[128];
    path_in(p, "a.txt");
    path_in(q, "b.txt");
    path_in(e, "empty.txt");
    write_bytes(p, "hi\xff", 3);
    write_bytes(q, "\x00z", 2);
    write_bytes(e, "", 0);
    const char *files[2] = {p, q};
    uint16_t *t;
    int64_t n;
    assert_int_equal(qat_text_read_files(files, 2, 256, &t, &n, NULL), QAT_OK);
    assert_int_equal(n, 5);
    const uint16_t want[5] = {'h', 'i', 255, 0, 'z'};
    assert_memory_equal(t, want, sizeof want);
    free(t);
    const char *bad[2] = {p, e};
    assert_int_equal(qat_text_read_files(bad, 2, 256, &t, &n, NULL), QAT_EINPUT);
    assert_msg_has(e);
    assert_msg_has("empty");
    /* A byte beyond a smaller model vocabulary names the file and offset. */
    assert_int_equal(qat_text_read_files(files, 2, 128, &t, &n, NULL), QAT_EINPUT);
    assert_msg_has(p);
    assert_msg_has("offset 2");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_and_layout),
        cmocka_unit_test(test_bad_magic),
        cmocka_unit_test(test_bad_version),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_count_mismatch),
        cmocka_unit_test(test_token_out_of_vocab),
        cmocka_unit_test(test_missing_file_and_empty_glob),
        cmocka_unit_test(test_text_bytes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
