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

typedef struct {
    char name[96];        /* Hugging Face name, or "compress.<...>" for quantizer parameters */
    float *data, *grad;   /* values and gradient, n floats each */
    int64_t n;            /* element count */
    int ndim;             /* 1 or 2 */
    int64_t shape[2];     /* [out, in] for linears */
    int decay;            /* AdamW weight decay applies (block linears only) */
} qat_param_view;

#endif
