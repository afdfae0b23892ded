/*
 * autograd/attention_bf16.h — the bf16 products of causal attention (train.precision:
 * bf16), included by autograd/ops_attention.c only, inside its AVX-512 section.
 *
 * Same tiling as the f32 kernels there (RB query rows against all keys j <= i, no
 * (T, T) buffer), but the score products q·kᵀ and do·vᵀ and the value products p·v
 * and ds·k run on AVX512-BF16 pair dot products (VDPBF16PS: two bf16 products per
 * f32 lane, f32 accumulation), as PyTorch's autocast runs attention's bmm in bf16.
 * The softmax, its log-sum-exp, D = do·o and the dk/dv accumulation stay f32.
 *
 * VDPBF16PS reduces over pairs of adjacent bf16 values, so each operand is laid
 * out with the reduction index paired: for q·kᵀ (reduction over d) the keys as
 * kp[p][j] = (k_j[2p], k_j[2p+1]) and a query's pair broadcast; for p·v (reduction
 * over j) the values as vp[jp][d] = (v_{2jp}[d], v_{2jp+1}[d]) and the probability
 * pair (p_{2jp}, p_{2jp+1}) broadcast. A pair is one uint32_t, low half first.
 *
 * Every function carries the AVX512-BF16 target; the caller checks
 * qat_cpu_avx512bf16() first (core/cpu.h), so a portable build still runs elsewhere.
 */
#ifndef QAT_AUTOGRAD_ATTENTION_BF16_H
#define QAT_AUTOGRAD_ATTENTION_BF16_H

#include "core/bf16.h"
#include "rope_kernels.h"

#define TBF __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16")))
#define AIB static inline __attribute__((always_inline)) TBF

/* Pin loaded vectors in registers: without this GCC reloads a key vector from
 * memory for every query row it meets (a load per pair product, which made the
 * score loops load-bound); an empty asm makes the value opaque, so it stays. */
#define KEEP2(a, b) __asm__("" : "+v"(a), "+v"(b))
#define KEEP4(a, b, c, d) __asm__("" : "+v"(a), "+v"(b), "+v"(c), "+v"(d))

/* n f32 (n a multiple of 16) to bf16, round to nearest even */
AIB void b16_row(const float *src, uint16_t *dst, int64_t n) {
    for (int64_t i = 0; i < n; i += 16)
        _mm256_storeu_si256((__m256i *)(dst + i), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(src + i)));
}

#define FRB 8 /* query rows per block of the bf16 forward: each key pair loaded serves FRB rows */

/* exp_neg (ops_attention.c) on 16 lanes: the same 2^n · 2^f split, degree-7
 * polynomial and input clamp, in fewer operations (the softmax's exponentials,
 * T²/2 per head in the forward and again in the backward, cost as much as the
 * score products): n rounded by VRNDSCALE instead of the add-subtract trick,
 * the polynomial in fused multiply-adds (half the operations and the dependent
 * chain), and 2^n applied by VSCALEF instead of building exponent bits (the
 * same value for the n in range; x >= −87 keeps n >= −126). A NaN stays NaN.
 * The last bit may differ from exp_neg's, far below the bf16 rounding of P. */
AIB __m512 exp_neg16(__m512 x) {
    x = _mm512_max_ps(_mm512_set1_ps(-87.0f), x); /* max_ps returns its second operand on NaN */
    __m512 t = _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f));
    __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_mul_ps(_mm512_sub_ps(t, n), _mm512_set1_ps(0.693147180559945309f));
    __m512 p = _mm512_fmadd_ps(f, _mm512_set1_ps(1.9841270e-4f), _mm512_set1_ps(1.3888889e-3f));
    p = _mm512_fmadd_ps(f, p, _mm512_set1_ps(8.3333338e-3f));
    p = _mm512_fmadd_ps(f, p, _mm512_set1_ps(4.1666668e-2f));
    p = _mm512_fmadd_ps(f, p, _mm512_set1_ps(1.6666667e-1f));
    p = _mm512_fmadd_ps(f, p, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(f, p, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(f, p, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/* Mask of the lanes j0 + l (l < 16) below ni. */
AIB __mmask16 lanes_below(int64_t j0, int64_t ni) {
    static const int32_t IOTA[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    return _mm512_cmplt_epi32_mask(_mm512_add_epi32(_mm512_loadu_si512(IOTA), _mm512_set1_epi32((int)j0)),
                                   _mm512_set1_epi32((int)ni));
}

/* Forward scores of the FRB rows i0 + r against keys [0, n) rounded up to 32:
 * S[r][j] = α Σ_p q_r[p] · kp[p][j], and mx[r] the maximum over the row's own
 * keys j <= i0 + r (a masked max on the tiles the diagonal crosses), so the
 * softmax needs no separate pass for it. */
AIB void kb_scores_max(float *S, int64_t ldS, const uint32_t *const q[FRB], const uint32_t *kp, int64_t n, int64_t hp,
                       int64_t ldk, float alpha, int64_t i0, float mx[FRB]) {
    __m512 va = _mm512_set1_ps(alpha), m[FRB];
    for (int r = 0; r < FRB; r++) m[r] = _mm512_set1_ps(-INFINITY);
    for (int64_t j0 = 0; j0 < n; j0 += 32) {
        __m512 a[FRB][2];
        for (int r = 0; r < FRB; r++) a[r][0] = a[r][1] = _mm512_setzero_ps();
        for (int64_t p = 0; p < hp; p++) {
            __m512bh k0 = (__m512bh)_mm512_loadu_si512(kp + p * ldk + j0);
            __m512bh k1 = (__m512bh)_mm512_loadu_si512(kp + p * ldk + j0 + 16);
            KEEP2(k0, k1);
            for (int r = 0; r < FRB; r++) {
                __m512bh qd = (__m512bh)_mm512_set1_epi32((int)q[r][p]);
                a[r][0] = _mm512_dpbf16_ps(a[r][0], k0, qd);
                a[r][1] = _mm512_dpbf16_ps(a[r][1], k1, qd);
            }
        }
        int full = j0 + 32 <= i0 + 1; /* every row sees every key of the tile */
        for (int r = 0; r < FRB; r++) {
            __m512 s0 = _mm512_mul_ps(va, a[r][0]), s1 = _mm512_mul_ps(va, a[r][1]);
            _mm512_storeu_ps(S + r * ldS + j0, s0);
            _mm512_storeu_ps(S + r * ldS + j0 + 16, s1);
            if (full) {
                m[r] = _mm512_max_ps(m[r], _mm512_max_ps(s0, s1));
            } else {
                m[r] = _mm512_mask_max_ps(m[r], lanes_below(j0, i0 + r + 1), m[r], s0);
                m[r] = _mm512_mask_max_ps(m[r], lanes_below(j0 + 16, i0 + r + 1), m[r], s1);
            }
        }
    }
    for (int r = 0; r < FRB; r++) mx[r] = _mm512_reduce_max_ps(m[r]);
}

/* out[r] (+)= scale_r · Σ_{jp<np} P[r][jp] · xp[jp] for R (<= FRB) rows of bf16 pairs P
 * (row stride ldP pairs) and pair-interleaved rows xp (np, NV·16 pairs); NULL rows
 * skipped; scale_r = rs[r] when rs is non-NULL, else scale. */
AIB void kb_pv(float *const *out, const uint32_t *P, int64_t ldP, const uint32_t *xp, int64_t np, const int NV,
               int accum, float scale, const int R, const float *rs) {
    __m512 a[FRB][2];
    for (int r = 0; r < R; r++) a[r][0] = a[r][1] = _mm512_setzero_ps();
    for (int64_t jp = 0; jp < np; jp++) {
        __m512bh x0 = (__m512bh)_mm512_loadu_si512(xp + jp * NV * 16);
        __m512bh x1 = NV > 1 ? (__m512bh)_mm512_loadu_si512(xp + jp * NV * 16 + 16) : x0;
        for (int r = 0; r < R; r++) {
            __m512bh p = (__m512bh)_mm512_set1_epi32((int)P[r * ldP + jp]);
            a[r][0] = _mm512_dpbf16_ps(a[r][0], x0, p);
            if (NV > 1) a[r][1] = _mm512_dpbf16_ps(a[r][1], x1, p);
        }
    }
    for (int r = 0; r < R; r++) {
        if (!out[r]) continue;
        __m512 sc = _mm512_set1_ps(rs ? rs[r] : scale);
        for (int c = 0; c < NV; c++) {
            __m512 v = _mm512_mul_ps(sc, a[r][c]);
            if (accum) v = _mm512_add_ps(v, _mm512_loadu_ps(out[r] + 16 * c));
            _mm512_storeu_ps(out[r] + 16 * c, v);
        }
    }
}

/* The same as the first writer (stores), but only the bf16 copy of each row goes
 * out, to g16 rows (stride ldg): qat_to_bf16 of what rope_rows_back would store. */
static inline void rope_rows_back_b16(uint16_t *g16, int64_t ldg, const float *d, int64_t T, int64_t hd,
                                      const float *cs) {
    int64_t half = hd / 2;
    float row[32];
    for (int64_t t = 0; t < T; t++) {
        if (t + PFD < T) __builtin_prefetch(g16 + (t + PFD) * ldg, 1, 3);
        qat_rope_half_back(row, row + half, d + t * hd, d + t * hd + half, cs + t * half, cs + T * half + t * half,
                           half, 1);
        qat_bf16_row(row, g16 + t * ldg, hd);
    }
}

/* kp (hd/2, ldt) pairs over d of head h's rows x (T of them, row stride ldx), zero
 * for t in [T, ldt), rotated on the way when cs (the rope table) is non-NULL; tmp
 * holds T·hd/2 pairs. Rows go to bf16 first, then the (T, hd/2) pair matrix is
 * transposed 16×16 at a time (bit moves only). */
AIB void pairs_over_d(uint32_t *kp, const float *x, int64_t ldx, int64_t T, int64_t hd, int64_t ldt, uint32_t *tmp,
                      const float *cs) {
    int64_t hp = hd / 2;
    float rot[32];
    for (int64_t t = 0; t < T; t++) {
        const float *xt = x + t * ldx;
        pf_row(x, ldx, t, T, hd);
        if (cs) rope_row(rot, xt, t, T, hd, cs), xt = rot;
        b16_row(xt, (uint16_t *)(tmp + t * hp), hd);
    }
    for (int64_t p = 0; p < hp; p++)
        for (int64_t t = T; t < ldt; t++) kp[p * ldt + t] = 0;
    int64_t t0 = 0;
    if (hp % 16 == 0)
        for (; t0 + 16 <= T; t0 += 16)
            for (int64_t p0 = 0; p0 < hp; p0 += 16)
                transpose16((float *)(kp + p0 * ldt + t0), ldt, (const float *)(tmp + t0 * hp + p0), hp);
    for (int64_t t = t0; t < T; t++)
        for (int64_t p = 0; p < hp; p++) kp[p * ldt + t] = tmp[t * hp + p];
}

/* xp ((T+1)/2, hd) pairs over rows of head h's rows x: xp[jp][d] = (x_{2jp}[d],
 * x_{2jp+1}[d]), the row past an odd T zero; rotated on the way when cs. */
AIB void pairs_over_rows(uint32_t *xp, const float *x, int64_t ldx, int64_t T, int64_t hd, const float *cs) {
    static const int32_t IL[16] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23};
    static const int32_t IH[16] = {8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    __m512i il = _mm512_loadu_si512(IL), ih = _mm512_loadu_si512(IH);
    float rot[2][32];
    for (int64_t jp = 0; jp < (T + 1) / 2; jp++) {
        const float *x0 = x + 2 * jp * ldx, *x1 = 2 * jp + 1 < T ? x0 + ldx : NULL;
        pf_row(x, ldx, 2 * jp, T, hd), pf_row(x, ldx, 2 * jp + 1, T, hd);
        if (cs) {
            rope_row(rot[0], x0, 2 * jp, T, hd, cs), x0 = rot[0];
            if (x1) rope_row(rot[1], x1, 2 * jp + 1, T, hd, cs), x1 = rot[1];
        }
        for (int64_t d = 0; d < hd; d += 16) {
            __m512 a = _mm512_loadu_ps(x0 + d);
            __m512 b = x1 ? _mm512_loadu_ps(x1 + d) : _mm512_setzero_ps();
            __m512bh v = _mm512_cvtne2ps_pbh(_mm512_permutex2var_ps(a, ih, b), _mm512_permutex2var_ps(a, il, b));
            _mm512_storeu_si512(xp + jp * hd + d, (__m512i)v);
        }
    }
}

/* Per-thread scratch (in 4-byte units) of the bf16 forward. */
static inline int64_t att_bf16_fwd_scratch(int64_t T, int64_t hd, int64_t ldt) {
    return hd / 2 * ldt + (T + 1) / 2 * hd + T * hd / 2 + FRB * ldt + FRB * ldt / 2 + 32;
}

/* Softmax of the block's FRB rows (f32, the f32 path's formulas) in one pass over
 * the scores: row r < rb keeps keys j <= i0 + r, e_j = exp(s_j − mx[r]) goes
 * straight to bf16 pairs in Pb (stride ldP pairs; zeros past key i up to n
 * rounded to 32), its log-sum-exp to lse[i0 + r] and 1/Σe to inv[r]: the
 * normalization is applied to the p·v sums (kb_pv), not to every e_j. */
AIB void softmax_rows_b16(const float *S, int64_t ldS, uint32_t *Pb, int64_t ldP, int64_t i0, int rb, int64_t n,
                          const float mx[FRB], float *lse, float inv[FRB]) {
    for (int r = 0; r < FRB; r++) {
        const float *s = S + r * ldS;
        uint16_t *pb = (uint16_t *)(Pb + r * ldP);
        if (r >= rb) {
            memset(pb, 0, (size_t)((n + 31) / 32 * 32) * sizeof(uint16_t));
            continue;
        }
        int64_t ni = i0 + r + 1;
        __m512 m = _mm512_set1_ps(mx[r]), sum = _mm512_setzero_ps();
        for (int64_t j0 = 0; j0 < n; j0 += 32) {
            __m512 e0 = exp_neg16(_mm512_sub_ps(_mm512_loadu_ps(s + j0), m));
            __m512 e1 = exp_neg16(_mm512_sub_ps(_mm512_loadu_ps(s + j0 + 16), m));
            if (j0 + 32 > ni) {
                e0 = _mm512_maskz_mov_ps(lanes_below(j0, ni), e0);
                e1 = _mm512_maskz_mov_ps(lanes_below(j0 + 16, ni), e1);
            }
            sum = _mm512_add_ps(sum, _mm512_add_ps(e0, e1));
            _mm512_storeu_si512(pb + j0, (__m512i)_mm512_cvtne2ps_pbh(e1, e0));
        }
        float tot = _mm512_reduce_add_ps(sum);
        lse[i0 + r] = mx[r] + logf(tot);
        inv[r] = 1.0f / tot;
    }
}

/* One (b, h) head of the forward: o rows (stride ldo) and lse (T). */
static TBF void att_head_fwd_bf16(const float *q, int64_t ldq, const float *k, int64_t ldk, const float *v,
                                  int64_t ldv, float *o, int64_t ldo, float *lse, int64_t T, int64_t hd, int64_t ldt,
                                  float alpha, const float *cs, uint32_t *scr) {
    int64_t hp = hd / 2;
    uint32_t *kp = scr, *vp = kp + hp * ldt, *qb = vp + (T + 1) / 2 * hd;
    float *S = (float *)(qb + T * hp);
    uint32_t *Pb = (uint32_t *)(S + FRB * ldt);
    /* k and q rotated row by row as they go to bf16 when cs; qb is the transpose's scratch first */
    pairs_over_d(kp, k, ldk, T, hd, ldt, qb, cs);
    pairs_over_rows(vp, v, ldv, T, hd, NULL);
    float rot[32];
    for (int64_t t = 0; t < T; t++) {
        const float *qt = q + t * ldq;
        pf_row(q, ldq, t, T, hd);
        if (cs) rope_row(rot, qt, t, T, hd, cs), qt = rot;
        b16_row(qt, (uint16_t *)(qb + t * hp), hd);
    }
    for (int64_t i0 = 0; i0 < T; i0 += FRB) {
        int rb = T - i0 < FRB ? (int)(T - i0) : FRB;
        int64_t n = i0 + rb, np = (n + 1) / 2;
        const uint32_t *qr[FRB];
        float mx[FRB], inv[FRB];
        for (int r = 0; r < FRB; r++) qr[r] = qb + (r < rb ? i0 + r : i0) * hp;
        kb_scores_max(S, ldt, qr, kp, n, hp, ldt, alpha, i0, mx);
        softmax_rows_b16(S, ldt, Pb, ldt / 2, i0, rb, n, mx, lse, inv);
        float *orow[FRB];
        for (int r = 0; r < FRB; r++) orow[r] = r < rb ? o + (i0 + r) * ldo : NULL;
        prefetch_rows(o, ldo, i0 + FRB, FRB, T, hd, 1); /* the next block's output rows, for writing */
        if (hd == 32) kb_pv(orow, Pb, ldt / 2, vp, np, 2, 0, 1.0f, FRB, inv);
        else kb_pv(orow, Pb, ldt / 2, vp, np, 1, 0, 1.0f, FRB, inv);
    }
}

/* Interleave rows a and b (hd f32 each, b NULL = zeros) into hd bf16 pairs
 * dst[d] = (a[d], b[d]). */
AIB void pair_rows(uint32_t *dst, const float *a, const float *b, int64_t hd) {
    static const int32_t IL[16] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23};
    static const int32_t IH[16] = {8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    __m512i il = _mm512_loadu_si512(IL), ih = _mm512_loadu_si512(IH);
    for (int64_t d = 0; d < hd; d += 16) {
        __m512 x = _mm512_loadu_ps(a + d), y = b ? _mm512_loadu_ps(b + d) : _mm512_setzero_ps();
        __m512bh v = _mm512_cvtne2ps_pbh(_mm512_permutex2var_ps(x, ih, y), _mm512_permutex2var_ps(x, il, y));
        _mm512_storeu_si512(dst + d, (__m512i)v);
    }
}

#define QB 16 /* query rows per block of the bf16 backward: QB/2 row pairs for dk, dv */

/* acc_j (+)= Σ_{rp<QB/2} W[rp][j] · X[rp] for j < n: W pairs over rows (stride ldw),
 * X (QB/2, NV·16) pairs over rows, kept in registers across all keys. Four keys
 * (eight at hd 16) at a time: one key's sum is a chain of QB/2 dependent pair
 * products, so a single key left the unit waiting on their latency. */
AIB void kb_rows(float *acc, const uint32_t *W, int64_t ldw, const uint32_t *X, int64_t n, const int NV) {
    const int KJ = NV > 1 ? 4 : 8; /* 8 independent sums for either head dim */
    __m512bh x[QB / 2][2];
    for (int rp = 0; rp < QB / 2; rp++)
        for (int c = 0; c < NV; c++) x[rp][c] = (__m512bh)_mm512_loadu_si512(X + rp * NV * 16 + 16 * c);
    int64_t j = 0;
    for (; j + KJ <= n; j += KJ) {
        __m512 a[8][2];
        for (int u = 0; u < KJ; u++)
            for (int c = 0; c < NV; c++) a[u][c] = _mm512_loadu_ps(acc + (j + u) * NV * 16 + 16 * c);
        for (int rp = 0; rp < QB / 2; rp++)
            for (int u = 0; u < KJ; u++) {
                __m512bh w = (__m512bh)_mm512_set1_epi32((int)W[rp * ldw + j + u]);
                for (int c = 0; c < NV; c++) a[u][c] = _mm512_dpbf16_ps(a[u][c], x[rp][c], w);
            }
        for (int u = 0; u < KJ; u++)
            for (int c = 0; c < NV; c++) _mm512_storeu_ps(acc + (j + u) * NV * 16 + 16 * c, a[u][c]);
    }
    for (; j < n; j++) {
        __m512 a0 = _mm512_loadu_ps(acc + j * NV * 16), a1 = NV > 1 ? _mm512_loadu_ps(acc + j * NV * 16 + 16) : a0;
        for (int rp = 0; rp < QB / 2; rp++) {
            __m512bh w = (__m512bh)_mm512_set1_epi32((int)W[rp * ldw + j]);
            a0 = _mm512_dpbf16_ps(a0, x[rp][0], w);
            if (NV > 1) a1 = _mm512_dpbf16_ps(a1, x[rp][1], w);
        }
        _mm512_storeu_ps(acc + j * NV * 16, a0);
        if (NV > 1) _mm512_storeu_ps(acc + j * NV * 16 + 16, a1);
    }
}

/* The backward's P and dS for RB rows (row pairs 2·rp, 2·rp+1, rp < RB/2) against
 * keys [0, n) rounded up to 32, in one pass per 32-key tile: the scores q·kᵀ and
 * do·vᵀ stay in registers, then p = exp(α s − L), ds = p (dp − D), zero past
 * each row's ni keys, and go out only as bf16: pairs over rows PP, SP (stride
 * ldt pairs, row pair rp at rp·ldt) for dv and dk, and rows dSb (stride ldt/2
 * pairs) for dq. No f32 copy of P or dS is written. */
AIB void kb_bwd_tile(uint32_t *PP, uint32_t *SP, uint32_t *dSb, const uint32_t *const q[RB],
                     const uint32_t *const g[RB], const uint32_t *kp, const uint32_t *vdp, int64_t n, int64_t hp,
                     int64_t ldt, float alpha, const float li[RB], const float D[RB], const int64_t ni[RB]) {
    static const int32_t IL[16] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23};
    static const int32_t IH[16] = {8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    __m512 va = _mm512_set1_ps(alpha);
    for (int64_t j0 = 0; j0 < n; j0 += 32) {
        __m512 as[RB][2], ad[RB][2];
        for (int r = 0; r < RB; r++) as[r][0] = as[r][1] = ad[r][0] = ad[r][1] = _mm512_setzero_ps();
        for (int64_t p = 0; p < hp; p++) {
            __m512bh k0 = (__m512bh)_mm512_loadu_si512(kp + p * ldt + j0);
            __m512bh k1 = (__m512bh)_mm512_loadu_si512(kp + p * ldt + j0 + 16);
            __m512bh v0 = (__m512bh)_mm512_loadu_si512(vdp + p * ldt + j0);
            __m512bh v1 = (__m512bh)_mm512_loadu_si512(vdp + p * ldt + j0 + 16);
            KEEP4(k0, k1, v0, v1);
            for (int r = 0; r < RB; r++) {
                __m512bh qd = (__m512bh)_mm512_set1_epi32((int)q[r][p]);
                __m512bh gd = (__m512bh)_mm512_set1_epi32((int)g[r][p]);
                as[r][0] = _mm512_dpbf16_ps(as[r][0], k0, qd);
                as[r][1] = _mm512_dpbf16_ps(as[r][1], k1, qd);
                ad[r][0] = _mm512_dpbf16_ps(ad[r][0], v0, gd);
                ad[r][1] = _mm512_dpbf16_ps(ad[r][1], v1, gd);
            }
        }
        __m512i il = _mm512_loadu_si512(IL), ih = _mm512_loadu_si512(IH);
        for (int rp = 0; rp < RB / 2; rp++) {
            __m512 pv[2][2], sv[2][2];
            for (int h = 0; h < 2; h++) {
                int r = 2 * rp + h;
                __m512 l = _mm512_set1_ps(li[r]), dd = _mm512_set1_ps(D[r]);
                for (int c = 0; c < 2; c++) {
                    __m512 e = exp_neg16(_mm512_sub_ps(_mm512_mul_ps(va, as[r][c]), l));
                    if (j0 + 16 * c + 16 > ni[r]) e = _mm512_maskz_mov_ps(lanes_below(j0 + 16 * c, ni[r]), e);
                    pv[h][c] = e;
                    sv[h][c] = _mm512_mul_ps(e, _mm512_sub_ps(ad[r][c], dd));
                }
                _mm512_storeu_si512((uint16_t *)(dSb + r * (ldt / 2)) + j0,
                                    (__m512i)_mm512_cvtne2ps_pbh(sv[h][1], sv[h][0]));
            }
            for (int c = 0; c < 2; c++) {
                __m512 a = pv[0][c], b = pv[1][c];
                __m512bh w = _mm512_cvtne2ps_pbh(_mm512_permutex2var_ps(a, ih, b), _mm512_permutex2var_ps(a, il, b));
                _mm512_storeu_si512(PP + rp * ldt + j0 + 16 * c, (__m512i)w);
                a = sv[0][c], b = sv[1][c];
                w = _mm512_cvtne2ps_pbh(_mm512_permutex2var_ps(a, ih, b), _mm512_permutex2var_ps(a, il, b));
                _mm512_storeu_si512(SP + rp * ldt + j0 + 16 * c, (__m512i)w);
            }
        }
    }
}

/* Per-thread scratch (4-byte units) of the bf16 backward, dk and dv included. */
static inline int64_t att_bf16_bwd_scratch(int64_t T, int64_t hd, int64_t ldt) {
    return 2 * (hd / 2 * ldt) + (T + 1) / 2 * hd + T * hd / 2 + 2 * T * hd + QB * ldt + QB * ldt / 2 + QB * hd +
           QB * hd + T + 2 * QB * hd + 64; /* + a block's rotated q rows and its dq rows (rope fused) */
}

/* One (b, h) head of the backward. q, k, v, o, go: the head's rows (strides ld*);
 * dq rows written (accumulated unless fq) when non-NULL, or (with cs, as the first
 * writer, dq NULL) only their bf16 copy to dq16 rows of the same stride; dk, dv
 * (T, hd) f32 out.
 * With cs (the rope table) q and k are rotated as they are loaded and dq rotated
 * back as it is written (qat_rope's formulas, so qat_rope's bits), dk is left to
 * the caller. P and dS are recomputed from the same bf16 scores as the forward;
 * blocks of QB query rows, so the dk/dv pair products reduce over QB/2 row pairs
 * per key. */
static TBF void att_head_bwd_bf16(const float *q, int64_t ldq, const float *k, int64_t ldk, const float *v,
                                  int64_t ldv, const float *o, const float *go, int64_t ldo, const float *lse,
                                  float *dq, uint16_t *dq16, int64_t lddq, int fq, float *dk, float *dv,
                                  const float *zero, int64_t T, int64_t hd, int64_t ldt, float alpha, const float *cs,
                                  uint32_t *scr) {
    int64_t hp = hd / 2, half = hd / 2;
    QAT_ASSERT(!dq16 || (!dq && cs && fq && hd <= 32));
    uint32_t *kp = scr, *vdp = kp + hp * ldt, *kjp = vdp + hp * ldt, *tmp = kjp + (T + 1) / 2 * hd;
    uint32_t *PP = tmp + T * hp, *SP = PP + QB / 2 * ldt; /* pairs over rows */
    uint32_t *dSb = SP + QB / 2 * ldt, *qgb = dSb + QB * ldt / 2; /* qgb: QB q rows, QB go rows */
    uint32_t *goP = qgb + QB * hd, *qP = goP + QB / 2 * hd;
    float *Dall = (float *)(qP + QB / 2 * hd); /* (T) the rows' Σ_d go·o */
    float *qrot = Dall + T, *dqb = qrot + QB * hd; /* a block's rotated q rows, its dq rows (cs) */
    prefetch_rows(q, ldq, 0, QB, T, hd, 0); /* the first block's q rows (go: row_dots reads it) */
    row_dots(Dall, go, o, ldo, T, hd);
    pairs_over_d(kp, k, ldk, T, hd, ldt, tmp, cs);
    pairs_over_d(vdp, v, ldv, T, hd, ldt, tmp, NULL);
    pairs_over_rows(kjp, k, ldk, T, hd, cs);
    memset(dk, 0, (size_t)(T * hd) * sizeof(float));
    memset(dv, 0, (size_t)(T * hd) * sizeof(float));
    for (int64_t i0 = 0; i0 < T; i0 += QB) {
        int rb = T - i0 < QB ? (int)(T - i0) : QB;
        int64_t n = i0 + rb, np = (n + 1) / 2, n32 = (n + 31) / 32 * 32;
        const float *qr[QB], *gr[QB];
        const uint32_t *qb[QB], *gb[QB];
        float Li[QB], Di[QB];
        int64_t ni[QB];
        /* the next block's q and do rows, and its dq rows for writing */
        prefetch_rows(q, ldq, i0 + QB, QB, T, hd, 0);
        prefetch_rows(go, ldo, i0 + QB, QB, T, hd, 0);
        if (dq) prefetch_rows(dq, lddq, i0 + QB, QB, T, hd, 1);
        for (int64_t t = i0 + QB; dq16 && t < i0 + 2 * QB && t < T; t++) __builtin_prefetch(dq16 + t * lddq, 1, 3);
        for (int r = 0; r < QB; r++) {
            qr[r] = r < rb ? q + (i0 + r) * ldq : zero;
            if (cs && r < rb) rope_row(qrot + r * hd, qr[r], i0 + r, T, hd, cs), qr[r] = qrot + r * hd;
            gr[r] = r < rb ? go + (i0 + r) * ldo : zero;
            Di[r] = r < rb ? Dall[i0 + r] : 0.0f;
            Li[r] = r < rb ? lse[i0 + r] : 0.0f;
            ni[r] = r < rb ? i0 + r + 1 : 0; /* a padding row's P and dS are zero */
            b16_row(qr[r], (uint16_t *)(qgb + r * hp), hd);
            b16_row(gr[r], (uint16_t *)(qgb + (QB + r) * hp), hd);
            qb[r] = qgb + r * hp;
            gb[r] = qgb + (QB + r) * hp;
        }
        for (int s = 0; s < QB; s += RB) {
            if (s >= rb) { /* rows past T: zero pairs for dk, dv and rows for dq (outputs dropped) */
                for (int rp = s / 2; rp < (s + RB) / 2; rp++) {
                    memset(PP + rp * ldt, 0, (size_t)n32 * sizeof(uint32_t));
                    memset(SP + rp * ldt, 0, (size_t)n32 * sizeof(uint32_t));
                }
                memset(dSb + s * (ldt / 2), 0, (size_t)(RB * (ldt / 2)) * sizeof(uint32_t));
                continue;
            }
            kb_bwd_tile(PP + s / 2 * ldt, SP + s / 2 * ldt, dSb + s * (ldt / 2), qb + s, gb + s, kp, vdp, n, hp, ldt,
                        alpha, Li + s, Di + s, ni + s);
        }
        for (int rp = 0; rp < QB / 2; rp++) {
            pair_rows(goP + rp * hd, gr[2 * rp], gr[2 * rp + 1], hd);
            pair_rows(qP + rp * hd, qr[2 * rp], qr[2 * rp + 1], hd);
        }
        /* dv_j += Σ_r P[r][j] go_r, dk_j += Σ_r dS[r][j] q_r (α applied at the end) */
        if (hd == 32) {
            kb_rows(dv, PP, ldt, goP, n, 2);
            kb_rows(dk, SP, ldt, qP, n, 2);
        } else {
            kb_rows(dv, PP, ldt, goP, n, 1);
            kb_rows(dk, SP, ldt, qP, n, 1);
        }
        if (dq || dq16) /* FRB rows at a time: 2·FRB independent sums at hd 32 */
            for (int s = 0; s < rb; s += FRB) {
                float *dqr[FRB];
                for (int r = 0; r < FRB; r++)
                    dqr[r] = s + r >= rb ? NULL : cs ? dqb + (s + r) * hd : dq + (i0 + s + r) * lddq;
                int acc = !fq && !cs;
                if (hd == 32) kb_pv(dqr, dSb + s * (ldt / 2), ldt / 2, kjp, np, 2, acc, alpha, FRB, NULL);
                else kb_pv(dqr, dSb + s * (ldt / 2), ldt / 2, kjp, np, 1, acc, alpha, FRB, NULL);
                if (cs) /* the block's dq rows are complete: rotate them back into dq */
                    for (int r = 0; r < FRB && s + r < rb; r++) {
                        int64_t t = i0 + s + r;
                        const float *d = dqb + (s + r) * hd, *co = cs + t * half, *si = cs + T * half + t * half;
                        if (dq16) { /* the bf16 copy alone, of what the first writer would store */
                            float g[32];
                            qat_rope_half_back(g, g + half, d, d + half, co, si, half, 1);
                            qat_bf16_row(g, dq16 + t * lddq, hd);
                        } else {
                            float *g = dq + t * lddq;
                            qat_rope_half_back(g, g + half, d, d + half, co, si, half, fq);
                        }
                    }
            }
    }
    for (int64_t i = 0; i < T * hd; i++) dk[i] *= alpha;
}

#undef AIB
#undef TBF
#endif
