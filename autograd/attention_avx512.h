/*
 * autograd/attention_avx512.h — 16-lane (AVX-512) micro-kernels of the f32 causal
 * attention, included by autograd/ops_attention.c only, when the code is compiled
 * with AVX-512: a native build on an AVX-512 CPU, and the AVX-512 copy of a portable
 * build (core/cpu.h). attention_avx2.h holds 8-lane copies under the same names and
 * arguments, so ops_attention.c's forward and backward loops call either set:
 *   k_scores            R query rows (groups of RB) × 32 keys of scores in registers
 *   k_pv                RB rows of Σ_j p_j x_j
 *   k_dkdv              dv_j += Σ_r p_rj do_r and dk_j += α Σ_r ds_rj q_r
 *   exp_neg16_exact     exp_neg (ops_attention.c) on 16 lanes, with its bits
 *   softmax_row_exact   the forward's softmax of one row, returns its log-sum-exp
 *   softmax_rows_exact  the same over a block's rows (the forward calls this one)
 *   softmax_back_row    the backward's p_j and ds_j of one row
 *   transpose16         16×16 transpose (k and v loaded transposed, row_dots)
 *
 * For head dims that are multiples of 16 (qat's are 16 and 32): accumulators in
 * registers, explicit FMAs (ISO C mode does not contract a*b+c on its own);
 * NV = hd/16 is a constant after inlining. This is the path the f32 attention's
 * bits are defined by: the softmax adds its sums in the order of the plain loop
 * and its exponentials have the scalar exp_neg's bits.
 *
 * Needs RB, JB, FRB32 and exp_neg from ops_attention.c, defined before the include.
 */
#ifndef QAT_AUTOGRAD_ATTENTION_AVX512_H
#define QAT_AUTOGRAD_ATTENTION_AVX512_H

#include <immintrin.h>
#include <stdint.h>

#define AI static inline __attribute__((always_inline))

/* S[r][j0..j0+32) = α q_r · kt[:, j0..j0+32) for the block's RB rows */
AI void k_scores(float *S, int64_t ldS, const float *const *q, const float *kt, int64_t n, int64_t hd,
                 int64_t ldk, float alpha, const int R) {
    __m512 va = _mm512_set1_ps(alpha);
    for (int64_t j0 = 0; j0 < n; j0 += 32) {
        __m512 a[FRB32][2];
        for (int r = 0; r < R; r++) a[r][0] = a[r][1] = _mm512_setzero_ps();
        for (int64_t d = 0; d < hd; d++) {
            __m512 k0 = _mm512_loadu_ps(kt + d * ldk + j0), k1 = _mm512_loadu_ps(kt + d * ldk + j0 + 16);
            for (int r = 0; r < R; r++) {
                __m512 qd = _mm512_set1_ps(q[r][d]);
                a[r][0] = _mm512_fmadd_ps(qd, k0, a[r][0]);
                a[r][1] = _mm512_fmadd_ps(qd, k1, a[r][1]);
            }
        }
        for (int r = 0; r < R; r++) {
            _mm512_storeu_ps(S + r * ldS + j0, _mm512_mul_ps(va, a[r][0]));
            _mm512_storeu_ps(S + r * ldS + j0 + 16, _mm512_mul_ps(va, a[r][1]));
        }
    }
}

/* out[r] = Σ_{j<n} P[r][j] x_j for x (n, NV·16) row-major, R rows */
AI void k_pv(float *const *out, const float *P, int64_t ldP, const float *x, int64_t n, const int NV, int accum,
             float scale, const int R) {
    __m512 a[FRB32][2];
    for (int r = 0; r < R; r++) a[r][0] = a[r][1] = _mm512_setzero_ps();
    for (int64_t j = 0; j < n; j++) {
        __m512 x0 = _mm512_loadu_ps(x + j * NV * 16), x1 = NV > 1 ? _mm512_loadu_ps(x + j * NV * 16 + 16) : x0;
        for (int r = 0; r < R; r++) {
            __m512 p = _mm512_set1_ps(P[r * ldP + j]);
            a[r][0] = _mm512_fmadd_ps(p, x0, a[r][0]);
            if (NV > 1) a[r][1] = _mm512_fmadd_ps(p, x1, a[r][1]);
        }
    }
    __m512 sc = _mm512_set1_ps(scale);
    for (int r = 0; r < R; r++) {
        if (!out[r]) continue;
        for (int c = 0; c < NV; c++) {
            __m512 v = _mm512_mul_ps(sc, a[r][c]);
            if (accum) v = _mm512_add_ps(v, _mm512_loadu_ps(out[r] + 16 * c));
            _mm512_storeu_ps(out[r] + 16 * c, v);
        }
    }
}

/* dv_j += Σ_r P[r][j] go_r and dk_j += α Σ_r dS[r][j] q_r for j < n */
AI void k_dkdv(float *dv, float *dk, const float *P, const float *dS, int64_t ldP, const float *const *go,
               const float *const *q, int64_t n, const int NV, float alpha, const int R) {
    __m512 g[FRB32][2], qq[FRB32][2];
    __m512 va = _mm512_set1_ps(alpha);
    for (int r = 0; r < R; r++)
        for (int c = 0; c < NV; c++) {
            g[r][c] = _mm512_loadu_ps(go[r] + 16 * c);
            qq[r][c] = _mm512_mul_ps(va, _mm512_loadu_ps(q[r] + 16 * c));
        }
    int64_t j = 0;
    if (NV == 1) /* two keys at once: each key's sums are chains of R dependent FMAs (rows in
                  * order), and at hd 16 one key has only two, so two keys fill the FMA
                  * latency that one left idle; each key's order, so its bits, unchanged */
        for (; j + 2 <= n; j += 2) {
            __m512 v0 = _mm512_loadu_ps(dv + j * 16), v1 = _mm512_loadu_ps(dv + j * 16 + 16);
            __m512 k0 = _mm512_loadu_ps(dk + j * 16), k1 = _mm512_loadu_ps(dk + j * 16 + 16);
            for (int r = 0; r < R; r++) {
                v0 = _mm512_fmadd_ps(_mm512_set1_ps(P[r * ldP + j]), g[r][0], v0);
                v1 = _mm512_fmadd_ps(_mm512_set1_ps(P[r * ldP + j + 1]), g[r][0], v1);
                k0 = _mm512_fmadd_ps(_mm512_set1_ps(dS[r * ldP + j]), qq[r][0], k0);
                k1 = _mm512_fmadd_ps(_mm512_set1_ps(dS[r * ldP + j + 1]), qq[r][0], k1);
            }
            _mm512_storeu_ps(dv + j * 16, v0);
            _mm512_storeu_ps(dv + j * 16 + 16, v1);
            _mm512_storeu_ps(dk + j * 16, k0);
            _mm512_storeu_ps(dk + j * 16 + 16, k1);
        }
    for (; j < n; j++) {
        __m512 v[2], k[2];
        for (int c = 0; c < NV; c++) {
            v[c] = _mm512_loadu_ps(dv + j * NV * 16 + 16 * c);
            k[c] = _mm512_loadu_ps(dk + j * NV * 16 + 16 * c);
        }
        for (int r = 0; r < R; r++) {
            __m512 p = _mm512_set1_ps(P[r * ldP + j]), s = _mm512_set1_ps(dS[r * ldP + j]);
            for (int c = 0; c < NV; c++) {
                v[c] = _mm512_fmadd_ps(p, g[r][c], v[c]);
                k[c] = _mm512_fmadd_ps(s, qq[r][c], k[c]);
            }
        }
        for (int c = 0; c < NV; c++) {
            _mm512_storeu_ps(dv + j * NV * 16 + 16 * c, v[c]);
            _mm512_storeu_ps(dk + j * NV * 16 + 16 * c, k[c]);
        }
    }
}

/* exp_neg on 16 lanes with exp_neg's operations in exp_neg's order (separate
 * multiplies and adds, no FMA; the same clamps, NaN included), so each lane has
 * exp_neg's bits. The compiler's own vectorization of exp_neg left the last
 * ni mod 16 elements of every row to a scalar loop, which took longer than the
 * vector part at T = 128 (a row averages 4 vectors and 7.5 leftover elements). */
AI __m512 exp_neg16_exact(__m512 x) {
    x = _mm512_max_ps(_mm512_set1_ps(-87.0f), x); /* -87 > x ? -87 : x, as exp_neg (NaN stays) */
    __m512 t = _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f));
    __m512 n = _mm512_sub_ps(_mm512_add_ps(t, _mm512_set1_ps(12582912.0f)), _mm512_set1_ps(12582912.0f));
    __m512 f = _mm512_mul_ps(_mm512_sub_ps(t, n), _mm512_set1_ps(0.693147180559945309f));
    __m512 p = _mm512_mul_ps(f, _mm512_set1_ps(1.9841270e-4f));
    p = _mm512_mul_ps(f, _mm512_add_ps(_mm512_set1_ps(1.3888889e-3f), p));
    p = _mm512_mul_ps(f, _mm512_add_ps(_mm512_set1_ps(8.3333338e-3f), p));
    p = _mm512_mul_ps(f, _mm512_add_ps(_mm512_set1_ps(4.1666668e-2f), p));
    p = _mm512_mul_ps(f, _mm512_add_ps(_mm512_set1_ps(1.6666667e-1f), p));
    p = _mm512_mul_ps(f, _mm512_add_ps(_mm512_set1_ps(0.5f), p));
    p = _mm512_mul_ps(f, _mm512_add_ps(_mm512_set1_ps(1.0f), p));
    p = _mm512_add_ps(_mm512_set1_ps(1.0f), p);
    n = _mm512_max_ps(n, _mm512_set1_ps(-126.0f)); /* n >= -126 ? n : -126 (NaN → -126) */
    n = _mm512_min_ps(n, _mm512_set1_ps(127.0f));
    __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvttps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
}

/* The forward's softmax of one score row s[0, ni), in place: returns the row's
 * log-sum-exp and leaves e^{s_j − max} / Σ in s. The sum is added in the order
 * the compiler gave the loop this replaces (OpenMP simd reduction, AVX-512):
 * lane l sums j ≡ l (mod 16) over whole vectors, lane 0 then the leftover
 * elements in order, and the 16 lanes are added 0 to 15 onto 0 — so the bits
 * are those of the plain loop on this build. */
AI float softmax_row_exact(float *s, int64_t ni) {
    int64_t nv = ni & ~(int64_t)15;
    __mmask16 tail = (__mmask16)((1u << (ni - nv)) - 1);
    __m512 vm = _mm512_set1_ps(s[0]);
    for (int64_t j = 0; j < nv; j += 16) vm = _mm512_max_ps(_mm512_loadu_ps(s + j), vm);
    if (tail) vm = _mm512_mask_max_ps(vm, tail, _mm512_maskz_loadu_ps(tail, s + nv), vm);
    float mx = _mm512_reduce_max_ps(vm);
    __m512 m = _mm512_set1_ps(mx), acc = _mm512_setzero_ps();
    for (int64_t j = 0; j < nv; j += 16) {
        __m512 e = exp_neg16_exact(_mm512_sub_ps(_mm512_loadu_ps(s + j), m));
        _mm512_storeu_ps(s + j, e);
        acc = _mm512_add_ps(acc, e);
    }
    float lane[16];
    _mm512_storeu_ps(lane, acc);
    if (tail) {
        __m512 e = exp_neg16_exact(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, s + nv), m));
        _mm512_mask_storeu_ps(s + nv, tail, e);
        for (int64_t j = nv; j < ni; j++) lane[0] += s[j];
    }
    float sum = 0;
    for (int l = 0; l < 16; l++) sum += lane[l];
    float inv = 1.0f / sum;
    __m512 vi = _mm512_set1_ps(inv);
    for (int64_t j = 0; j < nv; j += 16) _mm512_storeu_ps(s + j, _mm512_mul_ps(_mm512_loadu_ps(s + j), vi));
    if (tail) _mm512_mask_storeu_ps(s + nv, tail, _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, s + nv), vi));
    return mx + logf(sum);
}

/* softmax_row_exact on the rb (<= FRB32) rows of a block at once, row r of S
 * (stride ldS) holding the scores of query i0 + r against keys [0, i0 + r]; each
 * row's log-sum-exp to lse[r]. Every row's operations and their order are
 * softmax_row_exact's, so are its bits; the rows go phase by phase (maxima, then
 * exponentials, then sums, then scaling), so that the short dependent chains of
 * one row (its max reduction, the 16 lane sums added one after another, the
 * leftover elements into lane 0, the division) overlap with the other rows'
 * instead of each row waiting on its own: run row by row they were ~40% of the
 * f32 forward at head dim 16. */
AI void softmax_rows_exact(float *S, int64_t ldS, int64_t i0, int rb, float *lse) {
    float mx[FRB32], lane[FRB32][16], sum[FRB32];
    int64_t nv[FRB32];
    for (int r = 0; r < rb; r++) {
        const float *s = S + r * ldS;
        int64_t ni = i0 + r + 1;
        nv[r] = ni & ~(int64_t)15;
        __mmask16 tail = (__mmask16)((1u << (ni - nv[r])) - 1);
        __m512 vm = _mm512_set1_ps(s[0]);
        for (int64_t j = 0; j < nv[r]; j += 16) vm = _mm512_max_ps(_mm512_loadu_ps(s + j), vm);
        if (tail) vm = _mm512_mask_max_ps(vm, tail, _mm512_maskz_loadu_ps(tail, s + nv[r]), vm);
        mx[r] = _mm512_reduce_max_ps(vm);
    }
    for (int r = 0; r < rb; r++) {
        float *s = S + r * ldS;
        int64_t ni = i0 + r + 1;
        __mmask16 tail = (__mmask16)((1u << (ni - nv[r])) - 1);
        __m512 m = _mm512_set1_ps(mx[r]), acc = _mm512_setzero_ps();
        for (int64_t j = 0; j < nv[r]; j += 16) {
            __m512 e = exp_neg16_exact(_mm512_sub_ps(_mm512_loadu_ps(s + j), m));
            _mm512_storeu_ps(s + j, e);
            acc = _mm512_add_ps(acc, e);
        }
        _mm512_storeu_ps(lane[r], acc);
        if (tail) _mm512_mask_storeu_ps(s + nv[r], tail, exp_neg16_exact(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, s + nv[r]), m)));
    }
    for (int64_t t = 0; t < 15; t++) /* each row's leftovers into its lane 0, in order */
        for (int r = 0; r < rb; r++)
            if (nv[r] + t < i0 + r + 1) lane[r][0] += S[r * ldS + nv[r] + t];
    for (int r = 0; r < rb; r++) sum[r] = 0;
    for (int l = 0; l < 16; l++) /* lanes 0 to 15 onto 0, every row in turn */
        for (int r = 0; r < rb; r++) sum[r] += lane[r][l];
    for (int r = 0; r < rb; r++) {
        float *s = S + r * ldS;
        int64_t ni = i0 + r + 1;
        __mmask16 tail = (__mmask16)((1u << (ni - nv[r])) - 1);
        __m512 vi = _mm512_set1_ps(1.0f / sum[r]);
        for (int64_t j = 0; j < nv[r]; j += 16) _mm512_storeu_ps(s + j, _mm512_mul_ps(_mm512_loadu_ps(s + j), vi));
        if (tail) _mm512_mask_storeu_ps(s + nv[r], tail, _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, s + nv[r]), vi));
        lse[r] = mx[r] + logf(sum[r]);
    }
}

/* The backward's p_j = e^{s_j − L} and ds_j = p_j (dp_j − D) over j < ni, in
 * place in pr and dr: element by element exp_neg's bits, whole vectors and a
 * masked tail. */
AI void softmax_back_row(float *pr, float *dr, int64_t ni, float li, float D) {
    __m512 l = _mm512_set1_ps(li), vd = _mm512_set1_ps(D);
    for (int64_t j = 0; j < ni; j += 16) {
        __mmask16 k = ni - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (ni - j)) - 1);
        __m512 p = exp_neg16_exact(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, pr + j), l));
        _mm512_mask_storeu_ps(pr + j, k, p);
        _mm512_mask_storeu_ps(dr + j, k, _mm512_mul_ps(p, _mm512_sub_ps(_mm512_maskz_loadu_ps(k, dr + j), vd)));
    }
}

/* dst (16 rows of stride ldd) = the transpose of the 16×16 block whose row t is
 * src + t·lds: four rounds of swapping off-diagonal sub-blocks (8, 4, 2, 1 wide)
 * between row pairs, two-source permutes in registers. The scalar copy it
 * replaces was ~8% of the attention forward (one strided load per element). */
AI void transpose16(float *dst, int64_t ldd, const float *src, int64_t lds) {
    __m512 r[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src + i * lds);
    /* for round bw: row i keeps its left block and takes j = i + bw's (A);
     * row j takes i's right block and keeps its own (B); 16 + c means "from j" */
    static const int32_t IA[4][16] = {
        {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23},
        {0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27},
        {0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29},
        {0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30}};
    static const int32_t IB[4][16] = {
        {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31},
        {4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31},
        {2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31},
        {1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31}};
    for (int s = 0, bw = 8; s < 4; s++, bw >>= 1) {
        __m512i va = _mm512_loadu_si512(IA[s]), vb = _mm512_loadu_si512(IB[s]);
        for (int i = 0; i < 16; i++) {
            if (i & bw) continue;
            __m512 a = r[i], bb = r[i + bw];
            r[i] = _mm512_permutex2var_ps(a, va, bb);
            r[i + bw] = _mm512_permutex2var_ps(a, vb, bb);
        }
    }
    for (int i = 0; i < 16; i++) _mm512_storeu_ps(dst + i * ldd, r[i]);
}

#endif
