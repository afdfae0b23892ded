/*
 * compress/hadamard.c — the fast Walsh–Hadamard transform of hadamard.h.
 *
 * Butterflies stage by stage (stride 1, 2, 4, ...), with the 1/sqrt(B) scale
 * folded into the last stage so each element is written once per stage. The
 * strides >= 16 vectorise as whole AVX-512 registers; the four short strides are
 * done together on 16-element chunks as a 16-point transform so the compiler
 * can keep the chunk in registers.
 */
#include "compress/hadamard.h"

#include <math.h>

#include "core/error.h"

int qat_hadamard_block(int config_value, int64_t cols, int *block) {
    if (config_value == 0) {
        *block = 0;
        return QAT_OK;
    }
    if (config_value < 0) {
        if (config_value != -1)
            return qat_fail(QAT_EINPUT, "hadamard: %d is not valid, expected -1 (auto), 0 (off) or a power of two", config_value);
        int b = 1;
        while (b < 128 && cols % (2 * b) == 0) b *= 2;
        *block = b >= 2 ? b : 0; /* odd width: nothing to rotate */
        return QAT_OK;
    }
    if (config_value < 2 || (config_value & (config_value - 1)))
        return qat_fail(QAT_EINPUT, "hadamard: block %d is not a power of two >= 2, expected -1 (auto), 0 (off) or a power of two",
                        config_value);
    if (cols % config_value)
        return qat_fail(QAT_EINPUT, "hadamard: block %d does not divide the input dim %lld, expected a power of two dividing it",
                        config_value, (long long)cols);
    *block = config_value;
    return QAT_OK;
}

/* The 16-point transform (strides 1..8) on one chunk, unscaled. */
static inline void fwht16(float *restrict c) {
    for (int h = 1; h < 16; h *= 2)
        for (int i = 0; i < 16; i += 2 * h)
            for (int j = i; j < i + h; j++) {
                float a = c[j], b = c[j + h];
                c[j] = a + b;
                c[j + h] = a - b;
            }
}

/* B >= 16: the short strides chunk by chunk, then the long strides, with the
 * scale folded into the last stage. */
static void fwht_block(float *restrict x, int B) {
    const float scale = (float)(1.0 / sqrt((double)B));
    for (int i = 0; i < B; i += 16) fwht16(x + i);
    if (B == 16) {
        for (int i = 0; i < 16; i++) x[i] *= scale;
        return;
    }
    for (int h = 16; h < B; h *= 2) {
        const float s = 2 * h == B ? scale : 1.0f;
        for (int i = 0; i < B; i += 2 * h) {
            float *restrict lo = x + i, *restrict hi = x + i + h;
            for (int j = 0; j < h; j++) {
                float a = lo[j], b = hi[j];
                lo[j] = (a + b) * s;
                hi[j] = (a - b) * s;
            }
        }
    }
}

static void fwht_small(float *x, int B) {
    const float scale = (float)(1.0 / sqrt((double)B));
    for (int hh = 1; hh < B; hh *= 2)
        for (int i = 0; i < B; i += 2 * hh)
            for (int j = i; j < i + hh; j++) {
                float a = x[j], b = x[j + hh];
                x[j] = a + b;
                x[j + hh] = a - b;
            }
    for (int i = 0; i < B; i++) x[i] *= scale;
}

void qat_hadamard_row(float *x, int64_t n, int block) {
    if (block < 2) return;
    QAT_ASSERT(n % block == 0);
    for (int64_t b = 0; b < n; b += block) {
        if (block >= 16) fwht_block(x + b, block);
        else fwht_small(x + b, block);
    }
}

void qat_hadamard_rows(float *x, int64_t rows, int64_t cols, int block) {
    if (block < 2) return;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) qat_hadamard_row(x + r * cols, cols, block);
}
