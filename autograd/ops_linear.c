/*
 * autograd/ops_linear.c — y = Q_a(x)·Q_w(W)ᵀ, the only op that touches formats.
 *
 * The two operands pass through their quantizers (compress/quantizer.h) and
 * are multiplied in the rotated domain; oneDNN does the three products:
 *
 *     forward   y  (M,N) = x̂ (M,K) · Ŵᵀ (K,N)
 *     backward  dx̂ (M,K) = dy (M,N) · Ŵ (N,K)        → quantizer backward → dx
 *               dŴ (N,K) = dyᵀ (N,M) · x̂ (M,K)       → quantizer backward → dW
 *
 * For an uncompressed operand the quantizer is skipped and the product
 * accumulates straight into the gradient (oneDNN's sum post-op), with no scratch.
 *
 * With tape->bf16 (train.precision: bf16) the operands are rounded to bf16 right
 * before the products — after quantization, so quantizers see f32, and hand over
 * bf16 rows (qat_quantizer_forward_bf16) — and the products accumulate in f32: x̂
 * and Ŵ once in the forward (kept for the backward), dy once in the backward,
 * used by both of its products (or written by dy's producer already, where it
 * wrote y->grad_bf16, autograd/tensor.h). An unquantized x whose producer already wrote
 * its bf16 copy (x->bf16: the norms, SwiGLU) is multiplied as is, unconverted.
 *
 * With a gradients format (compress.gradients, compress/gradq.h) the backward
 * products multiply quantized operands instead, each quantized along the
 * product's inner dimension into the tape's one quantized-operand scratch:
 *
 *     dx̂ (M,K) = Q(dy along N) · Q(Ŵ along N)          → quantizer backward → dx
 *     dŴ (N,K) = Q(dy along M)ᵀ · Q(x̂ along M)         → quantizer backward → dW
 *
 * x̂ and Ŵ are the operands the forward multiplied (its bf16 copies in a bf16 run),
 * and with bf16 products the quantized operands are written as bf16 directly.
 */
#include "compress/gradq.h"
#include "compress/quantizer.h"
#include "core/error.h"
#include "gemm.h"
#include "ops.h"

typedef struct {
    qat_tensor *x, *W, *out;        /* (M,K), (N,K), (M,N) */
    const float *xq, *Wq;           /* operands as multiplied (may alias x, W) */
    qat_quantizer *qa, *qw;         /* NULL when the operand is fp32 */
    const uint16_t *xb, *Wb;        /* bf16 copies of xq, Wq (NULL: f32 products) */
    const qat_gradq *gq;            /* backward operands' format, or NULL: unquantized backward */
    uint64_t gkey;                  /* this linear's key for the backward's random draws */
    int64_t step;                   /* training step (keys the draws) */
} linear_ctx;

static int is_id(qat_quantizer *q) { return !q || qat_quantizer_is_identity(q); }

static void qa_row(const void *q, const float *src, int64_t r, float *dst, float *scratch) {
    qat_quantizer_backward_row(q, src, r, dst, scratch);
}

/* Where dx̂ goes before the activation quantizer's backward: the tape's deferred
 * buffer when x's producer applies that backward row by row (autograd/tensor.h:
 * x declared so, this is its first gradient, the backward is a row map), and
 * then x's gradient is left unwritten; else the shared scratch, and the backward
 * runs here. Returns 1 when deferred. */
static int dxq_buffer(qat_tape *tp, const linear_ctx *c, int fx, int64_t M, int64_t K, float **gxq) {
    qat_tensor *x = c->x;
    if (fx && x->grad_by_rows && qat_quantizer_backward_by_rows(c->qa)) {
        *gxq = qat_tape_defer(tp, M * K);
        x->grad_row = qa_row;
        x->grad_row_ctx = c->qa;
        x->grad_row_src = *gxq;
        x->grad_row_epoch = tp->epoch;
        x->grad_row_gen = tp->defer_gen;
        x->grad_skip_epoch = tp->epoch; /* the f32 gradient holds garbage: handing it out asserts */
        return 1;
    }
    *gxq = qat_tape_reuse(tp, M * K);
    return 0;
}

/* One product of the backward on the operands as the forward multiplied them:
 * f32 arrays, or bf16 ones (uint16_t) with f32 accumulation. The precision is
 * chosen once per product, never per element. */
static void product(int bf16, int ta, int tb, int64_t m, int64_t n, int64_t k, const void *A, int64_t lda,
                    const void *B, int64_t ldb, float *C, int64_t ldc, int accumulate) {
    if (bf16) qat_gemm_bf16(ta, tb, m, n, k, A, lda, B, ldb, C, ldc, accumulate);
    else qat_gemm(ta, tb, m, n, k, A, lda, B, ldb, C, ldc, accumulate);
}

/* Quantize one operand of a backward product into dst (bf16 when the products
 * are): src is f32 (srcf) or bf16 (srcb). */
static void quantize_into(const linear_ctx *c, int bf16, const float *srcf, const uint16_t *srcb, void *dst,
                          int64_t rows, int64_t cols, int along, int which, int product) {
    qat_gradq_op op = {0};
    op.x = srcf;
    op.xb = srcf ? NULL : srcb;
    if (bf16) op.yb = dst;
    else op.y = dst;
    op.rows = rows, op.cols = cols, op.along = along;
    op.key = qat_gradq_key(c->gkey, c->step, which);
    op.sign_key = qat_gradq_key(c->gkey, c->step, product);
    qat_gradq_run(c->gq, &op);
}

/* The backward with quantized operands (compress/gradq.h): same structure as the
 * unquantized one, the products read the quantized buffers. */
static void linear_backward_q(qat_tape *tp, linear_ctx *c, const float *gy, float *gx, int fx, float *gW) {
    int64_t M = qat_tensor_rows(c->x), K = qat_tensor_cols(c->x), N = c->W->shape[0];
    const int bf16 = c->xb != NULL;
    const size_t es = bf16 ? sizeof(uint16_t) : sizeof(float);
    const float alpha = qat_gradq_product_scale(c->gq); /* 16/9 for MX's range matching, else 1 */
    /* one region for both operands of either product: dY (M,N) then Ŵ (N,K) or x̂ (M,K) */
    char *buf = qat_tape_gq_scratch(tp, es * (size_t)(M * N + (N > M ? N : M) * K));
    void *A = buf, *B = buf + es * (size_t)(M * N);
    if (gx) {
        quantize_into(c, bf16, gy, NULL, A, M, N, QAT_GQ_ALONG_ROWS, 1, 5);     // (M, N)
        quantize_into(c, bf16, c->Wq, c->Wb, B, N, K, QAT_GQ_ALONG_COLS, 2, 5); // (N, K)
        if (!c->qa) {
            qat_gemm_scaled(bf16, 0, 0, M, K, N, A, N, B, K, gx, K, !fx, alpha);
        } else {
            float *gxq;
            int deferred = dxq_buffer(tp, c, fx, M, K, &gxq);
            qat_gemm_scaled(bf16, 0, 0, M, K, N, A, N, B, K, gxq, K, 0, alpha);
            if (!deferred) qat_quantizer_backward_into(c->qa, gxq, gx, M, fx);
        }
    }
    if (gW) {
        quantize_into(c, bf16, gy, NULL, A, M, N, QAT_GQ_ALONG_COLS, 3, 6);     // (M, N)
        quantize_into(c, bf16, c->xq, c->xb, B, M, K, QAT_GQ_ALONG_COLS, 4, 6); // (M, K)
        if (!c->qw) {
            qat_gemm_scaled(bf16, 1, 0, N, K, M, A, N, B, K, gW, K, 1, alpha);
        } else {
            float *gWq = qat_tape_reuse(tp, N * K);
            qat_gemm_scaled(bf16, 1, 0, N, K, M, A, N, B, K, gWq, K, 0, alpha);
            qat_quantizer_backward(c->qw, gWq, gW, N);
        }
    }
}

/* The two products of the backward, for both precisions: with bf16 operands dy
 * is rounded once and used by both. */
static void linear_backward(qat_tape *tp, void *p) {
    linear_ctx *c = p;
    int64_t M = qat_tensor_rows(c->x), K = qat_tensor_cols(c->x), N = c->W->shape[0];
    /* dy's bf16 copy, when its producer wrote one and nobody touched dy since */
    const int gyb_ready = c->out->grad_bf16 && c->out->grad_bf16_epoch == tp->epoch;
    const int bf16 = c->xb != NULL;
    /* the f32 dy only where it is read: a ready bf16 copy may be all there is (autograd/tensor.h) */
    const float *gy = bf16 && gyb_ready && !c->gq ? NULL : qat_grad(tp, c->out);
    /* an fp32 input's gradient is the product itself: its first writer stores (no clear) */
    int fx = 0;
    float *gx = qat_grad_all(tp, c->x, &fx), *gW = qat_grad(tp, c->W);
    if (!gx && !gW) return;
    if (c->gq) {
        linear_backward_q(tp, c, gy, gx, fx, gW);
        return;
    }
    const void *g = gy, *xop = c->xq, *Wop = c->Wq;
    if (bf16) {
        uint16_t *gyb = c->out->grad_bf16;
        if (!gyb) gyb = (uint16_t *)qat_arena_alloc(&tp->arena, (size_t)(M * N) * sizeof(uint16_t));
        if (!gyb_ready) qat_to_bf16(gy, gyb, M * N);
        g = gyb, xop = c->xb, Wop = c->Wb;
    }
    if (gx) {
        if (is_id(c->qa)) {
            product(bf16, 0, 0, M, K, N, g, N, Wop, K, gx, K, !fx);
        } else {
            float *gxq;
            int deferred = dxq_buffer(tp, c, fx, M, K, &gxq);
            product(bf16, 0, 0, M, K, N, g, N, Wop, K, gxq, K, 0);
            if (!deferred) qat_quantizer_backward_into(c->qa, gxq, gx, M, fx);
        }
    }
    if (gW) {
        if (is_id(c->qw)) {
            product(bf16, 1, 0, N, K, M, g, N, xop, K, gW, K, 1);
        } else {
            float *gWq = qat_tape_reuse(tp, N * K);
            product(bf16, 1, 0, N, K, M, g, N, xop, K, gWq, K, 0);
            qat_quantizer_backward(c->qw, gWq, gW, N);
        }
    }
}

qat_quantizer *qat_linear_feed(qat_tape *tp, qat_tensor *t, qat_quantizer *qa, int64_t step, qat_out *out) {
    *out = is_id(qa) ? QAT_OUT_BF16 : QAT_OUT_F32;
    if (is_id(qa) || !qat_quantizer_forward_by_rows(qa)) return NULL;
    int64_t M = qat_tensor_rows(t), K = qat_tensor_cols(t);
    qat_quantizer_rows_begin(qa, M, step);
    t->data = NULL;
    t->quant_by = qa;
    t->quant_step = step;
    if (tp->bf16) t->quant_bf16 = (uint16_t *)qat_arena_alloc(&tp->arena, (size_t)(M * K) * sizeof(uint16_t));
    else t->quant = qat_tape_floats(tp, M * K);
    return qa;
}

qat_tensor *qat_linear(qat_tape *tp, qat_tensor *x, qat_tensor *W,
                       qat_quantizer *qa, qat_quantizer *qw, int64_t step) {
    return qat_linear_gq(tp, x, W, qa, qw, NULL, 0, step);
}

qat_tensor *qat_linear_gq(qat_tape *tp, qat_tensor *x, qat_tensor *W, qat_quantizer *qa, qat_quantizer *qw,
                          const qat_gradq *gq, uint64_t gkey, int64_t step) {
    int64_t M = qat_tensor_rows(x), K = qat_tensor_cols(x), N = W->shape[0];
    QAT_ASSERT(W->ndim == 2 && W->shape[1] == K);
    /* an input its producer rounded through qa row by row (qat_linear_feed) */
    const int fed = !is_id(qa) && x->quant_by == qa;
    QAT_ASSERT(!fed || x->quant_step == step);
    /* an input with its bf16 copy only (QAT_OUT_BF16, autograd/ops.h) feeds a bf16 product unquantized */
    QAT_ASSERT(x->data || fed || (tp->bf16 && is_id(qa) && x->bf16));
    const float *xq = x->data, *Wq = W->data;
    int64_t shape[QAT_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) shape[i] = x->shape[i];
    shape[x->ndim - 1] = N;
    uint16_t *xb = NULL, *Wb = NULL;
    if (tp->bf16) {
        /* quantizers hand over bf16 rows directly; the f32 buffers are their scratch */
        Wb = (uint16_t *)qat_arena_alloc(&tp->arena, (size_t)(N * K) * sizeof(uint16_t));
        if (is_id(qa) && x->bf16) {
            xb = x->bf16; /* its producer wrote the bf16 copy (autograd/tensor.h) */
        } else if (fed) {
            QAT_ASSERT(x->quant_bf16);
            xb = x->quant_bf16;
        } else {
            xb = (uint16_t *)qat_arena_alloc(&tp->arena, (size_t)(M * K) * sizeof(uint16_t));
            if (!is_id(qa)) qat_quantizer_forward_bf16(qa, x->data, xb, qat_tape_floats(tp, M * K), M, step);
            else qat_to_bf16(x->data, xb, M * K);
        }
        if (!is_id(qw)) qat_quantizer_forward_bf16(qw, W->data, Wb, qat_tape_floats(tp, N * K), N, step);
        else qat_to_bf16(W->data, Wb, N * K);
        xq = Wq = NULL; /* the backward of a bf16 product reads xb and Wb only */
    } else {
        if (fed) {
            QAT_ASSERT(x->quant);
            xq = x->quant;
        } else if (!is_id(qa)) {
            float *buf = qat_tape_floats(tp, M * K);
            qat_quantizer_forward(qa, x->data, buf, M, step);
            xq = buf;
        }
        if (!is_id(qw)) {
            float *buf = qat_tape_floats(tp, N * K);
            qat_quantizer_forward(qw, W->data, buf, N, step);
            Wq = buf;
        }
    }
    qat_tensor *y = qat_tape_tensor(tp, x->ndim, shape);
    if (tp->bf16) qat_gemm_bf16(0, 1, M, N, K, xb, K, Wb, K, y->data, N, 0);
    else qat_gemm(0, 1, M, N, K, xq, K, Wq, K, y->data, N, 0);
    if (tp->grad_enabled) {
        /* room for dy's bf16 copy, which dy's producer may fill (autograd/tensor.h) */
        if (tp->bf16 && !qat_gradq_on(gq))
            y->grad_bf16 = (uint16_t *)qat_arena_alloc(&tp->arena, (size_t)(M * N) * sizeof(uint16_t));
        linear_ctx *c = qat_tape_ctx(tp, sizeof *c);
        c->x = x; c->W = W; c->out = y; c->xq = xq; c->Wq = Wq; c->xb = xb; c->Wb = Wb;
        c->qa = is_id(qa) ? NULL : qa;
        c->qw = is_id(qw) ? NULL : qw;
        c->gq = qat_gradq_on(gq) ? gq : NULL;
        c->gkey = gkey;
        c->step = step;
        qat_tape_push(tp, linear_backward, c);
    }
    return y;
}
