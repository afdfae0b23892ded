/*
 * tests/test_isa_dispatch.c — the run-time choice of kernels (core/cpu.h).
 *
 * A portable build carries a generic and an AVX-512 copy of its kernels. On a CPU
 * that has AVX-512 this suite runs both copies on the same inputs and checks that
 * they agree: bit for bit where the arithmetic is element by element (Hadamard,
 * the int/fp4/ternary grids with a fixed RMS, e^x, bf16 rounding of normal
 * numbers, the vq choice), to float rounding where a reduction's lane order
 * differs (attention). In a native build there is one copy and the comparisons
 * reduce to a copy against itself. It also checks what `qat --version` and
 * run.h5 report, and that attention turns a NaN input into NaN outputs without
 * undefined behaviour (UBSan build).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>

#include "autograd/gemm.h"
#include "compress/gmse.h"
#include "compress/hadamard.h"
#include "compress/project.h"
#include "core/bf16.h"
#include "core/cpu.h"
#include "core/error.h"
#include "core/vexpf.h"
#include "gradcheck.h"

/* The two levels to compare; 0 when this build or CPU has only one. */
static int two_levels(int *hi) {
    *hi = qat_cpu_kernels_max();
    if (*hi == QAT_KERNELS_BUILTIN) {
        print_message("  one kernel level here (%s): comparing it with itself\n", qat_cpu_kernels_name(*hi));
        return 0;
    }
    return 1;
}

static void test_levels_and_describe(void **state) {
    (void)state;
    int max = qat_cpu_kernels_max();
    assert_int_equal(qat_cpu_set_kernels(99), max);
    assert_int_equal(qat_cpu_kernels(), max);
    assert_int_equal(qat_cpu_set_kernels(-1), QAT_KERNELS_BUILTIN);
    assert_int_equal(qat_cpu_avx512(), QAT_KERNELS_BUILTIN >= QAT_KERNELS_AVX512);
    qat_cpu_set_kernels(max);
    assert_int_equal(qat_cpu_avx512(), max >= QAT_KERNELS_AVX512);
    assert_int_equal(qat_cpu_avx512bf16(), max >= QAT_KERNELS_AVX512_BF16);

    qat_gemm_bf16_supported(NULL); /* links autograd/gemm.c, which names oneDNN's ISA */
    char d[1024], want[64];
    qat_cpu_describe(d, sizeof d);
    print_message("%s\n", d);
    assert_non_null(strstr(d, "cpu: "));
    assert_non_null(strstr(d, "features: "));
    assert_non_null(strstr(d, "build: "));
    assert_non_null(strstr(d, "gemm: oneDNN "));
    snprintf(want, sizeof want, "kernels: %s\n", qat_cpu_kernels_name(max));
    assert_non_null(strstr(d, want));
    char small[8];
    qat_cpu_describe(small, sizeof small); /* truncated, terminated */
    assert_int_equal(strlen(small), 7);
}

static void test_hadamard_copies_agree(void **state) {
    (void)state;
    int hi, n = 1024;
    two_levels(&hi);
    float *x = malloc(sizeof(float) * (size_t)n), *a = malloc(sizeof(float) * (size_t)n);
    float *b = malloc(sizeof(float) * (size_t)n), *s = malloc(sizeof(float) * (size_t)n);
    uint8_t *keep = malloc((size_t)n);
    gc_fill(x, n, 7, 3.0f);
    for (int i = 0; i < n; i++) keep[i] = (uint8_t)(i % 3 != 0);
    const int blocks[] = {8, 16, 32, 64, 128, 256, 1024};
    for (size_t k = 0; k < sizeof blocks / sizeof *blocks; k++)
        for (int mode = 0; mode < 4; mode++) {
            float *out[2] = {a, b};
            for (int c = 0; c < 2; c++) {
                qat_cpu_set_kernels(c ? hi : QAT_KERNELS_GENERIC);
                for (int i = 0; i < n; i++) out[c][i] = 0.5f * x[(i * 7) % n];
                if (mode == 0) memcpy(out[c], x, sizeof(float) * (size_t)n), qat_hadamard_row(out[c], n, blocks[k]);
                else if (mode == 1) qat_hadamard_row_copy(x, out[c], n, blocks[k]);
                else qat_hadamard_row_masked(x, keep, out[c], n, blocks[k], mode == 3, s);
            }
            if (memcmp(a, b, sizeof(float) * (size_t)n)) fail_msg("block %d mode %d: copies differ", blocks[k], mode);
        }
    qat_cpu_set_kernels(hi);
    free(x), free(a), free(b), free(s), free(keep);
}

/* With a fixed RMS the grids are element by element, so the AVX-512 int fast path
 * and 512-bit loops give the generic copy's bits, masks included. */
static void test_projection_copies_agree(void **state) {
    (void)state;
    int hi, n = 4096 + 5;
    two_levels(&hi);
    const char *fmts[] = {"int2", "int4", "int8", "ternary", "fp4", "vq2x2"};
    float *x = malloc(sizeof(float) * (size_t)n), *v[2];
    uint8_t *m[2];
    for (int c = 0; c < 2; c++) v[c] = malloc(sizeof(float) * (size_t)n), m[c] = malloc((size_t)n);
    gc_fill(x, n, 11, 2.0f);
    x[3] = 0.0f; /* a tie at code 0 */
    for (size_t f = 0; f < sizeof fmts / sizeof *fmts; f++)
        for (int mk = 0; mk < 2; mk++) {
            qat_fmt fmt;
            assert_int_equal(qat_fmt_parse(fmts[f], &fmt), QAT_OK);
            qat_proj P;
            qat_proj_setup(&P, &fmt);
            P.mask = mk ? QAT_MASK_TRUST : QAT_MASK_NONE;
            P.fixed_rms = 1.1;
            qat_proj_seg seg = {0};
            for (int c = 0; c < 2; c++) {
                qat_cpu_set_kernels(c ? hi : QAT_KERNELS_GENERIC);
                memcpy(v[c], x, sizeof(float) * (size_t)n);
                memset(m[c], 1, (size_t)n);
                qat_proj_row(&P, v[c], n, &seg, m[c]);
            }
            if (memcmp(v[0], v[1], sizeof(float) * (size_t)n)) fail_msg("%s mask %d: values differ", fmts[f], mk);
            if (mk && memcmp(m[0], m[1], (size_t)n)) fail_msg("%s: trust masks differ", fmts[f]);
        }
    qat_cpu_set_kernels(hi);
    free(x);
    for (int c = 0; c < 2; c++) free(v[c]), free(m[c]);
}

static void test_exp_and_bf16_copies_agree(void **state) {
    (void)state;
    int hi, n = 4099;
    two_levels(&hi);
    float *x = malloc(sizeof(float) * (size_t)n), *e[2];
    uint16_t *h[2];
    for (int c = 0; c < 2; c++) e[c] = malloc(sizeof(float) * (size_t)n), h[c] = malloc(2 * (size_t)n);
    gc_fill(x, n, 5, 40.0f);
    x[0] = NAN, x[1] = INFINITY, x[2] = 1.00390625f; /* a bf16 tie, rounds to even */
    for (int c = 0; c < 2; c++) {
        qat_cpu_set_kernels(c ? hi : QAT_KERNELS_GENERIC);
        qat_vexpf_row(x, e[c], n);
        qat_bf16_row(x, h[c], n);
    }
    qat_cpu_set_kernels(hi);
    assert_memory_equal(e[0], e[1], sizeof(float) * (size_t)n);
    assert_memory_equal(h[0], h[1], 2 * (size_t)n);
    assert_int_equal(h[0][2], 0x3f80);
    free(x);
    for (int c = 0; c < 2; c++) free(e[c]), free(h[c]);
}

/* One forward and backward of attention at `level`: outputs to out, x's gradient to grad. */
static void attention_at(int level, qat_tensor *x, const float *R, int64_t B, int64_t T, int H, float *out, float *grad) {
    qat_cpu_set_kernels(level);
    int64_t C = qat_tensor_cols(x) / 3;
    qat_tape tp;
    qat_tape_init(&tp, 1 << 22);
    qat_tape_reset(&tp);
    memset(x->grad, 0, sizeof(float) * (size_t)x->numel);
    qat_tensor *o = qat_attention(&tp, qat_cols_of(x, 0, C), qat_cols_of(x, C, C), qat_cols_of(x, 2 * C, C), B, T, H);
    qat_tensor *loss;
    gc_dot(&tp, o, R, &loss);
    qat_tape_backward(&tp, loss);
    memcpy(out, o->data, sizeof(float) * (size_t)o->numel);
    memcpy(grad, x->grad, sizeof(float) * (size_t)x->numel);
    qat_tape_free(&tp);
}

/* Head dims 16, 32 and 8 (the AVX-512 kernels' two and the AVX2 kernels' 8-wide
 * multiple); T = 37 leaves a partial vector of keys and rows at both widths, 5 is
 * shorter than one vector (tails only, no transposed blocks), 64 has no tail. */
static void test_attention_copies_agree(void **state) {
    (void)state;
    int hi;
    two_levels(&hi);
    const int64_t hds[] = {16, 32, 8, 16, 32, 8}, Ts[] = {37, 37, 37, 5, 64, 64};
    for (size_t k = 0; k < sizeof hds / sizeof *hds; k++) {
        int64_t B = 2, T = Ts[k], H = 2, hd = hds[k], C = H * hd, M = B * T;
        qat_tensor *x = gc_param(2, (int64_t[]){M, 3 * C}, 31, 1.5f);
        float *R = malloc(sizeof(float) * (size_t)(M * C)), *o[2], *g[2];
        gc_fill(R, M * C, 32, 1.0f);
        for (int c = 0; c < 2; c++) o[c] = malloc(sizeof(float) * (size_t)(M * C)), g[c] = malloc(sizeof(float) * (size_t)(M * 3 * C));
        attention_at(QAT_KERNELS_GENERIC, x, R, B, T, (int)H, o[0], g[0]);
        attention_at(hi, x, R, B, T, (int)H, o[1], g[1]);
        double wo = 0, wg = 0, gmax = 0;
        for (int64_t i = 0; i < M * C; i++) wo = fmax(wo, fabs((double)o[0][i] - o[1][i]));
        for (int64_t i = 0; i < M * 3 * C; i++) gmax = fmax(gmax, fabs(g[0][i]));
        for (int64_t i = 0; i < M * 3 * C; i++) wg = fmax(wg, fabs((double)g[0][i] - g[1][i]) / gmax);
        print_message("  hd %lld T %lld: generic vs %s: max |out diff| %.2e, grad rel %.2e\n", (long long)hd,
                      (long long)T, qat_cpu_kernels_name(hi), wo, wg);
        assert_true(wo < 1e-5 && wg < 1e-5);
        free(R);
        for (int c = 0; c < 2; c++) free(o[c]), free(g[c]);
        gc_param_free(x);
    }
    qat_cpu_set_kernels(hi);
}

/* A NaN query element (a non-finite weight upstream) makes its own output row NaN
 * and leaves the others finite, on every copy; under UBSan the exponent of e^NaN
 * used to be a left shift of a negative value. */
static void test_attention_nan_stays_nan(void **state) {
    (void)state;
    int hi;
    two_levels(&hi);
    int64_t B = 1, T = 20, H = 1, hd = 16, C = hd;
    for (int c = 0; c < 2; c++) {
        qat_cpu_set_kernels(c ? hi : QAT_KERNELS_GENERIC);
        qat_tensor *x = gc_param(2, (int64_t[]){B * T, 3 * C}, 41, 1.0f);
        x->data[5 * 3 * C + 2] = NAN; /* q of position 5 */
        qat_tape tp;
        qat_tape_init(&tp, 1 << 20);
        tp.grad_enabled = 0;
        qat_tensor *o = qat_attention(&tp, qat_cols_of(x, 0, C), qat_cols_of(x, C, C), qat_cols_of(x, 2 * C, C), B, T, (int)H);
        for (int64_t t = 0; t < T; t++)
            for (int64_t d = 0; d < hd; d++) {
                float y = o->data[t * C + d];
                if (t == 5) assert_true(isnan(y));
                else assert_true(isfinite(y));
            }
        qat_tape_free(&tp);
        gc_param_free(x);
    }
    qat_cpu_set_kernels(hi);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_levels_and_describe),
        cmocka_unit_test(test_hadamard_copies_agree),
        cmocka_unit_test(test_projection_copies_agree),
        cmocka_unit_test(test_exp_and_bf16_copies_agree),
        cmocka_unit_test(test_attention_copies_agree),
        cmocka_unit_test(test_attention_nan_stays_nan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
