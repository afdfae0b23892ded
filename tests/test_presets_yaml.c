/*
 * tests/test_presets_yaml.c — configs/models/sN.yaml and model/presets.c agree:
 * loading each YAML file gives the sizes of the compiled preset of that name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

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

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_yaml_matches_table)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
