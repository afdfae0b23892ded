/*
 * tests/h5attr.h — a file's root attributes as the e2e tests read them, to check
 * what a run recorded (run.h5, ckpt.h5): a string as text, a number as a double,
 * each empty or NaN when the attribute is absent. Include after cmocka.h and hdf5.h.
 */
#ifndef QAT_TESTS_H5ATTR_H
#define QAT_TESTS_H5ATTR_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* Root attribute `name` of `path` as text into buf ("" when absent). */
static inline void h5attr_str(const char *path, const char *name, char *buf, size_t n) {
    buf[0] = 0;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    if (H5Aexists(f, name) > 0) {
        /* read in its own type: HDF5 converts no text between ASCII and UTF-8 */
        hid_t a = H5Aopen(f, name, H5P_DEFAULT), t = H5Aget_type(a);
        assert_true(H5Tget_class(t) == H5T_STRING);
        if (H5Tis_variable_str(t) > 0) {
            char *v = NULL;
            assert_true(H5Aread(a, t, &v) >= 0);
            snprintf(buf, n, "%s", v ? v : "");
            H5free_memory(v);
        } else {
            size_t sz = H5Tget_size(t);
            char *v = calloc(sz + 1, 1);
            assert_non_null(v);
            assert_true(H5Aread(a, t, v) >= 0);
            snprintf(buf, n, "%s", v);
            free(v);
        }
        H5Tclose(t);
        H5Aclose(a);
    }
    H5Fclose(f);
}

/* Root attribute `name` of `path` as a double (NaN when absent). */
static inline double h5attr_f64(const char *path, const char *name) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    double v = NAN;
    if (H5Aexists(f, name) > 0) {
        hid_t a = H5Aopen(f, name, H5P_DEFAULT);
        assert_true(H5Aread(a, H5T_NATIVE_DOUBLE, &v) >= 0);
        H5Aclose(a);
    }
    H5Fclose(f);
    return v;
}

#endif
