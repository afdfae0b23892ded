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
#include <string.h>

#include "core/cpu.h"
#include "core/error.h"

#if (defined(__AVX512BW__) && defined(__AVX512VL__)) || defined(__AVX2__)
#include <immintrin.h>
#endif

/* Compiled twice in a portable build (core/cpu.h): the row transforms run the
 * AVX-512 copy on CPUs that have it. Each butterfly is one IEEE add or subtract
 * and the scale one multiply, so every copy gives the same bits. */
#if QAT_ISA_RENAME
#define qat_hadamard_row QAT_ISA_NAME(qat_hadamard_row)
#define qat_hadamard_row_copy QAT_ISA_NAME(qat_hadamard_row_copy)
#define qat_hadamard_row_masked QAT_ISA_NAME(qat_hadamard_row_masked)
#define qat_hadamard_rows QAT_ISA_NAME(qat_hadamard_rows)
#endif

#if !QAT_ISA_COPY

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
#endif

/* The 16-point transform (strides 1..8) of one chunk held in a vector
 * register. A butterfly at stride h pairs element j with j^h; with p the
 * vector permuted by j -> j^h, the outputs are p + v where bit h of j is 0
 * (a + b) and p - v where it is 1 (a - b), i.e. p + sign_h * v. GCC lowers the
 * shuffles to single permutes, which is what makes the short strides cheap. */
#ifndef __AVX512F__ /* 64-byte vectors passed between static helpers only: no ABI at stake */
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
typedef float qat_v16 __attribute__((vector_size(64)));
typedef int qat_v16i __attribute__((vector_size(64)));
typedef uint8_t qat_v16b __attribute__((vector_size(16)));

static inline qat_v16 fwht16(qat_v16 v) {
    const qat_v16i p1 = {1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14};
    const qat_v16i p2 = {2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13};
    const qat_v16i p4 = {4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11};
    const qat_v16i p8 = {8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7};
    const qat_v16 s1 = {1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1};
    const qat_v16 s2 = {1, 1, -1, -1, 1, 1, -1, -1, 1, 1, -1, -1, 1, 1, -1, -1};
    const qat_v16 s4 = {1, 1, 1, 1, -1, -1, -1, -1, 1, 1, 1, 1, -1, -1, -1, -1};
    const qat_v16 s8 = {1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1, -1};
    v = __builtin_shuffle(v, p1) + s1 * v;
    v = __builtin_shuffle(v, p2) + s2 * v;
    v = __builtin_shuffle(v, p4) + s4 * v;
    v = __builtin_shuffle(v, p8) + s8 * v;
    return v;
}

/* B = 16·nv (at most 1024): every 16-chunk in registers, then the long strides
 * as whole-vector butterflies, scaling by 1/sqrt(B) on the way out. Reads all of
 * src before writing dst, so dst may be src (in place) or another row (a copy
 * that costs no extra pass over memory). With `keep` set, a chunk is loaded as
 * keep[i] ? src[i] : +0 (the masked backward's select, done in the load); with
 * `add` set, dst += result instead of dst = result. Always inlined so that each
 * caller gets a copy per constant nv: with nv known the loops unroll and the
 * chunks stay in registers instead of a stack array. */
static inline __attribute__((always_inline)) void fwht_chunks(const float *src, const uint8_t *keep, float *dst, const int nv,
                                                              float scale, const int add) {
    qat_v16 v[64];
    for (int i = 0; i < nv; i++) {
#if defined(__AVX512BW__) && defined(__AVX512VL__)
        /* keep's 16 bytes straight to a lane mask, then a zero-masking move (+0
         * where dropped, the select's value): GCC lowered the byte-to-int
         * conversion below to ~40 scalar moves and inserts per chunk. The load
         * itself is a plain one: a zero-masked load waits for its mask, so on rows
         * coming cold from memory the loads went out one after another (0.78 ns
         * against 0.25 ns per element, one thread, 4096 rows of 256, block 128). */
        if (keep) {
            __m128i kb = _mm_loadu_si128((const __m128i *)(keep + 16 * i));
            __m512 x = _mm512_loadu_ps(src + 16 * i);
            __asm__("" : "+v"(x)); /* keeps GCC from folding the load back into the masked move */
            x = _mm512_maskz_mov_ps(_mm_test_epi8_mask(kb, kb), x);
            memcpy(&v[i], &x, sizeof v[i]);
            v[i] = fwht16(v[i]);
            continue;
        }
#elif defined(__AVX2__)
        /* the same select with AVX2: the 16 bytes widened to two 8-lane compares, the
         * dropped lanes cleared (+0). GCC's lowering of the generic conversion below
         * (scalar moves and stack spills) made this function 6.4% of a one-thread s4
         * W4A4 run on a Zen 3. */
        if (keep) {
            __m128i kb = _mm_loadu_si128((const __m128i *)(keep + 16 * i));
            const __m256i z = _mm256_setzero_si256();
            __m256 off0 = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_cvtepu8_epi32(kb), z));
            __m256 off1 = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(kb, 8)), z));
            __m256 x[2] = {_mm256_andnot_ps(off0, _mm256_loadu_ps(src + 16 * i)),
                           _mm256_andnot_ps(off1, _mm256_loadu_ps(src + 16 * i + 8))};
            memcpy(&v[i], x, sizeof v[i]);
            v[i] = fwht16(v[i]);
            continue;
        }
#endif
        memcpy(&v[i], src + 16 * i, sizeof v[i]);
        if (keep) {
            qat_v16b kb;
            memcpy(&kb, keep + 16 * i, sizeof kb);
            qat_v16i on = __builtin_convertvector(kb, qat_v16i) != 0; /* all ones where kept */
            v[i] = (qat_v16)((qat_v16i)v[i] & on);
        }
        v[i] = fwht16(v[i]);
    }
    for (int h = 1; h < nv; h *= 2)
        for (int i = 0; i < nv; i += 2 * h)
            for (int j = i; j < i + h; j++) {
                qat_v16 a = v[j], b = v[j + h];
                v[j] = a + b;
                v[j + h] = a - b;
            }
    for (int i = 0; i < nv; i++) {
        v[i] *= scale;
        if (add) {
            /* the product is rounded on its own, as when it went through memory
             * before the add: no fused multiply-add may change the sum's bits.
             * ISO C mode (-std=c11) already keeps fp-contract off; the empty asm
             * pins it where a whole 64-byte vector fits a register (AVX-512). On
             * narrower ISAs GCC splits the vector and "+v" has no register. */
#ifdef __AVX512F__
            __asm__("" : "+v"(v[i]));
#endif
            qat_v16 o;
            memcpy(&o, dst + 16 * i, sizeof o);
            v[i] = o + v[i];
        }
        memcpy(dst + 16 * i, &v[i], sizeof v[i]);
    }
}

/* One row of n elements in blocks of B (16 <= B <= 1024), 1/sqrt(B) computed once. */
static inline __attribute__((always_inline)) void fwht_row(const float *src, const uint8_t *keep, float *dst, int64_t n,
                                                           int B, const int add) {
    const float scale = (float)(1.0 / sqrt((double)B));
    const int nv = B / 16;
    QAT_ASSERT(nv >= 1 && nv <= 64 && n % B == 0);
#define QAT_FWHT_ROW(NV)                                                                                     \
    for (int64_t b = 0; b < n; b += B) fwht_chunks(src + b, keep ? keep + b : NULL, dst + b, NV, scale, add); \
    break
    switch (nv) {
    case 1: QAT_FWHT_ROW(1);
    case 2: QAT_FWHT_ROW(2);
    case 4: QAT_FWHT_ROW(4);
    case 8: QAT_FWHT_ROW(8);
    case 16: QAT_FWHT_ROW(16);
    default: QAT_FWHT_ROW(nv);
    }
#undef QAT_FWHT_ROW
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

static int vector_block(int block) { return block >= 16 && block <= 1024; }

void qat_hadamard_row(float *x, int64_t n, int block) {
    if (block < 2) return;
    QAT_ASSERT(n % block == 0);
    if (vector_block(block)) {
        fwht_row(x, NULL, x, n, block, 0);
        return;
    }
    for (int64_t b = 0; b < n; b += block) fwht_small(x + b, block);
}

void qat_hadamard_row_copy(const float *src, float *dst, int64_t n, int block) {
    if (vector_block(block)) {
        fwht_row(src, NULL, dst, n, block, 0);
        return;
    }
    memcpy(dst, src, sizeof(float) * (size_t)n);
    qat_hadamard_row(dst, n, block);
}

void qat_hadamard_row_masked(const float *src, const uint8_t *keep, float *dst, int64_t n, int block, int add,
                             float *scratch) {
    if (vector_block(block)) {
        if (add) fwht_row(src, keep, dst, n, block, 1);
        else fwht_row(src, keep, dst, n, block, 0);
        return;
    }
    for (int64_t c = 0; c < n; c++) scratch[c] = keep ? qat_kept_or_zero(src[c], keep[c]) : src[c];
    qat_hadamard_row(scratch, n, block);
    if (add)
        for (int64_t c = 0; c < n; c++) dst[c] += scratch[c];
    else
        memcpy(dst, scratch, sizeof(float) * (size_t)n);
}

void qat_hadamard_rows(float *x, int64_t rows, int64_t cols, int block) {
    if (block < 2) return;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) qat_hadamard_row(x + r * cols, cols, block);
}

#if QAT_ISA_DISPATCH
#undef qat_hadamard_row
#undef qat_hadamard_row_copy
#undef qat_hadamard_row_masked
#undef qat_hadamard_rows
void qat_hadamard_row_avx512(float *x, int64_t n, int block);
void qat_hadamard_row_copy_avx512(const float *src, float *dst, int64_t n, int block);
void qat_hadamard_row_masked_avx512(const float *src, const uint8_t *keep, float *dst, int64_t n, int block, int add,
                                    float *scratch);
void qat_hadamard_rows_avx512(float *x, int64_t rows, int64_t cols, int block);

void qat_hadamard_row(float *x, int64_t n, int block) {
    if (qat_cpu_avx512()) qat_hadamard_row_avx512(x, n, block);
    else qat_hadamard_row_generic(x, n, block);
}

void qat_hadamard_row_copy(const float *src, float *dst, int64_t n, int block) {
    if (qat_cpu_avx512()) qat_hadamard_row_copy_avx512(src, dst, n, block);
    else qat_hadamard_row_copy_generic(src, dst, n, block);
}

void qat_hadamard_row_masked(const float *src, const uint8_t *keep, float *dst, int64_t n, int block, int add,
                             float *scratch) {
    if (qat_cpu_avx512()) qat_hadamard_row_masked_avx512(src, keep, dst, n, block, add, scratch);
    else qat_hadamard_row_masked_generic(src, keep, dst, n, block, add, scratch);
}

void qat_hadamard_rows(float *x, int64_t rows, int64_t cols, int block) {
    if (qat_cpu_avx512()) qat_hadamard_rows_avx512(x, rows, cols, block);
    else qat_hadamard_rows_generic(x, rows, cols, block);
}
#endif
