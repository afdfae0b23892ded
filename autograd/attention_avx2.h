/*
 * autograd/attention_avx2.h — 8-lane (AVX2 + FMA) micro-kernels of the f32 causal
 * attention, included by autograd/ops_attention.c only, in place of its AVX-512
 * section when the code is compiled for AVX2 and FMA without AVX-512: a native build
 * on an AVX2 CPU, and the generic copy of a portable build (baseline x86-64-v3).
 *
 * Without them those CPUs ran attention on the plain C loops, which GCC vectorizes
 * poorly (runtime trip counts, scalar tails, one strided load per transposed
 * element): attention was 28% of a d256 step on the AVX2 path. The kernels here
 * keep the AVX-512 section's names, arguments and tiling, so the forward and
 * backward loops call either set unchanged:
 *   k_scores            R query rows (groups of RB) × 16 keys of scores in registers (2 vectors)
 *   k_pv                RB rows of Σ_j p_j x_j, 16 columns at a time
 *   k_dkdv              dv_j += Σ_r p_rj do_r and dk_j += α Σ_r ds_rj q_r
 *   softmax_row_exact   the forward's softmax of one row, returns its log-sum-exp
 *   softmax_rows_exact  the same over a block's rows (the forward calls this one)
 *   softmax_back_row    the backward's p_j and ds_j of one row
 *   transpose8          8×8 transpose (k and v loaded transposed)
 *   row_dots8           D_t = do_t·o_t for 8 rows at once
 * Head dims that are multiples of 8 use the transposes and row_dots8 (k_scores and
 * the softmax rows take any hd); k_pv and k_dkdv are called by ops_attention.c for
 * hd 16 and 32, where NV = hd/16 as in the AVX-512 section.
 *
 * Only the AVX-512 path is bit-matched to anything (ops_attention.c): here the
 * products use FMA and the softmax sums add 8 lanes, so an AVX2 run has other last
 * bits, like another thread count; tests/test_isa_dispatch.c holds them to the
 * AVX-512 copy within float rounding. AVX2 has 16 vector registers (AVX-512: 32),
 * so each kernel keeps at most 8 accumulators live and walks wider heads in
 * 16-column passes.
 */
#ifndef QAT_AUTOGRAD_ATTENTION_AVX2_H
#define QAT_AUTOGRAD_ATTENTION_AVX2_H

#include <immintrin.h>
#include <math.h>
#include <stdint.h>

#define AI static inline __attribute__((always_inline))

/* S[r][j0..j0+16) = α q_r · kt[:, j0..j0+16) for the block's RB rows, j0 < n:
 * RB×2 accumulators, a key vector pair loaded once per d for all RB rows. Writes
 * up to n rounded up to 16, within the JB-padded row (kt is zero there). */
AI void k_scores4(float *S, int64_t ldS, const float *const q[RB], const float *kt, int64_t n, int64_t hd,
                 int64_t ldk, float alpha) {
    __m256 va = _mm256_set1_ps(alpha);
    for (int64_t j0 = 0; j0 < n; j0 += 16) {
        __m256 a[RB][2];
        for (int r = 0; r < RB; r++) a[r][0] = a[r][1] = _mm256_setzero_ps();
        for (int64_t d = 0; d < hd; d++) {
            __m256 k0 = _mm256_loadu_ps(kt + d * ldk + j0), k1 = _mm256_loadu_ps(kt + d * ldk + j0 + 8);
            for (int r = 0; r < RB; r++) {
                __m256 qd = _mm256_broadcast_ss(q[r] + d);
                a[r][0] = _mm256_fmadd_ps(qd, k0, a[r][0]);
                a[r][1] = _mm256_fmadd_ps(qd, k1, a[r][1]);
            }
        }
        for (int r = 0; r < RB; r++) {
            _mm256_storeu_ps(S + r * ldS + j0, _mm256_mul_ps(va, a[r][0]));
            _mm256_storeu_ps(S + r * ldS + j0 + 8, _mm256_mul_ps(va, a[r][1]));
        }
    }
}

/* out[r] (+)= scale Σ_{j<n} P[r][j] x_j for x (n, NV·16) row-major; out[r] NULL:
 * a padding row, not stored. One 16-column pass at a time: RB×2 accumulators
 * (RB×4 for hd 32 would not fit in 16 registers next to the loads). */
AI void k_pv4(float *const out[RB], const float *P, int64_t ldP, const float *x, int64_t n, const int NV, int accum,
             float scale) {
    const int64_t ldx = 16 * NV;
    __m256 sc = _mm256_set1_ps(scale);
    for (int c = 0; c < NV; c++) {
        const float *xc = x + 16 * c;
        __m256 a[RB][2];
        for (int r = 0; r < RB; r++) a[r][0] = a[r][1] = _mm256_setzero_ps();
        for (int64_t j = 0; j < n; j++) {
            __m256 x0 = _mm256_loadu_ps(xc + j * ldx), x1 = _mm256_loadu_ps(xc + j * ldx + 8);
            for (int r = 0; r < RB; r++) {
                __m256 p = _mm256_broadcast_ss(P + r * ldP + j);
                a[r][0] = _mm256_fmadd_ps(p, x0, a[r][0]);
                a[r][1] = _mm256_fmadd_ps(p, x1, a[r][1]);
            }
        }
        for (int r = 0; r < RB; r++) {
            if (!out[r]) continue;
            float *o = out[r] + 16 * c;
            __m256 v0 = _mm256_mul_ps(sc, a[r][0]), v1 = _mm256_mul_ps(sc, a[r][1]);
            if (accum) v0 = _mm256_add_ps(v0, _mm256_loadu_ps(o)), v1 = _mm256_add_ps(v1, _mm256_loadu_ps(o + 8));
            _mm256_storeu_ps(o, v0);
            _mm256_storeu_ps(o + 8, v1);
        }
    }
}

/* acc_j += Σ_r W[r][j] y_r over j < n, 16 columns (c16) of rows of NV·16: the RB
 * rows' y stay in 8 registers and each acc_j vector pair is loaded and stored
 * once per pass. */
AI void k_rank_rb(float *acc, const float *W, int64_t ldW, const __m256 y[RB][2], int64_t n, const int NV, int c16) {
    const int64_t lda = 16 * NV;
    float *ac = acc + 16 * c16;
    for (int64_t j = 0; j < n; j++) {
        __m256 a0 = _mm256_loadu_ps(ac + j * lda), a1 = _mm256_loadu_ps(ac + j * lda + 8);
        for (int r = 0; r < RB; r++) {
            __m256 w = _mm256_broadcast_ss(W + r * ldW + j);
            a0 = _mm256_fmadd_ps(w, y[r][0], a0);
            a1 = _mm256_fmadd_ps(w, y[r][1], a1);
        }
        _mm256_storeu_ps(ac + j * lda, a0);
        _mm256_storeu_ps(ac + j * lda + 8, a1);
    }
}

/* dv_j += Σ_r P[r][j] go_r and dk_j += α Σ_r dS[r][j] q_r for j < n. The AVX-512
 * kernel updates both in one sweep over j; here that would need 16 registers of
 * go and αq alone per 16 columns, so dv and dk go in separate sweeps (each FMA
 * then costs under one load). */
AI void k_dkdv4(float *dv, float *dk, const float *P, const float *dS, int64_t ldP, const float *const go[RB],
               const float *const q[RB], int64_t n, const int NV, float alpha) {
    __m256 va = _mm256_set1_ps(alpha);
    for (int c = 0; c < NV; c++) {
        __m256 y[RB][2];
        for (int r = 0; r < RB; r++)
            for (int h = 0; h < 2; h++) y[r][h] = _mm256_loadu_ps(go[r] + 16 * c + 8 * h);
        k_rank_rb(dv, P, ldP, y, n, NV, c);
        for (int r = 0; r < RB; r++)
            for (int h = 0; h < 2; h++) y[r][h] = _mm256_mul_ps(va, _mm256_loadu_ps(q[r] + 16 * c + 8 * h));
        k_rank_rb(dk, dS, ldP, y, n, NV, c);
    }
}

/* The callers' block heights (RB, or FRB32 where the AVX-512 kernels take 8 rows)
 * in groups of RB rows: R is a multiple of RB, and rows are visited in ascending
 * order, so every dK/dV sum still adds its rows in order. */
AI void k_scores(float *S, int64_t ldS, const float *const *q, const float *kt, int64_t n, int64_t hd, int64_t ldk,
                 float alpha, const int R) {
    for (int r0 = 0; r0 < R; r0 += RB) k_scores4(S + r0 * ldS, ldS, q + r0, kt, n, hd, ldk, alpha);
}

AI void k_pv(float *const *out, const float *P, int64_t ldP, const float *x, int64_t n, const int NV, int accum,
             float scale, const int R) {
    for (int r0 = 0; r0 < R; r0 += RB) k_pv4(out + r0, P + r0 * ldP, ldP, x, n, NV, accum, scale);
}

AI void k_dkdv(float *dv, float *dk, const float *P, const float *dS, int64_t ldP, const float *const *go,
               const float *const *q, int64_t n, const int NV, float alpha, const int R) {
    for (int r0 = 0; r0 < R; r0 += RB) k_dkdv4(dv, dk, P + r0 * ldP, dS + r0 * ldP, ldP, go + r0, q + r0, n, NV, alpha);
}

/* e^x on 8 lanes for x <= 0 (scores minus the row maximum or the log-sum-exp):
 * exp_neg's method (2^n · e^f, n = round(x·log2 e), degree-7 Taylor for e^f,
 * |f| <= ln2/2) and its clamps, so NaN stays NaN and x < −87 gives e^−87
 * (~1.6e−38, nothing next to a row's largest term, 1). f = x − n·ln2 takes two
 * FMA steps (ln2 split into a head exact in float and a tail) instead of
 * exp_neg's (t − n)·ln2, which loses the rounding of t: largest relative error
 * 7.8e−8 over [−87, 0] against exp_neg's 1.2e−6 (checked in double, 8M points). */
AI __m256 exp_neg8(__m256 x) {
    x = _mm256_max_ps(_mm256_set1_ps(-87.0f), x); /* max returns x when x is NaN */
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 f = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
    f = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187e-06f), f);
    __m256 p = _mm256_set1_ps(1.9841270e-4f);
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.3888889e-3f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(8.3333338e-3f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(4.1666668e-2f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.6666667e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
    n = _mm256_max_ps(n, _mm256_set1_ps(-126.0f)); /* NaN → −126: the conversion below stays in range */
    n = _mm256_min_ps(n, _mm256_set1_ps(127.0f));
    __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

/* All-ones in the first m lanes (0 <= m <= 8): the masked tail of a row, loaded
 * and stored with maskload/maskstore (masked lanes read as 0, never touched). */
AI __m256i lanes_below8(int64_t m) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)m), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

AI float hmax8(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}

AI float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

/* The forward's softmax of one score row s[0, ni), ni >= 1, in place: returns the
 * row's log-sum-exp and leaves e^{s_j − max} / Σ in s. Whole vectors and one
 * masked tail (the compiler's loop left up to 7 elements per row to scalar code).
 * Named after the AVX-512 kernel it stands in for; no bits are matched here. */
AI float softmax_row_exact(float *s, int64_t ni) {
    int64_t nv = ni & ~(int64_t)7;
    __m256i tail = lanes_below8(ni - nv);
    __m256 tm = _mm256_castsi256_ps(tail);
    __m256 vm = _mm256_set1_ps(s[0]);
    for (int64_t j = 0; j < nv; j += 8) vm = _mm256_max_ps(_mm256_loadu_ps(s + j), vm);
    if (ni > nv) vm = _mm256_blendv_ps(vm, _mm256_max_ps(_mm256_maskload_ps(s + nv, tail), vm), tm);
    float mx = hmax8(vm);
    __m256 m = _mm256_set1_ps(mx), acc = _mm256_setzero_ps();
    for (int64_t j = 0; j < nv; j += 8) {
        __m256 e = exp_neg8(_mm256_sub_ps(_mm256_loadu_ps(s + j), m));
        _mm256_storeu_ps(s + j, e);
        acc = _mm256_add_ps(acc, e);
    }
    if (ni > nv) {
        __m256 e = _mm256_and_ps(exp_neg8(_mm256_sub_ps(_mm256_maskload_ps(s + nv, tail), m)), tm);
        _mm256_maskstore_ps(s + nv, tail, e);
        acc = _mm256_add_ps(acc, e);
    }
    float sum = hsum8(acc);
    __m256 vi = _mm256_set1_ps(1.0f / sum);
    for (int64_t j = 0; j < nv; j += 8) _mm256_storeu_ps(s + j, _mm256_mul_ps(_mm256_loadu_ps(s + j), vi));
    if (ni > nv) _mm256_maskstore_ps(s + nv, tail, _mm256_mul_ps(_mm256_maskload_ps(s + nv, tail), vi));
    return mx + logf(sum);
}

/* softmax_row_exact on the rb rows of a block, row r of S (stride ldS) over keys
 * [0, i0 + r]; log-sum-exps to lse[r] (the AVX-512 kernel's interface; here the
 * lane sums are a short tree, so row by row loses nothing). */
AI void softmax_rows_exact(float *S, int64_t ldS, int64_t i0, int rb, float *lse) {
    for (int r = 0; r < rb; r++) lse[r] = softmax_row_exact(S + r * ldS, i0 + r + 1);
}

/* The backward's p_j = e^{s_j − L} and ds_j = p_j (dp_j − D) over j < ni, in
 * place in pr and dr: whole vectors and a masked tail. */
AI void softmax_back_row(float *pr, float *dr, int64_t ni, float li, float D) {
    __m256 l = _mm256_set1_ps(li), vd = _mm256_set1_ps(D);
    int64_t j = 0;
    for (; j + 8 <= ni; j += 8) {
        __m256 p = exp_neg8(_mm256_sub_ps(_mm256_loadu_ps(pr + j), l));
        _mm256_storeu_ps(pr + j, p);
        _mm256_storeu_ps(dr + j, _mm256_mul_ps(p, _mm256_sub_ps(_mm256_loadu_ps(dr + j), vd)));
    }
    if (j < ni) {
        __m256i k = lanes_below8(ni - j);
        __m256 p = exp_neg8(_mm256_sub_ps(_mm256_maskload_ps(pr + j, k), l));
        _mm256_maskstore_ps(pr + j, k, p);
        _mm256_maskstore_ps(dr + j, k, _mm256_mul_ps(p, _mm256_sub_ps(_mm256_maskload_ps(dr + j, k), vd)));
    }
}

/* dst (8 rows of stride ldd) = the transpose of the 8×8 block whose row t is
 * src + t·lds: pairs of rows interleaved, then pairs of pairs, then 128-bit
 * halves swapped — 24 shuffles for 64 elements, where the plain copy made one
 * strided load and store per element. */
AI void transpose8(float *dst, int64_t ldd, const float *src, int64_t lds) {
    __m256 r[8], t[8];
    for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(src + i * lds);
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);     /* a0 b0 a1 b1 | a4 b4 a5 b5 */
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]); /* a2 b2 a3 b3 | a6 b6 a7 b7 */
    }
    for (int i = 0; i < 8; i += 4) {
        r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);     /* column 0 | 4 of four rows */
        r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee); /* 1 | 5 */
        r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
    }
    for (int c = 0; c < 4; c++) {
        _mm256_storeu_ps(dst + c * ldd, _mm256_permute2f128_ps(r[c], r[c + 4], 0x20));
        _mm256_storeu_ps(dst + (c + 4) * ldd, _mm256_permute2f128_ps(r[c], r[c + 4], 0x31));
    }
}

/* D[t] = Σ_d g_t[d] o_t[d] for the rows of T in whole groups of 8 (hd a multiple
 * of 8; otherwise none): each row's products summed in 8 lanes, then the 8 rows'
 * lanes folded by horizontal adds into one vector, row t in lane t. Returns the
 * number of rows done; the caller finishes the rest. */
AI int64_t row_dots8(float *D, const float *g, const float *o, int64_t ld, int64_t T, int64_t hd) {
    if (hd % 8) return 0;
    int64_t t0 = 0;
    for (; t0 + 8 <= T; t0 += 8) {
        __m256 v[8];
        for (int r = 0; r < 8; r++) {
            const float *gr = g + (t0 + r) * ld, *orow = o + (t0 + r) * ld;
            __m256 a = _mm256_mul_ps(_mm256_loadu_ps(gr), _mm256_loadu_ps(orow));
            for (int64_t d = 8; d < hd; d += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(gr + d), _mm256_loadu_ps(orow + d), a);
            v[r] = a;
        }
        /* hadd pairs adjacent lanes within each 128-bit half: after two rounds
         * lane r of the low half (and of the high half) holds half of row r's sum */
        __m256 q0 = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
        __m256 q1 = _mm256_hadd_ps(_mm256_hadd_ps(v[4], v[5]), _mm256_hadd_ps(v[6], v[7]));
        __m256 s = _mm256_add_ps(_mm256_permute2f128_ps(q0, q1, 0x20), _mm256_permute2f128_ps(q0, q1, 0x31));
        _mm256_storeu_ps(D + t0, s);
    }
    return t0;
}

#endif
