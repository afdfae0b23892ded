/*
 * tests/test_presets_yaml.c — configs/models/sN.yaml and model/presets.c agree:
 * loading each YAML file gives the sizes of the compiled preset of that name;
 * and a size check against a preset names the key given last.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "testutil.h"

#include "core/config.h"
#include "core/error.h"
#include "model/llama.h"

static void test_yaml_matches_table(void **state) {
    (void)state;
    const char *root = getenv("QAT_SOURCE_ROOT");
    assert_non_null(root);
    for (int i = 1; i <= 8; i++) {
        char path[1024], name[8];
        snprintf(name, sizeof name, "s%d", i);
        snprintf(path, sizeof path, "%s/configs/models/%s.yaml", root, name);
        qat_config cfg;
        int rc = qat_config_load(path, NULL, 0, &cfg);
        if (rc) fprintf(stderr, "%s\n", qat_errmsg());
        assert_int_equal(rc, 0);
        cfg.model.preset[0] = 0; /* only what the file says */
        qat_model_shape from_yaml, from_table;
        assert_int_equal(qat_model_shape_from_config(&cfg, &from_yaml), 0);
        assert_int_equal(qat_model_preset(name, &from_table), 0);
        assert_int_equal(from_yaml.layers, from_table.layers);
        assert_int_equal(from_yaml.dim, from_table.dim);
        assert_int_equal(from_yaml.heads, from_table.heads);
        assert_int_equal(from_yaml.hidden, from_table.hidden);
    }
}

/* heads: 3 against preset s1's width 32: a check between keys points at the one
 * given last (docs/config.md), the heads line after the preset line, a --set over
 * the file; the preset line only when the preset was given after heads. */
static void expect_shape_error(const char *yaml, const char *const *sets, int n_set, const char *where) {
    char dir[256], path[512], want[1024];
    assert_int_equal(qat_test_mkdtemp(dir, sizeof dir, "presets"), 0);
    snprintf(path, sizeof path, "%s/h.yaml", dir);
    assert_int_equal(qat_test_write_text(path, yaml), 0);
    qat_config cfg;
    assert_int_equal(qat_config_load(path, sets, n_set, &cfg), QAT_OK);
    qat_model_shape s;
    assert_int_equal(qat_model_shape_from_config(&cfg, &s), QAT_EINPUT);
    if (where[0] == '-') snprintf(want, sizeof want, "%s: model.heads = 3 does not divide model.dim = 32", where);
    else snprintf(want, sizeof want, "%s/h.yaml:%s: model.heads = 3 does not divide model.dim = 32", dir, where);
    if (strcmp(qat_errmsg(), want)) fprintf(stderr, "got:  %s\nwant: %s\n", qat_errmsg(), want);
    assert_string_equal(qat_errmsg(), want);
    assert_int_equal(qat_test_rmtree(dir), 0);
}

static void test_size_check_names_the_later_key(void **state) {
    (void)state;
    expect_shape_error("model:\n  preset: s1\n  heads: 3\n", NULL, 0, "3:3");
    expect_shape_error("model:\n  heads: 3\n  preset: s1\n", NULL, 0, "3:3");
    expect_shape_error("model: {heads: 3}\n", (const char *const[]){"model.preset=s1"}, 1, "--set model.preset=s1");
    expect_shape_error("model:\n  preset: s1\n", (const char *const[]){"model.heads=3"}, 1, "--set model.heads=3");
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_yaml_matches_table),
                                       cmocka_unit_test(test_size_check_names_the_later_key)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
