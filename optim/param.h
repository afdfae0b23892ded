/*
 * optim/param.h — a trainable array as the optimizer and checkpoints see it.
 *
 * The model describes its parameters as a list of views into its buffers; the
 * optimizer, the gradient clipper and the checkpoint writer work on that list
 * and know nothing of the architecture.
 */
#ifndef QAT_OPTIM_PARAM_H
#define QAT_OPTIM_PARAM_H

#include <stdint.h>

/* What a view holds: the model's own weights (saved under params/, gradients
 * reported by `qat grads`) or a quantizer's trainable state (LSQ steps; saved
 * under their own "compress.<...>" name, never cleared with the model's grads).
 * The name is a label only; code decides by the kind. WEIGHT is 0 so a zeroed
 * view is a weight. */
typedef enum {
    QAT_PARAM_WEIGHT = 0, /* an array of the model (embeddings, norms, linears, head) */
    QAT_PARAM_COMPRESS    /* a quantizer's parameters, "compress.layers.L.W.SIDE.params" */
} qat_param_kind;

typedef struct {
    char name[96];        /* Hugging Face name, or "compress.<...>" for quantizer parameters */
    qat_param_kind kind;  /* weight or quantizer state: set where the view is made */
    float *data, *grad;   /* values and gradient, n floats each */
    int64_t n;            /* element count */
    int ndim;             /* 1 or 2 */
    int64_t shape[2];     /* [out, in] for linears */
    int decay;            /* AdamW weight decay applies (block linears only) */
} qat_param_view;

#endif
