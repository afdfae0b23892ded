/*
 * compress/project.c — row projections for every format, with the backward mask
 * written in the same pass.
 *
 * Precision: per-unit scales and the per-element arithmetic of the int grid run in
 * double. QuEST's s = α·RMS + 1e-8 is below float resolution for typical RMS, and
 * docs/reference-numbers.md's b=4 vector needs it (x = 0 rounds half-to-even to −Δ/2 and is then
 * *not* trusted because Δ/2 exceeds T·RMS by 1e-8/15). The loops are written
 * with plain ternaries (not fmin/fmax) so gcc vectorises them with AVX-512.
 *
 * Ties, one rule for every scalar grid: an input exactly halfway between two
 * levels goes to the level whose integer code is even (round half to even, the
 * IEEE default that hardware converters and torch.round use). The code is the
 * integer each grid's rounding produces:
 *   int     m = round(x/Δ + ½), level (m − ½)·Δ (QuEST's formula; nearbyint in the
 *           default rounding mode), so x = 0 goes to −Δ/2 as in the published
 *           vectors of docs/reference-numbers.md;
 *   ternary t = round(x/a) ∈ {−1, 0, 1}: ±a/2 goes to 0;
 *   fp4     the E2M1 magnitude code (sign apart), even = mantissa bit 0:
 *           0.25 → 0, 0.75 → 1, 1.25 → 1, 1.75 → 2, 2.5 → 2, 3.5 → 4, 5 → 4 (unit scale).
 * Sparsity is not a grid: N:M ties go to the lower index; top-k keeps every tie at T_k.
 */
#include "compress/project.h"
#include "compress/vq_search.h"

#include <math.h>
#include <string.h>

#include "compress/grid.h"
#include "compress/sparse.h"
#include "core/cpu.h"
#include "core/error.h"

/* Compiled twice in a portable build (core/cpu.h): qat_proj_row runs the AVX-512
 * copy (int_unit_fast, 512-bit loops and reductions) on CPUs that have it. */
#if QAT_ISA_RENAME
#define qat_proj_row QAT_ISA_NAME(qat_proj_row)
#endif

#if !QAT_ISA_COPY
void qat_proj_segment_stats(const qat_proj *P, const float *x, int64_t n, qat_proj_seg *seg, int parallel) {
    seg->thr = 0.0f;
    seg->rms = 0.0;
    if (P->f.sp != QAT_SP_MAGNITUDE || P->per_row_sparse) return;
    seg->thr = qat_sparse_kth_abs(x, n, qat_sparse_keep_count(P->f.sparsity, n), parallel);
    if (P->mask == QAT_MASK_RBBM) {
        double s = 0;
        for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
        seg->rms = n ? sqrt(s / (double)n) : 0.0;
    }
}
#endif

static double row_rms(const float *v, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)v[i] * v[i];
    return n ? sqrt(s / (double)n) : 0.0;
}

/* ---- value stages on one scale unit; `keep` NULL means dense ---------------- */

#define KEPT(i) (sparse ? m[i] : 1)

static inline __attribute__((always_inline)) void int_unit(float *restrict v, uint8_t *restrict m, int64_t n,
                                                           const int sparse, qat_mask_kind mk, double s,
                                                           double step, double thr, double clip) {
    const double inv = 1.0 / step;
    for (int64_t i = 0; i < n; i++) {
        double x = v[i];
        double c = x < -s ? -s : (x > s ? s : x);
        double q = (nearbyint(c * inv + 0.5) - 0.5) * step;
        int k = KEPT(i);
        /* k ∈ {0, 1} and q finite, so q·k + 0 is the select k ? q : +0 — written
         * as arithmetic because gcc will not if-convert a select next to nearbyint */
        if (sparse) q = q * (double)k + 0.0;
        v[i] = (float)q;
        if (mk == QAT_MASK_TRUST) m[i] = fabs(q - x) <= thr;
        else if (mk == QAT_MASK_CLIP) m[i] = k & (fabs(x) <= clip);
        else if (mk == QAT_MASK_KEPT) m[i] = (uint8_t)k;
    }
}

static inline __attribute__((always_inline)) void ternary_unit(float *restrict v, uint8_t *restrict m, int64_t n,
                                                               const int sparse, qat_mask_kind mk, double a,
                                                               double thr, double clip) {
    const double half = 0.5 * a;
    for (int64_t i = 0; i < n; i++) {
        double x = v[i];
        double sa = x < 0 ? -a : a;
        double q = fabs(x) > half ? sa : 0.0; /* a tie goes to code 0 (even) */
        int k = KEPT(i);
        q = k ? q : 0.0;
        q = x == x ? q : x; /* a NaN stays NaN (the comparisons above would make it 0): divergence must show */
        v[i] = (float)q;
        if (mk == QAT_MASK_TRUST) m[i] = fabs(q - x) <= thr;
        else if (mk == QAT_MASK_CLIP) m[i] = k & (fabs(x) <= clip);
        else if (mk == QAT_MASK_KEPT) m[i] = (uint8_t)k;
    }
}

static inline __attribute__((always_inline)) void fp4_unit(float *restrict v, uint8_t *restrict m, int64_t n,
                                                           const int sparse, qat_mask_kind mk, double kscale,
                                                           double thr, double clip) {
    const double inv = kscale > 0 ? 1.0 / kscale : 0.0;
    for (int64_t i = 0; i < n; i++) {
        double x = v[i];
        double a = fabs(x) * inv;
        /* nearest E2M1 magnitude: sum the level increments of every midpoint passed
         * (branch-free, so the loop vectorises). A midpoint counts as passed (>=)
         * only when the level above has the even code (1.0, 2.0, 4.0), so ties land
         * on mantissa bit 0. */
        double l = 0.5 * ((a > 0.25) + (a >= 0.75) + (a > 1.25) + (a >= 1.75)) + (double)(a > 2.5) +
                   (double)(a >= 3.5) + 2.0 * (a > 5.0);
        double q = (x < 0 ? -l : l) * kscale;
        int k = KEPT(i);
        q = k ? q : 0.0;
        q = x == x ? q : x; /* a NaN stays NaN (the comparisons above would make it 0): divergence must show */
        v[i] = (float)q;
        if (mk == QAT_MASK_TRUST) m[i] = fabs(q - x) <= thr;
        else if (mk == QAT_MASK_CLIP) m[i] = k & (fabs(x) <= clip);
        else if (mk == QAT_MASK_KEPT) m[i] = (uint8_t)k;
    }
}

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
/* The single-precision paths' pieces (int_unit_fast below, one per ISA): the 16
 * levels of an L-level grid as int_unit stores them, index j holding code
 * j + 1 − L/2 (indices past L − 1 repeat the top level), and int_unit for a chunk
 * they leave to the double path, dense, trust mask or none. */
static void int_levels(float lev[16], double step, int L) {
    for (int j = 0; j < 16; j++) {
        int code = (j < L ? j : L - 1) - L / 2 + 1;
        lev[j] = (float)(((double)code - 0.5) * step);
    }
}

static void int_unit_exact(float *v, uint8_t *m, int64_t n, qat_mask_kind mk, double s, double step, double thr) {
    if (mk == QAT_MASK_TRUST) int_unit(v, m, n, 0, QAT_MASK_TRUST, s, step, thr, 0);
    else int_unit(v, m, n, 0, QAT_MASK_NONE, s, step, thr, 0);
}
#endif

#if defined(__AVX512F__)
#include <immintrin.h>
/* The int grid of at most 16 levels, dense, trust or no mask, 16 elements at a
 * time in single precision: the same bits as int_unit, about twice as fast.
 *
 * The code m = round(x/Δ + ½) and the trust test |q − x| <= thr are first taken
 * in float, with an error bound: u = x·(1/Δ) + ½ is within (|u| + 1)·2⁻²¹ of the
 * double value, and |q − x| and thr within (|x| + |q| + thr)·2⁻²¹. A lane whose
 * u is inside that bound of a rounding boundary (a half-integer), whose trust
 * test is inside its bound of thr, or that is not finite, sends its 16-chunk to
 * int_unit itself, so every decision is the double one. The levels are the
 * double formula (m − ½)·Δ rounded to float once, as int_unit stores them, and
 * clamping the code to [1 − L/2, L/2] gives the code of the clamped input (the
 * clip ±s sits a quarter step inside the outermost rounding boundaries).
 * test_compress_formats checks the two paths bit for bit, ties included. */
#define QAT_PROJ_FAST_INT 1
static void int_unit_fast(float *restrict v, uint8_t *restrict m, int64_t n, qat_mask_kind mk, double s, double step,
                          double thr, int L) {
    float lev[16];
    int_levels(lev, step, L);
    const __m512 levels = _mm512_loadu_ps(lev);
    const __m512 inv = _mm512_set1_ps((float)(1.0 / step));
    const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f);
    const __m512 lo = _mm512_set1_ps((float)(1 - L / 2)), hi = _mm512_set1_ps((float)(L / 2));
    const __m512 off = _mm512_set1_ps((float)(L / 2 - 1));
    const __m512 ulp21 = _mm512_set1_ps(0x1p-21f), finite_max = _mm512_set1_ps(0x1p22f);
    const __m512 thr_f = _mm512_set1_ps((float)thr);
    const __m512i ones = _mm512_set1_epi32(1);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 x = _mm512_loadu_ps(v + i);
        __m512 u = _mm512_fmadd_ps(x, inv, half);
        __m512 au = _mm512_abs_ps(u);
        __m512 r = _mm512_roundscale_ps(u, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m512 dist = _mm512_sub_ps(half, _mm512_abs_ps(_mm512_sub_ps(u, r))); /* to the nearest boundary */
        __mmask16 amb = _mm512_cmp_ps_mask(dist, _mm512_mul_ps(_mm512_add_ps(au, one), ulp21), _CMP_LE_OQ) |
                        _mm512_cmp_ps_mask(au, finite_max, _CMP_NLT_UQ); /* huge, inf or NaN */
        __m512 code = _mm512_min_ps(_mm512_max_ps(r, lo), hi);
        __m512 q = _mm512_permutexvar_ps(_mm512_cvttps_epi32(_mm512_add_ps(code, off)), levels);
        __mmask16 keep = 0;
        if (mk == QAT_MASK_TRUST) {
            __m512 d = _mm512_abs_ps(_mm512_sub_ps(q, x));
            __m512 bound = _mm512_mul_ps(_mm512_add_ps(_mm512_add_ps(_mm512_abs_ps(x), _mm512_abs_ps(q)), thr_f), ulp21);
            amb |= _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(d, thr_f)), bound, _CMP_LE_OQ);
            keep = _mm512_cmp_ps_mask(d, thr_f, _CMP_LE_OQ);
        }
        if (amb) { /* the exact path decides this chunk */
            int_unit_exact(v + i, m + i, 16, mk, s, step, thr);
            continue;
        }
        _mm512_storeu_ps(v + i, q);
        if (mk == QAT_MASK_TRUST) _mm_storeu_si128((__m128i *)(m + i), _mm512_cvtepi32_epi8(_mm512_maskz_mov_epi32(keep, ones)));
    }
    if (i < n) int_unit_exact(v + i, m + i, n - i, mk, s, step, thr);
}
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
/* The same fast path at 8 lanes, for CPUs with AVX2 and FMA but no AVX-512 (a Zen 3,
 * a Haswell; the generic copy of a portable build at its x86-64-v3 baseline). Every
 * step is the AVX-512 path's, lane for lane: the same float u and its bound, the same
 * round-to-nearest-even, the same clamps and ambiguity tests, so the same chunks fall
 * back to int_unit and the bits are int_unit's. The 16 levels sit in two registers,
 * picked by the code's low 3 bits and blended on its bit 3. Without it the int grid
 * ran int_unit's double loop: 6.7% of a one-thread s4 W4A4 run on a Zen 3. */
#define QAT_PROJ_FAST_INT 1
static void int_unit_fast(float *restrict v, uint8_t *restrict m, int64_t n, qat_mask_kind mk, double s, double step,
                          double thr, int L) {
    float lev[16];
    int_levels(lev, step, L);
    const __m256 lev0 = _mm256_loadu_ps(lev), lev1 = _mm256_loadu_ps(lev + 8);
    const __m256 inv = _mm256_set1_ps((float)(1.0 / step));
    const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
    const __m256 lo = _mm256_set1_ps((float)(1 - L / 2)), hi = _mm256_set1_ps((float)(L / 2));
    const __m256 off = _mm256_set1_ps((float)(L / 2 - 1));
    const __m256 ulp21 = _mm256_set1_ps(0x1p-21f), finite_max = _mm256_set1_ps(0x1p22f);
    const __m256 thr_f = _mm256_set1_ps((float)thr);
    const __m256 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(v + i);
        __m256 u = _mm256_fmadd_ps(x, inv, half);
        __m256 au = _mm256_and_ps(u, absm);
        __m256 r = _mm256_round_ps(u, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m256 dist = _mm256_sub_ps(half, _mm256_and_ps(_mm256_sub_ps(u, r), absm)); /* to the nearest boundary */
        __m256 amb = _mm256_or_ps(_mm256_cmp_ps(dist, _mm256_mul_ps(_mm256_add_ps(au, one), ulp21), _CMP_LE_OQ),
                                  _mm256_cmp_ps(au, finite_max, _CMP_NLT_UQ)); /* huge, inf or NaN */
        __m256 code = _mm256_min_ps(_mm256_max_ps(r, lo), hi);
        __m256i idx = _mm256_cvttps_epi32(_mm256_add_ps(code, off));
        __m256 q = _mm256_blendv_ps(_mm256_permutevar8x32_ps(lev0, idx), _mm256_permutevar8x32_ps(lev1, idx),
                                    _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
        __m256 keep = _mm256_setzero_ps();
        if (mk == QAT_MASK_TRUST) {
            __m256 d = _mm256_and_ps(_mm256_sub_ps(q, x), absm);
            __m256 bound = _mm256_mul_ps(
                _mm256_add_ps(_mm256_add_ps(_mm256_and_ps(x, absm), _mm256_and_ps(q, absm)), thr_f), ulp21);
            amb = _mm256_or_ps(amb, _mm256_cmp_ps(_mm256_and_ps(_mm256_sub_ps(d, thr_f), absm), bound, _CMP_LE_OQ));
            keep = _mm256_cmp_ps(d, thr_f, _CMP_LE_OQ);
        }
        if (_mm256_movemask_ps(amb)) { /* the exact path decides this chunk */
            int_unit_exact(v + i, m + i, 8, mk, s, step, thr);
            continue;
        }
        _mm256_storeu_ps(v + i, q);
        if (mk == QAT_MASK_TRUST) { /* all-ones lanes to bytes of 1: two saturating packs, then the halves joined */
            __m256i k = _mm256_and_si256(_mm256_castps_si256(keep), _mm256_set1_epi32(1));
            k = _mm256_packus_epi32(k, k);
            k = _mm256_packus_epi16(k, k);
            __m128i b = _mm_unpacklo_epi32(_mm256_castsi256_si128(k), _mm256_extracti128_si256(k, 1));
            _mm_storel_epi64((__m128i *)(m + i), b);
        }
    }
    if (i < n) int_unit_exact(v + i, m + i, n - i, mk, s, step, thr);
}
#endif

/* Dispatch with constant mask kinds so each combination gets its own vectorised loop. */
#define DISPATCH(call_dense, call_sparse)                                                   \
    do {                                                                                    \
        if (keep) {                                                                         \
            switch (mk) {                                                                   \
            case QAT_MASK_TRUST: { const qat_mask_kind K_ = QAT_MASK_TRUST; call_sparse; } break; \
            case QAT_MASK_CLIP: { const qat_mask_kind K_ = QAT_MASK_CLIP; call_sparse; } break;   \
            case QAT_MASK_KEPT: { const qat_mask_kind K_ = QAT_MASK_KEPT; call_sparse; } break;   \
            default: { const qat_mask_kind K_ = QAT_MASK_NONE; call_sparse; } break;              \
            }                                                                               \
        } else {                                                                            \
            switch (mk) {                                                                   \
            case QAT_MASK_TRUST: { const qat_mask_kind K_ = QAT_MASK_TRUST; call_dense; } break;  \
            case QAT_MASK_CLIP: { const qat_mask_kind K_ = QAT_MASK_CLIP; call_dense; } break;    \
            default: { const qat_mask_kind K_ = QAT_MASK_NONE; call_dense; } break;               \
            }                                                                               \
        }                                                                                   \
    } while (0)

/* Σx², max|x| (amax_out NULL: not wanted) and count over a unit's survivors: a
 * simd reduction (a fixed lane order for a build, so runs stay reproducible),
 * instantiated with `sparse` constant and no branch in the loop body. */
static inline __attribute__((always_inline)) void unit_stats(const float *restrict v, const uint8_t *restrict m,
                                                             int64_t n, const int sparse, double *ss_out,
                                                             double *amax_out, int64_t *cnt_out) {
    double ss = 0, amax = 0;
    int64_t cnt = 0;
    if (!amax_out) { /* the scale from the RMS: Σx² and the count only (same lanes, same Σx² bits) */
#pragma omp simd reduction(+ : ss, cnt)
        for (int64_t i = 0; i < n; i++) {
            int k = KEPT(i);
            double x = (double)v[i] * (double)k;
            ss += x * x;
            cnt += k;
        }
        *ss_out = ss, *cnt_out = cnt;
        return;
    }
#pragma omp simd reduction(+ : ss, cnt) reduction(max : amax)
    for (int64_t i = 0; i < n; i++) {
        int k = KEPT(i);
        double x = (double)v[i] * (double)k; /* k ∈ {0, 1}: the select as arithmetic, which gcc vectorizes */
        ss += x * x;
        double a = fabs(x);
        amax = a > amax ? a : amax;
        cnt += k;
    }
    *ss_out = ss, *amax_out = amax, *cnt_out = cnt;
}

static void value_unit(const qat_proj *P, float *v, uint8_t *m, int64_t n, int sparse) {
    const int keep = sparse; /* m holds the keep flags on entry when sparse */
    /* scale statistics over the unit's survivors (all elements when dense) */
    double ss = 0, amax = 0;
    int64_t cnt = 0;
    double *want_amax = P->absmax ? &amax : NULL; /* max|x| only for an absmax scale */
    if (sparse) unit_stats(v, m, n, 1, &ss, want_amax, &cnt);
    else unit_stats(v, m, n, 0, &ss, want_amax, &cnt);
    double rms = cnt ? sqrt(ss / (double)cnt) : 0.0;
    if (P->fixed_rms > 0) rms = P->fixed_rms;
    qat_mask_kind mk = P->mask;
    if (mk == QAT_MASK_RBBM) mk = QAT_MASK_NONE; /* rbbm is sparse-only; rejected upstream */
    const double c = P->mask_t > 0 ? P->mask_t : 1.0;
    switch (P->f.val) {
    case QAT_VAL_INT: {
        const int L = 1 << P->f.bits;
        double s0 = P->absmax ? amax : P->alpha * rms;
        double s = s0 + 1e-8; /* QuEST: keeps the step positive for an all-zero unit */
        double step = 2.0 * s / (L - 1);
        double thr = (P->mask == QAT_MASK_TRUST && P->mask_t > 0) ? P->mask_t * rms : s0 / (L - 1);
        double clip = c * s;
#ifdef QAT_PROJ_FAST_INT
        /* a non-finite scale (a NaN anywhere in the unit) takes the double path whole: the
         * fast path's fallback chunks are int_unit compiled at its vector width, where a
         * NaN's sign could come out otherwise (only the sign: the unit is NaN either way) */
        if (!keep && !P->reference && L <= 16 && isfinite(step) && (mk == QAT_MASK_TRUST || mk == QAT_MASK_NONE)) {
            int_unit_fast(v, m, n, mk, s, step, thr, L);
            break;
        }
#endif
        DISPATCH(int_unit(v, m, n, 0, K_, s, step, thr, clip), int_unit(v, m, n, 1, K_, s, step, thr, clip));
        break;
    }
    case QAT_VAL_TERNARY: {
        double a = P->absmax ? amax : P->alpha * rms;
        double thr = (P->mask == QAT_MASK_TRUST && P->mask_t > 0) ? P->mask_t * rms : 0.5 * a;
        double clip = c * a;
        DISPATCH(ternary_unit(v, m, n, 0, K_, a, thr, clip), ternary_unit(v, m, n, 1, K_, a, thr, clip));
        break;
    }
    case QAT_VAL_FP4: {
        double k = P->absmax ? amax / 6.0 : P->alpha * rms;
        /* default trust: half the largest level gap, (6 − 4)·k / 2 = k (see grid.h
         * for the smaller value QuEST's code actually used) */
        double thr = (P->mask == QAT_MASK_TRUST && P->mask_t > 0) ? P->mask_t * rms : k;
        double clip = c * 6.0 * k;
        DISPATCH(fp4_unit(v, m, n, 0, K_, k, thr, clip), fp4_unit(v, m, n, 1, K_, k, thr, clip));
        break;
    }
    case QAT_VAL_VQ: {
        const qat_vq_codebook *cb = P->cb;
        const int d = cb->d;
        const double R = (P->mask_t > 0 ? P->mask_t : cb->radius) * rms;
        const float inv = rms > 0 ? (float)(1.0 / rms) : 0.0f;
        for (int64_t i = 0; i + d <= n; i += d) {
            float w[8];
            double nrm = 0;
            for (int t = 0; t < d; t++) {
                w[t] = v[i + t] * inv;
                nrm += (double)v[i + t] * v[i + t];
            }
            int j = qat_vq_nearest(cb, w);
            uint8_t pass = mk == QAT_MASK_TRUST ? sqrt(nrm) <= R : 1;
            for (int t = 0; t < d; t++) {
                v[i + t] = (float)(rms * cb->cw[(int64_t)j * d + t]);
                if (mk != QAT_MASK_NONE) m[i + t] = pass;
            }
        }
        break;
    }
    default: /* fp32 never gets here; block formats project through their row (qat_proj_row_at) */
        QAT_ASSERT(0);
    }
}

void qat_proj_row(const qat_proj *P, float *v, int64_t n, const qat_proj_seg *seg, uint8_t *mask) {
    const qat_fmt *f = &P->f;
    const uint8_t *keep = NULL;
    float thr_k = 0.0f;
    double seg_rms = 0.0;
    if (f->sp == QAT_SP_MAGNITUDE) {
        if (P->per_row_sparse) {
            thr_k = qat_sparse_kth_abs(v, n, qat_sparse_keep_count(f->sparsity, n), 0);
            if (P->mask == QAT_MASK_RBBM) seg_rms = row_rms(v, n);
        } else {
            thr_k = seg->thr;
            seg_rms = seg->rms;
        }
        for (int64_t i = 0; i < n; i++) mask[i] = (uint8_t)qat_sparse_keeps(fabsf(v[i]), thr_k);
        keep = mask;
    } else if (f->sp == QAT_SP_NM) {
        qat_sparse_nm_row(v, mask, n, f->nm_n, f->nm_m);
        keep = mask;
    }

    if (f->val == QAT_VAL_NONE) {
        if (!keep) return; /* fp32 */
        if (P->mask == QAT_MASK_RBBM) {
            double tp = seg_rms * P->rbbm_z;
            double lo = fmin(tp, (double)thr_k), hi = fmax(tp, (double)thr_k);
            for (int64_t i = 0; i < n; i++) {
                double a = fabsf(v[i]);
                v[i] = mask[i] ? v[i] : 0.0f;
                mask[i] = (a < lo) | (a > hi);
            }
        } else {
            /* the mask already holds `kept`, which is the KEPT rule; other rules ignore it */
            for (int64_t i = 0; i < n; i++) v[i] = mask[i] ? v[i] : 0.0f;
        }
        return;
    }

    /* the value stage reads keep[i] from mask[i] and overwrites it with the backward mask */
    int64_t g = P->group > 0 ? P->group : n;
    for (int64_t u = 0; u < n; u += g) value_unit(P, v + u, mask + u, g < n - u ? g : n - u, keep != NULL);
}

#if QAT_ISA_DISPATCH
#undef qat_proj_row
void qat_proj_row_avx512(const qat_proj *P, float *v, int64_t n, const qat_proj_seg *seg, uint8_t *mask);

void qat_proj_row(const qat_proj *P, float *v, int64_t n, const qat_proj_seg *seg, uint8_t *mask) {
    if (qat_cpu_avx512()) qat_proj_row_avx512(P, v, n, seg, mask);
    else qat_proj_row_generic(P, v, n, seg, mask);
}
#endif
