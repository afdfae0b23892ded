/*
 * autograd/ops_attention.c — causal attention (f32, and bf16 products on CPUs with
 * AVX512-BF16), with RoPE applied inside its loads (qat_attention_rot).
 *
 * Attention is computed row by row per (batch, head), FlashAttention-style:
 * only the causal half j <= i is ever touched, the softmax is formed from one
 * pass over the row's scores, and no (T, T) matrix is kept: the forward saves
 * one log-sum-exp per row (B, H, T) and the backward recomputes the scores.
 *
 *   forward, row i:  s_j = α q_i·k_j (j <= i),  L_i = logsumexp(s),  o_i = Σ_j e^{s_j−L_i} v_j
 *   backward, row i: p_j = e^{s_j−L_i},  D_i = do_i·o_i,  ds_j = p_j (do_i·v_j − D_i)
 *                    dq_i += α Σ_j ds_j k_j,  dk_j += α ds_j q_i,  dv_j += p_j do_i
 *
 * The work is split over (b, h) pairs, one whole head per thread, so dk and dv
 * accumulate without races and in a fixed order (bit-reproducible for any
 * thread count). A head's k and v are first copied into contiguous per-thread
 * buffers — transposed (hd, T) for the score loops, whose inner loop then runs
 * over keys, unit stride — so every inner loop vectorizes. At the sizes qat
 * trains (T ≤ 256, hd 16–32) a head's k, v and their gradients fit in L2.
 * An earlier version ran the full T×T scores through oneDNN and masked half:
 * twice the work and a (B, H, T, T) buffer (33 MiB per layer at d256/T256).
 *
 * The model's attention (qat_rope_attention) rotates q and k as a head is loaded
 * and rotates dq and dk back as they are stored: RoPE costs no pass of its own
 * over the (B·T, 2C) q|k and no rotated copy, in every precision.
 */
#include <math.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/cpu.h"
#include "core/error.h"
#include "ops.h"
#include "rope_kernels.h"

/* Compiled twice in a portable build (core/cpu.h): qat_attention (and the backward
 * it records) runs the AVX-512 copy on CPUs that have it. */

#if QAT_ISA_RENAME
#define qat_attention QAT_ISA_NAME(qat_attention)
#define qat_attention_rot QAT_ISA_NAME(qat_attention_rot)
#endif

/* ---- attention ---- */
typedef struct {
    qat_cols q, k, v;   /* (B·T, C) column blocks */
    qat_tensor *out;    /* (B·T, C) */
    float *lse;         /* (B, H, T) log-sum-exp of each score row */
    int64_t B, T;
    int heads;
    int bf16;           /* the forward ran the bf16 products (attention_bf16.h) */
    const float *cs;    /* rope table when q and k are rotated on load (qat_rope_attention), else NULL */
} att_ctx;

/* e^x for x <= 0 (scores minus their row maximum), vectorizable: 2^n · 2^f with
 * n = round(x·log2 e) and a degree-7 Taylor polynomial for 2^f, |f| <= 1/2
 * (relative error ~1e-8, below float rounding). Underflows to 0 below −87.
 * A NaN (from a non-finite weight) stays NaN through p; n is then pinned inside
 * int range and the exponent built unsigned, so no conversion or shift is
 * undefined. For x in [−87, 0] both selects pass n and the bits are unchanged. */
static inline float exp_neg(float x) {
    x = x < -87.0f ? -87.0f : x;
    float t = x * 1.44269504088896341f;
    float n = (t + 12582912.0f) - 12582912.0f; /* round to nearest */
    float f = (t - n) * 0.693147180559945309f;
    float p = 1.0f + f * (1.0f + f * (0.5f + f * (1.6666667e-1f + f * (4.1666668e-2f + f * (8.3333338e-3f +
              f * (1.3888889e-3f + f * 1.9841270e-4f))))));
    n = n >= -126.0f ? n : -126.0f; /* NaN goes here too */
    n = n <= 127.0f ? n : 127.0f;
    uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    return p * scale;
}

static int att_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static int att_thread(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* Row pointer of head h, position t of a (B·T, ·) column block. */
static inline const float *head_row(qat_cols c, int64_t b, int64_t T, int64_t t, int64_t hd, int64_t h) {
    return c.t->data + (b * T + t) * qat_tensor_cols(c.t) + c.off + h * hd;
}

/* Prefetch rows [t, t + n) of a head (hd floats each, stride ld) into L1, for
 * reading (w = 0) or writing (w = 1). A head's rows are hd floats out of every
 * few hundred, so each is its own cache line or two and the hardware's stream
 * prefetcher does not see them coming: the strided loads of k, v, o, do and the
 * stores of dk, dv took a quarter of the f32 backward waiting on L2/L3. Rows past
 * `end` are skipped. No effect on any value. */
static inline void prefetch_rows(const float *row0, int64_t ld, int64_t t, int64_t n, int64_t end, int64_t hd, int w) {
    for (int64_t r = t; r < t + n && r < end; r++)
        for (int64_t d = 0; d < hd; d += 16) {
            if (w) __builtin_prefetch(row0 + r * ld + d, 1, 3);
            else __builtin_prefetch(row0 + r * ld + d, 0, 3);
        }
}

/* The head's rows are hd floats out of every (3C-float) row of the qkv product,
 * a page apart, so the hardware's stream prefetch never follows them: each row's
 * first load waited on L3 (perf on Zen 4: the first loads of the rope and pair
 * loops were the forward's hottest instructions). Ask for row t + PFD as row t is
 * read, as the f32 kernels do (prefetch_rows). No effect on any value. */
#define PFD 8
static inline void pf_row(const float *x, int64_t ld, int64_t t, int64_t T, int64_t hd) {
    if (t + PFD < T) prefetch_rows(x, ld, t + PFD, 1, T, hd, 0);
}

/* dst (hd) = row t of x under the rotary embedding, cs the (T, hd/2) cos then
 * sin table: qat_rope's formula, so the same bits. */
static inline void rope_row(float *dst, const float *x, int64_t t, int64_t T, int64_t hd, const float *cs) {
    int64_t half = hd / 2;
    qat_rope_half_fwd(dst, dst + half, x, x + half, cs + t * half, cs + T * half + t * half, half);
}

/* g rows (stride ldg) (+)= the rotary embedding's backward of d (T, hd): qat_rope's
 * backward formula, stored when first. */
static inline void rope_rows_back(float *g, int64_t ldg, const float *d, int64_t T, int64_t hd, const float *cs, int first) {
    int64_t half = hd / 2;
    for (int64_t t = 0; t < T; t++) {
        const float *restrict co = cs + t * half, *restrict si = cs + T * half + t * half;
        if (t + PFD < T) prefetch_rows(g, ldg, t + PFD, 1, T, hd, 1);
        qat_rope_half_back(g + t * ldg, g + t * ldg + half, d + t * hd, d + t * hd + half, co, si, half, first);
    }
}

/* Rows i0..i0+rb of head h in g (stride ldg, the head's columns from off + h·hd)
 * (+)= the rotary embedding's backward of d (rb, hd), row r at position i0 + r:
 * a block's dq rotated back (qat_rope's backward formula, stored when first). */
static inline void rope_back_block(float *g, int64_t ldg, int64_t off, int64_t b, int64_t T, int64_t i0, int rb,
                                   int64_t h, int64_t hd, const float *d, const float *cs, int first) {
    int64_t half = hd / 2;
    for (int r = 0; r < rb; r++) {
        int64_t i = i0 + r;
        float *gr = g + (b * T + i) * ldg + off + h * hd;
        qat_rope_half_back(gr, gr + half, d + r * hd, d + r * hd + half, cs + i * half, cs + T * half + i * half, half,
                           first);
    }
}

#define RB 4  /* query rows per block: each key row loaded serves RB rows */
#define JB 32 /* keys per score tile: two AVX-512 vectors */
#define FRB32 8 /* query rows per block of the f32 forward (the backward's dK/dV tile needs RB's registers) */

#if defined(__AVX512F__)
/* 16-lane kernels: the path the f32 bits are defined by */
#include "attention_avx512.h"
#define HAVE_ATT_SIMD 1
#define HAVE_ATT_BF16 1       /* attention_bf16.h, for CPUs with AVX512-BF16 */
#define ATT_VW 16             /* lanes: load_head transposes ATT_VW × ATT_VW blocks */
#define att_transpose transpose16
#elif defined(__AVX2__) && defined(__FMA__)
/* 8-lane copies of the kernels above, same names and arguments (AVX2 CPUs, and
 * the generic copy of a portable build) */
#include "attention_avx2.h"
#define HAVE_ATT_SIMD 1
#define HAVE_ATT_BF16 0
#define ATT_VW 8
#define att_transpose transpose8
#else
#define HAVE_ATT_SIMD 0
#define HAVE_ATT_BF16 0
#define ATT_VW 0
#endif

/* Scores of RB query rows against keys [0, n) rounded up to JB, from the
 * transposed keys kt (hd, ldk), ldk a multiple of JB and zero-padded:
 * S[r][j] = α Σ_d q_r[d] kt[d, j]. The RB×JB tile stays in registers over d. */
static inline void block_scores(float *restrict S, int64_t ldS, const float *const q[RB], const float *restrict kt,
                                int64_t n, int64_t hd, int64_t ldk, float alpha) {
#if HAVE_ATT_SIMD
    k_scores(S, ldS, q, kt, n, hd, ldk, alpha, RB);
    return;
#endif
    for (int64_t j0 = 0; j0 < n; j0 += JB) {
        float acc[RB][JB];
        for (int r = 0; r < RB; r++)
            for (int jj = 0; jj < JB; jj++) acc[r][jj] = 0;
        for (int64_t d = 0; d < hd; d++) {
            const float *kr = kt + d * ldk + j0;
            for (int r = 0; r < RB; r++) {
                float qd = q[r][d];
                for (int jj = 0; jj < JB; jj++) acc[r][jj] += qd * kr[jj];
            }
        }
        for (int r = 0; r < RB; r++)
            for (int jj = 0; jj < JB; jj++) S[r * ldS + j0 + jj] = alpha * acc[r][jj];
    }
}

/* Copy head h of sequence b: kt, vt (hd, ldt) transposed and zero-padded to ldt;
 * kr, vr (T, hd) row-major when non-NULL. With cs (the rope table) the keys are
 * rotated first, into kr (then required), and kt is kr's transpose. */

static void load_head(qat_cols k, qat_cols v, int64_t b, int64_t T, int64_t hd, int64_t h, int64_t ldt,
                      float *kt, float *vt, float *kr, float *vr, const float *cs) {
    for (int64_t d = 0; d < hd; d++) {
        for (int64_t t = T; t < ldt; t++) kt[d * ldt + t] = 0;
        if (vt)
            for (int64_t t = T; t < ldt; t++) vt[d * ldt + t] = 0;
    }
    /* the keys' rows: the tensor's, or their rotations in kr (one pass, rows ahead prefetched) */
    const float *k0 = head_row(k, b, T, 0, hd, h);
    int64_t ldk = qat_tensor_cols(k.t), ldv = qat_tensor_cols(v.t);
    if (cs) {
        QAT_ASSERT(kr);
        for (int64_t t = 0; t < T; t++) {
            pf_row(k0, ldk, t, T, hd);
            rope_row(kr + t * hd, k0 + t * ldk, t, T, hd, cs);
        }
        k0 = kr, ldk = hd;
    }
    int64_t t0 = 0; /* rows before t0 are done */
#if HAVE_ATT_SIMD
    if (hd % ATT_VW == 0) {
        for (; t0 + ATT_VW <= T; t0 += ATT_VW) {
            if (!cs) prefetch_rows(k0, ldk, t0 + ATT_VW, ATT_VW, T, hd, 0);
            if (vt || vr) prefetch_rows(head_row(v, b, T, 0, hd, h), ldv, t0 + ATT_VW, ATT_VW, T, hd, 0);
            for (int64_t d0 = 0; d0 < hd; d0 += ATT_VW) {
                att_transpose(kt + d0 * ldt + t0, ldt, k0 + t0 * ldk + d0, ldk);
                if (vt) att_transpose(vt + d0 * ldt + t0, ldt, head_row(v, b, T, t0, hd, h) + d0, ldv);
            }
        }
        for (int64_t t = 0; t < t0; t++) {
            if (kr && !cs) memcpy(kr + t * hd, k0 + t * ldk, (size_t)hd * sizeof(float));
            if (vr) memcpy(vr + t * hd, head_row(v, b, T, t, hd, h), (size_t)hd * sizeof(float));
        }
    }
#endif
    for (int64_t t = t0; t < T; t++) {
        const float *kk = k0 + t * ldk, *vv = head_row(v, b, T, t, hd, h);
        for (int64_t d = 0; d < hd; d++) {
            kt[d * ldt + t] = kk[d];
            if (vt) vt[d * ldt + t] = vv[d];
        }
        if (kr && !cs) memcpy(kr + t * hd, kk, (size_t)hd * sizeof(float));
        if (vr) memcpy(vr + t * hd, vv, (size_t)hd * sizeof(float));
    }
}

/* D[t] = Σ_d g_t[d] o_t[d] for T rows of stride ld: the softmax backward's
 * row term. Each row is summed in d order with separate multiply and add (C11
 * does not contract), so its bits are those of the plain loop; with AVX-512 and
 * hd a multiple of 16, sixteen rows go at once, one per lane, from 16×16
 * transposes (one row's dot product was a scalar loop, ~8% of this backward);
 * with AVX2, eight rows (row_dots8, attention_avx2.h). */
static void row_dots(float *D, const float *g, const float *o, int64_t ld, int64_t T, int64_t hd) {
    int64_t t0 = 0;
#if ATT_VW == 8
    t0 = row_dots8(D, g, o, ld, T, hd);
#elif ATT_VW == 16
    if (hd % 16 == 0) {
        float gt[256], ot[256];
        for (; t0 + 16 <= T; t0 += 16) {
            prefetch_rows(g, ld, t0 + 16, 16, T, hd, 0);
            prefetch_rows(o, ld, t0 + 16, 16, T, hd, 0);
            __m512 acc = _mm512_setzero_ps();
            for (int64_t d0 = 0; d0 < hd; d0 += 16) {
                transpose16(gt, 16, g + t0 * ld + d0, ld);
                transpose16(ot, 16, o + t0 * ld + d0, ld);
                for (int d = 0; d < 16; d++)
                    acc = _mm512_add_ps(acc, _mm512_mul_ps(_mm512_loadu_ps(gt + 16 * d), _mm512_loadu_ps(ot + 16 * d)));
            }
            _mm512_storeu_ps(D + t0, acc);
        }
    }
#endif
    for (int64_t t = t0; t < T; t++) {
        float s = 0;
        for (int64_t d = 0; d < hd; d++) s += g[t * ld + d] * o[t * ld + d];
        D[t] = s;
    }
}

#if HAVE_ATT_BF16
#include "attention_bf16.h"
#endif

/* The bf16 products run (train.precision: bf16) for the head dims the AVX-512
 * kernels cover, on a CPU with AVX512-BF16; otherwise attention stays f32. */
static int att_use_bf16(const qat_tape *tp, int64_t hd) {
#if HAVE_ATT_BF16
    return tp->bf16 && (hd == 16 || hd == 32) && qat_cpu_avx512bf16();
#else
    (void)tp, (void)hd;
    return 0;
#endif
}

/* Two column blocks that never touch the same gradient element. */
static int cols_apart(qat_cols a, qat_cols b) {
    return a.t != b.t || a.off + a.cols <= b.off || b.off + b.cols <= a.off;
}

static void att_backward(qat_tape *tp, void *p) {
    att_ctx *c = p;
    int64_t B = c->B, T = c->T, H = c->heads, C = c->q.cols, hd = C / H;
    int64_t ldt = (T + JB - 1) / JB * JB;
    float alpha = 1.0f / sqrtf((float)hd);
    /* First writers of q, k, v's gradient columns store instead of adding (no
     * clear); only when no two of the three share columns of one tensor (q and k
     * side by side in one rope output are fine), since with overlapping blocks
     * the order in which they are written would matter. */
    int fq = 0, fk = 0, fv = 0;
    float *gq, *gk, *gv;
    if (cols_apart(c->q, c->k) && cols_apart(c->q, c->v) && cols_apart(c->k, c->v)) {
        gq = qat_tensor_grad_cols(c->q.t, tp->epoch, c->q.off, c->q.cols, &fq);
        gk = qat_tensor_grad_cols(c->k.t, tp->epoch, c->k.off, c->k.cols, &fk);
        gv = qat_tensor_grad_cols(c->v.t, tp->epoch, c->v.off, c->v.cols, &fv);
    } else {
        gq = qat_grad(tp, c->q.t), gk = qat_grad(tp, c->k.t), gv = qat_grad(tp, c->v.t);
    }
    int64_t ldq = qat_tensor_cols(c->q.t), ldk = qat_tensor_cols(c->k.t), ldv = qat_tensor_cols(c->v.t);
    const float *gout = qat_grad(tp, c->out), *out = c->out->data;
    float *zero = qat_tape_floats(tp, hd); /* stands in for rows past T in a block */
    memset(zero, 0, (size_t)hd * sizeof(float));
#if HAVE_ATT_BF16
    if (c->bf16) {
        /* q|k|v the three column blocks of one tensor whose product multiplies only
         * its gradient's bf16 copy (model/llama.c declares qkv so: autograd/tensor.h):
         * with rope, as the first writer of every column, write that copy alone and
         * never the f32 gradient (at d256, 3·(M, C) floats written and read again
         * by the product's conversion, a pass saved) */
        qat_tensor *qt = c->q.t;
        uint16_t *g16 = c->cs && gq && gk && gv && fq && fk && fv && qt == c->k.t && qt == c->v.t && qt->grad_bf16 &&
                                qt->grad_bf16_only && ldq == c->q.cols + c->k.cols + c->v.cols
                            ? qt->grad_bf16
                            : NULL;
        int64_t per = att_bf16_bwd_scratch(T, hd, ldt);
        float *scratch = qat_tape_floats(tp, per * att_threads());
#pragma omp parallel for schedule(dynamic, 1)
        for (int64_t bh = 0; bh < B * H; bh++) {
            int64_t b = bh / H, h = bh % H;
            float *dk = scratch + per * att_thread(), *dv = dk + T * hd;
            uint32_t *scr = (uint32_t *)(dv + T * hd);
            if (c->cs) { /* q and k rotated again as the kernel loads them; dq rotated back by it, dk here */
                att_head_bwd_bf16(head_row(c->q, b, T, 0, hd, h), ldq, head_row(c->k, b, T, 0, hd, h), ldk,
                                  head_row(c->v, b, T, 0, hd, h), ldv, out + b * T * C + h * hd,
                                  gout + b * T * C + h * hd, C, c->lse + bh * T,
                                  gq && !g16 ? gq + b * T * ldq + c->q.off + h * hd : NULL,
                                  g16 ? g16 + b * T * ldq + c->q.off + h * hd : NULL, ldq, fq, dk, dv, zero, T, hd, ldt,
                                  alpha, c->cs, scr);
                if (g16) {
                    rope_rows_back_b16(g16 + b * T * ldk + c->k.off + h * hd, ldk, dk, T, hd, c->cs);
                    for (int64_t t = 0; t < T; t++) {
                        float row[32]; /* what the first writer stores below: 0 + dv, so -0 becomes +0 there too */
                        for (int64_t d = 0; d < hd; d++) row[d] = 0.0f + dv[t * hd + d];
                        uint16_t *g = g16 + (b * T + t) * ldv + c->v.off + h * hd;
                        if (t + PFD < T) __builtin_prefetch(g + PFD * ldv, 1, 3);
                        qat_bf16_row(row, g, hd);
                    }
                    continue;
                }
                if (gk) rope_rows_back(gk + b * T * ldk + c->k.off + h * hd, ldk, dk, T, hd, c->cs, fk);
                if (gv)
                    for (int64_t t = 0; t < T; t++) {
                        float *g = gv + (b * T + t) * ldv + c->v.off + h * hd;
                        if (t + PFD < T) prefetch_rows(g, ldv, PFD, 1, T - t, hd, 1);
                        for (int64_t d = 0; d < hd; d++) g[d] = (fv ? 0.0f : g[d]) + dv[t * hd + d];
                    }
                continue;
            }
            att_head_bwd_bf16(head_row(c->q, b, T, 0, hd, h), ldq, head_row(c->k, b, T, 0, hd, h), ldk,
                              head_row(c->v, b, T, 0, hd, h), ldv, out + b * T * C + h * hd, gout + b * T * C + h * hd,
                              C, c->lse + bh * T, gq ? gq + b * T * ldq + c->q.off + h * hd : NULL, NULL, ldq, fq, dk,
                              dv, zero, T, hd, ldt, alpha, NULL, scr);
            for (int64_t t = 0; t < T; t++) {
                if (t + PFD < T) { /* rows a page apart: see pf_row */
                    if (gk) prefetch_rows(gk + (b * T + t) * ldk + c->k.off + h * hd, ldk, PFD, 1, T - t, hd, 1);
                    if (gv) prefetch_rows(gv + (b * T + t) * ldv + c->v.off + h * hd, ldv, PFD, 1, T - t, hd, 1);
                }
                if (gk) {
                    float *g = gk + (b * T + t) * ldk + c->k.off + h * hd;
                    for (int64_t d = 0; d < hd; d++) g[d] = (fk ? 0.0f : g[d]) + dk[t * hd + d];
                }
                if (gv) {
                    float *g = gv + (b * T + t) * ldv + c->v.off + h * hd;
                    for (int64_t d = 0; d < hd; d++) g[d] = (fv ? 0.0f : g[d]) + dv[t * hd + d];
                }
            }
        }
        if (g16) { /* the copy is complete, and the f32 gradient was never written */
            qt->grad_bf16_epoch = tp->epoch;
            qt->grad_skip_epoch = tp->epoch;
        }
        return;
    }
#endif
    /* per thread: kt, vt (hd, ldt); kr, dk, dv (T, hd); P, dS (FRB32, ldt); Dall (T);
     * with rope (cs) also a block's rotated q rows and its dq before the rotation back
     * (FRB32, hd) each */
    const float *cs = c->cs;
    int64_t per = 2 * hd * ldt + 3 * T * hd + 2 * FRB32 * ldt + T + 2 * FRB32 * hd + 32;
    /* Query rows per block: FRB32 with the AVX-512 kernels, as in the forward (the
     * dK/dV and dQ sums still run over rows, resp. keys, in ascending order, and a
     * padding row or key enters with p = ds = 0, so the bits do not depend on it). */
    int BR = RB;
#if HAVE_ATT_SIMD
    if (hd == 16 || hd == 32) BR = FRB32;
#endif
    float *scratch = qat_tape_floats(tp, per * att_threads());
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t bh = 0; bh < B * H; bh++) {
        int64_t b = bh / H, h = bh % H;
        float *kt = scratch + per * att_thread(), *vt = kt + hd * ldt, *kr = vt + hd * ldt;
        float *dk = kr + T * hd, *dv = dk + T * hd, *P = dv + T * hd, *dS = P + FRB32 * ldt, *Dall = dS + FRB32 * ldt;
        float *qrot = Dall + T, *dqrot = qrot + FRB32 * hd;
        load_head(c->k, c->v, b, T, hd, h, ldt, kt, vt, kr, NULL, cs);
        memset(dk, 0, (size_t)(2 * T * hd) * sizeof(float));
        const float *lse = c->lse + bh * T;
        row_dots(Dall, gout + b * T * C + h * hd, out + b * T * C + h * hd, C, T, hd);
        for (int64_t i0 = 0; i0 < T; i0 += BR) {
            int rb = T - i0 < BR ? (int)(T - i0) : BR;
            int64_t n = i0 + rb; /* keys any row of the block sees */
            const float *q[FRB32], *go[FRB32];
            float Di[FRB32];
            for (int r = 0; r < BR; r++) {
                int64_t i = r < rb ? i0 + r : i0;
                q[r] = r < rb ? head_row(c->q, b, T, i, hd, h) : zero;
                if (cs && r < rb) rope_row(qrot + r * hd, q[r], i, T, hd, cs), q[r] = qrot + r * hd;
                go[r] = r < rb ? gout + (b * T + i) * C + h * hd : zero;
                Di[r] = r < rb ? Dall[i] : 0.0f; /* a padding row's P and dS are zeroed below */
            }
            /* dq rows: the gradient's, or (cs) dqrot's, rotated back below */
            float *dq[FRB32];
            for (int r = 0; r < BR; r++)
                dq[r] = r >= rb || !gq ? NULL : cs ? dqrot + r * hd : gq + (b * T + i0 + r) * ldq + c->q.off + h * hd;
            int dq_first = cs ? 1 : fq;
#if HAVE_ATT_SIMD
            if (BR == FRB32) {
                /* the next block's q and do rows, and its dq rows for writing */
                prefetch_rows(head_row(c->q, b, T, 0, hd, h), ldq, i0 + BR, BR, T, hd, 0);
                prefetch_rows(gout + b * T * C + h * hd, C, i0 + BR, BR, T, hd, 0);
                if (gq) prefetch_rows(gq + b * T * ldq + c->q.off + h * hd, ldq, i0 + BR, BR, T, hd, 1);
                k_scores(P, ldt, q, kt, n, hd, ldt, alpha, FRB32);
                k_scores(dS, ldt, go, vt, n, hd, ldt, 1.0f, FRB32);
            } else
#endif
            {
                block_scores(P, ldt, q, kt, n, hd, ldt, alpha);
                block_scores(dS, ldt, go, vt, n, hd, ldt, 1.0f);
            }
            for (int r = 0; r < BR; r++) {
                float *pr = P + r * ldt, *dr = dS + r * ldt;
                int64_t ni = r < rb ? i0 + r + 1 : 0; /* causal: keys 0..i */
                float li = r < rb ? lse[i0 + r] : 0, D = Di[r];
#if HAVE_ATT_SIMD
                softmax_back_row(pr, dr, ni, li, D);
                for (int64_t j = ni; j < n; j++) pr[j] = dr[j] = 0;
                continue;
#endif
#pragma omp simd
                for (int64_t j = 0; j < ni; j++) {
                    float pj = exp_neg(pr[j] - li);
                    pr[j] = pj;
                    dr[j] = pj * (dr[j] - D);
                }
                for (int64_t j = ni; j < n; j++) pr[j] = dr[j] = 0;
            }
#if HAVE_ATT_SIMD
            if (hd == 16 || hd == 32) {
                if (hd == 32) k_dkdv(dv, dk, P, dS, ldt, go, q, n, 2, alpha, FRB32);
                else k_dkdv(dv, dk, P, dS, ldt, go, q, n, 1, alpha, FRB32);
                if (gq) {
                    if (hd == 32) k_pv(dq, dS, ldt, kr, n, 2, !dq_first, alpha, FRB32);
                    else k_pv(dq, dS, ldt, kr, n, 1, !dq_first, alpha, FRB32);
                }
                if (gq && cs) rope_back_block(gq, ldq, c->q.off, b, T, i0, rb, h, hd, dqrot, cs, fq);
                continue;
            }
#endif
            /* dv_j += Σ_r p_rj do_r,  dk_j += α Σ_r ds_rj q_r */
            for (int64_t j = 0; j < n; j++) {
                float *dvj = dv + j * hd, *dkj = dk + j * hd;
                for (int r = 0; r < RB; r++) {
                    float pj = P[r * ldt + j], sj = alpha * dS[r * ldt + j];
                    for (int64_t d = 0; d < hd; d++) {
                        dvj[d] += pj * go[r][d];
                        dkj[d] += sj * q[r][d];
                    }
                }
            }
            /* dq_r += α Σ_j ds_rj k_j */
            if (gq)
                for (int r = 0; r < rb; r++) {
                    float *dqr = dq[r];
                    const float *dr = dS + r * ldt;
                    for (int64_t d0 = 0; d0 < hd; d0 += 32) {
                        int64_t w = hd - d0 < 32 ? hd - d0 : 32;
                        float acc[32] = {0};
                        for (int64_t j = 0; j < n; j++) {
                            float sj = dr[j];
                            const float *kj = kr + j * hd + d0;
                            for (int64_t d = 0; d < w; d++) acc[d] += sj * kj[d];
                        }
                        for (int64_t d = 0; d < w; d++) dqr[d0 + d] = (dq_first ? 0.0f : dqr[d0 + d]) + alpha * acc[d];
                    }
                }
            if (gq && cs) rope_back_block(gq, ldq, c->q.off, b, T, i0, rb, h, hd, dqrot, cs, fq);
        }
        /* dk rotated back when cs (dk starts at +0 and a sum from +0 never becomes -0,
         * so this stores the bits of the 0.0f + dk below followed by qat_rope's backward) */
        float *gkh = gk && !cs ? gk : NULL;
        if (gk && cs) rope_rows_back(gk + b * T * ldk + c->k.off + h * hd, ldk, dk, T, hd, cs, fk);
        for (int64_t t = 0; t < T; t++) {
            if (t % 8 == 0) { /* the rows after these, for writing */
                if (gkh) prefetch_rows(gk + b * T * ldk + c->k.off + h * hd, ldk, t + 8, 8, T, hd, 1);
                if (gv) prefetch_rows(gv + b * T * ldv + c->v.off + h * hd, ldv, t + 8, 8, T, hd, 1);
            }
            if (gkh) {
                float *g = gk + (b * T + t) * ldk + c->k.off + h * hd;
                for (int64_t d = 0; d < hd; d++) g[d] = (fk ? 0.0f : g[d]) + dk[t * hd + d];
            }
            if (gv) {
                float *g = gv + (b * T + t) * ldv + c->v.off + h * hd;
                for (int64_t d = 0; d < hd; d++) g[d] = (fv ? 0.0f : g[d]) + dv[t * hd + d];
            }
        }
    }
}

/* cs: q and k are rotated (the rope table, rope_table) as each head is loaded, in
 * the f32 and the bf16 kernels alike, and their gradients rotated back as they are
 * stored, so no rotated copy of q|k or of its gradient is ever kept */
static qat_tensor *attention(qat_tape *tp, qat_cols q, qat_cols k, qat_cols v, int64_t B, int64_t T, int heads,
                             const float *cs) {
    int64_t C = q.cols, H = heads, hd = C / H;
    QAT_ASSERT(k.cols == C && v.cols == C && C % H == 0);
    QAT_ASSERT(qat_tensor_rows(q.t) == B * T && qat_tensor_rows(k.t) == B * T && qat_tensor_rows(v.t) == B * T);
    int64_t ldt = (T + JB - 1) / JB * JB;
    float alpha = 1.0f / sqrtf((float)hd);
    float *lse = qat_tape_floats(tp, B * H * T);
    qat_tensor *o = qat_tape_tensor(tp, 2, (int64_t[]){B * T, C});
    int bf16 = att_use_bf16(tp, hd);
#if HAVE_ATT_BF16
    if (bf16) {
        int64_t per = att_bf16_fwd_scratch(T, hd, ldt);
        float *scratch = qat_tape_floats(tp, per * att_threads());
#pragma omp parallel for schedule(dynamic, 1)
        for (int64_t bh = 0; bh < B * H; bh++) {
            int64_t b = bh / H, h = bh % H;
            att_head_fwd_bf16(head_row(q, b, T, 0, hd, h), qat_tensor_cols(q.t), head_row(k, b, T, 0, hd, h),
                              qat_tensor_cols(k.t), head_row(v, b, T, 0, hd, h), qat_tensor_cols(v.t),
                              o->data + b * T * C + h * hd, C, lse + bh * T, T, hd, ldt, alpha, cs,
                              (uint32_t *)(scratch + per * att_thread()));
        }
    }
#endif
    /* the f32 path (a loop of no iterations after the bf16 one); per thread: kt
     * (hd, ldt); vr (T, hd); S (FRB32, ldt); with rope (cs) also the rotated keys kr
     * (T, hd) and a block's rotated q rows (FRB32, hd) */
    int64_t per = hd * ldt + T * hd + FRB32 * ldt + (cs ? T * hd + FRB32 * hd : 0) + 32;
    float *scratch = bf16 ? NULL : qat_tape_floats(tp, per * att_threads());
#pragma omp parallel for schedule(dynamic, 1) if (!bf16)
    for (int64_t bh = 0; bh < (bf16 ? 0 : B * H); bh++) {
        int64_t b = bh / H, h = bh % H;
        float *kt = scratch + per * att_thread(), *vr = kt + hd * ldt, *S = vr + T * hd;
        float *kr = cs ? S + FRB32 * ldt : NULL, *qrot = cs ? kr + T * hd : NULL;
        load_head(k, v, b, T, hd, h, ldt, kt, NULL, kr, vr, cs);
#if HAVE_ATT_SIMD
        /* FRB32 rows per block: each key vector loaded serves twice the rows of
         * RB's. A row's sums run over the same keys in the same order (a block's
         * later keys enter its earlier rows with p = 0, adding exactly 0), so the
         * bits do not depend on the block height. */
        if (hd == 16 || hd == 32) {
            for (int64_t i0 = 0; i0 < T; i0 += FRB32) {
                int rb = T - i0 < FRB32 ? (int)(T - i0) : FRB32;
                int64_t n = i0 + rb;
                const float *qr[FRB32];
                float *orow[FRB32];
                for (int r = 0; r < FRB32; r++) {
                    qr[r] = head_row(q, b, T, r < rb ? i0 + r : i0, hd, h);
                    if (cs) qr[r] = r < rb ? (rope_row(qrot + r * hd, qr[r], i0 + r, T, hd, cs), qrot + r * hd) : qrot;
                    orow[r] = r < rb ? o->data + (b * T + i0 + r) * C + h * hd : NULL; /* padding rows: not stored */
                }
                prefetch_rows(head_row(q, b, T, 0, hd, h), qat_tensor_cols(q.t), i0 + FRB32, FRB32, T, hd, 0);
                prefetch_rows(o->data + b * T * C + h * hd, C, i0 + FRB32, FRB32, T, hd, 1);
                k_scores(S, ldt, qr, kt, n, hd, ldt, alpha, FRB32);
                softmax_rows_exact(S, ldt, i0, rb, lse + bh * T + i0);
                for (int r = 0; r < rb; r++)
                    for (int64_t j = i0 + r + 1; j < n; j++) S[r * ldt + j] = 0;
                if (hd == 32) k_pv(orow, S, ldt, vr, n, 2, 0, 1.0f, FRB32);
                else k_pv(orow, S, ldt, vr, n, 1, 0, 1.0f, FRB32);
            }
            continue;
        }
#endif
        for (int64_t i0 = 0; i0 < T; i0 += RB) {
            int rb = T - i0 < RB ? (int)(T - i0) : RB;
            int64_t n = i0 + rb;
            const float *qr[RB];
            for (int r = 0; r < RB; r++) {
                qr[r] = head_row(q, b, T, r < rb ? i0 + r : i0, hd, h);
                if (cs) qr[r] = r < rb ? (rope_row(qrot + r * hd, qr[r], i0 + r, T, hd, cs), qrot + r * hd) : qrot;
            }
            block_scores(S, ldt, qr, kt, n, hd, ldt, alpha);
            for (int r = 0; r < rb; r++) {
                int64_t i = i0 + r, ni = i + 1;
                float *s = S + r * ldt;
#if HAVE_ATT_SIMD
                lse[bh * T + i] = softmax_row_exact(s, ni);
                for (int64_t j = ni; j < n; j++) s[j] = 0;
                continue;
#endif
                /* simd reductions: a fixed lane order per build, so still reproducible */
                float mx = s[0];
#pragma omp simd reduction(max : mx)
                for (int64_t j = 1; j < ni; j++) mx = s[j] > mx ? s[j] : mx;
                float sum = 0;
#pragma omp simd reduction(+ : sum)
                for (int64_t j = 0; j < ni; j++) {
                    s[j] = exp_neg(s[j] - mx);
                    sum += s[j];
                }
                lse[bh * T + i] = mx + logf(sum);
                float inv = 1.0f / sum;
                for (int64_t j = 0; j < ni; j++) s[j] *= inv;
                for (int64_t j = ni; j < n; j++) s[j] = 0;
            }
            /* out_r = Σ_j p_rj v_j for the block's rows, v_j loaded once for all */
            for (int64_t d0 = 0; d0 < hd; d0 += 32) {
                int64_t w = hd - d0 < 32 ? hd - d0 : 32;
                float acc[RB][32];
                for (int r = 0; r < RB; r++)
                    for (int64_t d = 0; d < 32; d++) acc[r][d] = 0;
                for (int64_t j = 0; j < n; j++) {
                    const float *vj = vr + j * hd + d0;
                    for (int r = 0; r < RB; r++) {
                        float pj = S[r * ldt + j];
                        for (int64_t d = 0; d < w; d++) acc[r][d] += pj * vj[d];
                    }
                }
                for (int r = 0; r < rb; r++) {
                    float *orow = o->data + (b * T + i0 + r) * C + h * hd + d0;
                    for (int64_t d = 0; d < w; d++) orow[d] = acc[r][d];
                }
            }
        }
    }
    if (tp->grad_enabled) {
        att_ctx *c = qat_tape_ctx(tp, sizeof *c);
        c->q = q; c->k = k; c->v = v; c->out = o; c->lse = lse; c->B = B; c->T = T; c->heads = heads;
        c->bf16 = bf16; c->cs = cs;
        qat_tape_push(tp, att_backward, c);
    }
    return o;
}

qat_tensor *qat_attention(qat_tape *tp, qat_cols q, qat_cols k, qat_cols v, int64_t B, int64_t T, int heads) {
    return attention(tp, q, k, v, B, T, heads, NULL);
}

qat_tensor *qat_attention_rot(qat_tape *tp, qat_cols q, qat_cols k, qat_cols v, int64_t B, int64_t T, int heads,
                              const float *cs) {
    QAT_ASSERT((q.cols / heads) % 2 == 0);
    return attention(tp, q, k, v, B, T, heads, cs);
}

#if QAT_ISA_DISPATCH
#undef qat_attention
qat_tensor *qat_attention_avx512(qat_tape *tp, qat_cols q, qat_cols k, qat_cols v, int64_t B, int64_t T, int heads);

qat_tensor *qat_attention(qat_tape *tp, qat_cols q, qat_cols k, qat_cols v, int64_t B, int64_t T, int heads) {
    if (qat_cpu_avx512()) return qat_attention_avx512(tp, q, k, v, B, T, heads);
    return qat_attention_generic(tp, q, k, v, B, T, heads);
}

#undef qat_attention_rot
qat_tensor *qat_attention_rot_avx512(qat_tape *tp, qat_cols q, qat_cols k, qat_cols v, int64_t B, int64_t T, int heads,
                                     const float *cs);
qat_tensor *qat_attention_rot_generic(qat_tape *tp, qat_cols q, qat_cols k, qat_cols v, int64_t B, int64_t T,
                                      int heads, const float *cs);

qat_tensor *qat_attention_rot(qat_tape *tp, qat_cols q, qat_cols k, qat_cols v, int64_t B, int64_t T, int heads,
                              const float *cs) {
    if (qat_cpu_avx512()) return qat_attention_rot_avx512(tp, q, k, v, B, T, heads, cs);
    return qat_attention_rot_generic(tp, q, k, v, B, T, heads, cs);
}
#endif
