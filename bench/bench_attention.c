/*
 * bench/bench_attention.c — qat's causal attention against oneDNN's batched
 * products at the same shape: would attention's products run faster as library
 * matmuls (issue 21, "attention on the matrix units")?
 *
 * Two timings, best of R repetitions after two warm-ups, OMP_NUM_THREADS cores:
 *  1. qat_rope_attention (autograd/ops_rope.c) forward and backward, in bf16
 *     (the tape's bf16 step) or f32: everything attention costs in a step —
 *     RoPE, the products, the online softmax, the gradient's scatter.
 *  2. The products alone as oneDNN batched bf16 matmuls with f32 results, one
 *     call per 64-row query block over all (batch, head) pairs, reading q, k, v
 *     where the qkv rows hold them (strides, no copy) and skipping the key
 *     blocks the causal mask removes, as the hand kernels do: the forward's two
 *     (S = Q·Kᵀ, O = P·V) and the backward's five (S again, dP = dO·Vᵀ,
 *     dV = Pᵀ·dO, dQ = dS·K, dK = dSᵀ·Q). No softmax: this is a lower bound on
 *     a library path's time, and where it is not below (1), such a path cannot
 *     win on this CPU.
 * On an AMX CPU oneDNN runs (2) on the tiles (ONEDNN_VERBOSE=1 shows
 * avx512_core_amx); elsewhere on AVX512-BF16 (or refuses: bf16 needs it).
 *
 * Usage: bench_attention [B T H HD [REPS]]   (default 16 256 8 32 30: the
 * d256/l6/h8/t256 model of bench_train, 4096 tokens)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "autograd/gemm.h"
#include "autograd/ops.h"
#include "autograd/tape.h"
#include "core/error.h"
#include "tests/gradcheck.h" /* gc_param, gc_fill, gc_dot: a loss to run the backward from */

enum { QB = 64 }; /* query rows per block, as the hand kernels tile */

/* Best time (s) of qat_rope_attention's forward and backward. */
static void time_qat(int bf16, int64_t B, int64_t T, int H, int64_t C, int reps, double *fwd, double *bwd) {
    int64_t M = B * T;
    qat_tensor *qkv = gc_param(2, (int64_t[]){M, 3 * C}, 1, 1.0f); // (B·T, 3C)
    float *R = malloc((size_t)(M * C) * sizeof *R);                 // (B·T, C)
    gc_fill(R, M * C, 2, 1.0f);
    qat_tape tp;
    qat_tape_init(&tp, (size_t)1 << 28);
    *fwd = *bwd = 1e30;
    for (int r = 0; r < reps + 2; r++) {
        qat_tape_reset(&tp);
        tp.bf16 = bf16;
        memset(qkv->grad, 0, (size_t)(M * 3 * C) * sizeof(float));
        qkv->grad_epoch = tp.epoch;
        double t0 = omp_get_wtime();
        qat_tensor *o = qat_rope_attention(&tp, qkv, B, T, H, 10000.0);
        double t1 = omp_get_wtime();
        qat_tensor *loss;
        gc_dot(&tp, o, R, &loss);
        double t2 = omp_get_wtime();
        qat_tape_backward(&tp, loss);
        double t3 = omp_get_wtime();
        if (r >= 2 && t1 - t0 < *fwd) *fwd = t1 - t0;
        if (r >= 2 && t3 - t2 < *bwd) *bwd = t3 - t2;
    }
    qat_tape_free(&tp);
    free(R);
    gc_param_free(qkv);
}

/* One batched product over (B, H) for query block i: C[b,h] (QB, N) = A[b,h] (QB, K) · Bm[b,h] (K, N).
 * Strides in elements; a_* of A, b_* of Bm, c_* of C, each (batch b, head h, row, col). */
typedef struct {
    int64_t N, K, M;
    int64_t as[4], bs[4], cs[4];
    int acc; /* 1: C += A·Bm (a gradient summed over query blocks, as dK and dV are) */
} prod;

static double run_prod(const prod *p, int64_t B, int H, const void *A, const void *Bm, float *Cm) {
    qat_gemm_desc d = {0};
    d.b0 = B; d.b1 = H; d.M = p->M; d.N = p->N; d.K = p->K; d.bf16 = 1;
    d.a_s0 = p->as[0]; d.a_s1 = p->as[1]; d.a_rs = p->as[2]; d.a_cs = p->as[3];
    d.b_s0 = p->bs[0]; d.b_s1 = p->bs[1]; d.b_rs = p->bs[2]; d.b_cs = p->bs[3];
    d.c_s0 = p->cs[0]; d.c_s1 = p->cs[1]; d.c_rs = p->cs[2]; d.c_cs = p->cs[3];
    d.accumulate = p->acc;
    qat_gemm_run(&d, A, Bm, Cm);
    return 2.0 * (double)B * H * p->M * p->N * p->K;
}

/* Best time (s) and FLOPs of the forward's and the backward's products through oneDNN. */
static void time_onednn(int64_t B, int64_t T, int H, int64_t hd, int reps, double *fwd, double *bwd, double *ffl,
                        double *bfl) {
    int64_t C = H * hd, row = 3 * C, seq = T * row;
    uint16_t *qkv = malloc((size_t)(B * seq) * sizeof *qkv); // (B·T, 3C) bf16, as the bf16 step keeps it
    uint16_t *dout = malloc((size_t)(B * T * C) * sizeof *dout); // (B·T, C) bf16
    for (int64_t i = 0; i < B * seq; i++) qkv[i] = (uint16_t)(0x3c00 + (i * 2654435761u >> 24) % 256);
    for (int64_t i = 0; i < B * T * C; i++) dout[i] = (uint16_t)(0x3c00 + (i * 40503u >> 8) % 256);
    uint16_t *P = calloc((size_t)(B * H * QB * T), sizeof *P);   // (B, H, QB, ≤T) bf16: softmax / dS of a block
    float *S = calloc((size_t)(B * H * QB * T), sizeof *S);      // (B, H, QB, ≤T) f32 scores
    float *O = calloc((size_t)(B * T * C), sizeof *O);           // (B·T, C): O, dQ
    float *dKV = calloc((size_t)(B * T * 2 * C), sizeof *dKV);   // (B·T, 2C): dK | dV
    *fwd = *bwd = 1e30;
    for (int r = 0; r < reps + 2; r++) {
        double fl_f = 0, fl_b = 0, t0 = omp_get_wtime();
        for (int64_t i = 0; i < T / QB; i++) {
            int64_t kend = (i + 1) * QB, sbh = QB * kend;
            const uint16_t *q = qkv + i * QB * row, *k = qkv + C, *v = qkv + 2 * C;
            prod s = {kend, hd, QB, {seq, hd, row, 1}, {seq, hd, 1, row}, {H * sbh, sbh, kend, 1}, 0};
            prod o = {hd, kend, QB, {H * sbh, sbh, kend, 1}, {seq, hd, row, 1}, {T * C, hd, C, 1}, 0};
            fl_f += run_prod(&s, B, H, q, k, S);
            fl_f += run_prod(&o, B, H, P, v, O + i * QB * C);
        }
        double t1 = omp_get_wtime();
        for (int64_t i = 0; i < T / QB; i++) {
            int64_t kend = (i + 1) * QB, sbh = QB * kend;
            const uint16_t *q = qkv + i * QB * row, *k = qkv + C, *v = qkv + 2 * C, *dO = dout + i * QB * C;
            prod s = {kend, hd, QB, {seq, hd, row, 1}, {seq, hd, 1, row}, {H * sbh, sbh, kend, 1}, 0};
            prod dp = {kend, hd, QB, {T * C, hd, C, 1}, {seq, hd, 1, row}, {H * sbh, sbh, kend, 1}, 0};
            /* dV (kend, hd) = Pᵀ (kend, QB) · dO (QB, hd); dK = dSᵀ · Q likewise */
            prod dv = {hd, QB, kend, {H * sbh, sbh, 1, kend}, {T * C, hd, C, 1}, {T * 2 * C, hd, 2 * C, 1}, 1};
            prod dk = {hd, QB, kend, {H * sbh, sbh, 1, kend}, {seq, hd, row, 1}, {T * 2 * C, hd, 2 * C, 1}, 1};
            prod dq = {hd, kend, QB, {H * sbh, sbh, kend, 1}, {seq, hd, row, 1}, {T * C, hd, C, 1}, 0};
            fl_b += run_prod(&s, B, H, q, k, S);
            fl_b += run_prod(&dp, B, H, dO, v, S);
            fl_b += run_prod(&dv, B, H, P, dO, dKV + C);
            fl_b += run_prod(&dq, B, H, P, k, O + i * QB * C);
            fl_b += run_prod(&dk, B, H, P, q, dKV);
        }
        double t2 = omp_get_wtime();
        if (r >= 2 && t1 - t0 < *fwd) *fwd = t1 - t0;
        if (r >= 2 && t2 - t1 < *bwd) *bwd = t2 - t1;
        *ffl = fl_f;
        *bfl = fl_b;
    }
    free(qkv); free(dout); free(P); free(S); free(O); free(dKV);
}

int main(int argc, char **argv) {
    int64_t B = argc > 4 ? atoll(argv[1]) : 16, T = argc > 4 ? atoll(argv[2]) : 256;
    int H = argc > 4 ? atoi(argv[3]) : 8;
    int64_t hd = argc > 4 ? atoll(argv[4]) : 32;
    int reps = argc > 5 ? atoi(argv[5]) : 30;
    if (B < 1 || T < QB || T % QB || H < 1 || hd < 2 || hd % 2 || reps < 1) {
        fprintf(stderr, "bench_attention: expected B >= 1, T a multiple of %d, H >= 1, HD even, REPS >= 1\n", QB);
        return 2;
    }
    const char *isa = NULL;
    int bf16 = qat_gemm_bf16_supported(&isa);
    printf("bench_attention: B %lld, T %lld, H %d, head dim %lld, %d threads, oneDNN ISA %s\n", (long long)B,
           (long long)T, H, (long long)hd, omp_get_max_threads(), isa ? isa : "?");
    double f, b;
    time_qat(0, B, T, H, H * hd, reps, &f, &b);
    printf("  qat attention, f32:   forward %.2f ms, backward %.2f ms\n", f * 1e3, b * 1e3);
    if (!bf16) {
        printf("  (no native bf16 products here: the bf16 rows are not measured)\n");
        return 0;
    }
    double qf, qb, of, ob, ff, bfl;
    time_qat(1, B, T, H, H * hd, reps, &qf, &qb);
    printf("  qat attention, bf16:  forward %.2f ms, backward %.2f ms\n", qf * 1e3, qb * 1e3);
    time_onednn(B, T, H, hd, reps, &of, &ob, &ff, &bfl);
    printf("  oneDNN products only: forward %.2f ms (%.0f GFLOP/s), backward %.2f ms (%.0f GFLOP/s); "
           "%.0f%% and %.0f%% of qat's bf16 times, before any softmax\n",
           of * 1e3, ff / of * 1e-9, ob * 1e3, bfl / ob * 1e-9, 100 * of / qf, 100 * ob / qb);
    qat_gemm_shutdown();
    return 0;
}
