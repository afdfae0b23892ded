/*
 * train/init.h — `qat train --init CKPT.h5`: a run that starts from another
 * run's weights (docs/cli.md#qat-train, docs/files.md).
 *
 * The new run keeps its own config (formats, estimator, schedule, budget) and
 * a fresh optimizer; only the latent fp32 parameters come from the checkpoint.
 * Quantizer state (LSQ steps, PV codes, aq codebooks) is decided per side,
 * weights and activations: a side's state comes along when its quantizers are
 * the source's (format with its Hadamard block, scale, group and estimator:
 * qat_quantizer_carry), because only then does it mean the same thing, whatever
 * the other side or compress.gradients became; aqMxBgG weights moving between
 * ste and pv keep their codebooks, scales and codes, and PV's own state starts
 * from them. Any other side starts from the loaded weights as it would from
 * random ones (PV projects them, LSQ weight steps are chosen by a per-row MSE
 * search, aqMxBgG's codebooks are fitted by k-means, qat_init_load). Those
 * weights are /params, except where the source's weight quantizer computed its
 * forward from its codes rather than /params (PV with pv_lr > 0) and this run's
 * reads the tensor (it follows it, or starts its state from it): there they are
 * that forward, decoded by the source's quantizer and unrotated, carried state
 * or not (a carried PV with pv_lr > 0 reads only its codes, and keeps /params).
 *
 * Before step 0 the trainer evaluates the loaded model through the new formats
 * (the post-training-quantization loss) and through the source's own formats,
 * with the run's own evaluation, and records both in run.h5.
 */
#ifndef QAT_TRAIN_INIT_H
#define QAT_TRAIN_INIT_H

#include <signal.h>
#include <stdint.h>

#include "compress/quantizer.h"
#include "core/config.h"
#include "model/llama.h"

struct qat_tape;
struct qat_dataset;

typedef struct {
    char path[QAT_PATH_MAX];      /* the file as given to --init */
    char abspath[QAT_PATH_MAX];   /* its absolute path, recorded as init_from */
    char hash[80];                /* "sha256:" + 64 hex digits over its /params as stored (docs/files.md) */
    char source[160];             /* "s1, N = 106,816" for the init line */
    char source_formats[2 * QAT_FMT_MAX + 2]; /* "int4/int4": the source's weight/activation formats */
    qat_config *source_cfg;       /* the config stored in the source (owned) */
    int same_forward;             /* 1: every compress.weights/.activations key equal: the source's forward */
    qat_carry side[2];            /* what each side read from the source, [0] activations, [1] weights */
    char key_was[2][160], key_now[2][160]; /* a side's limiting quantizer (qat_quantizer_state_key), source and now */
    int carried;                  /* 1: both sides carried (init_state "carried") */
    int source_codes;             /* 1: this run reads a weight tensor whose source quantizer's forward is its codes
                                     (PV, pv_lr > 0), not /params: decoded (qat_init_load) */
    int n_decoded;                /* weight tensors started from those codes instead of /params, carried or not */
    int n_searched;               /* LSQ weight quantizers whose steps the MSE search chose */
    double mse_default, mse_best; /* summed row MSE of those at the default step and the chosen one */
    int n_fitted;                 /* aqMxBgG weight quantizers whose codebooks k-means fitted here */
    double fit_err, fit_norm;     /* their summed squared error and the weights' summed square */
    double ptq_loss;              /* held-out loss of the loaded model through this run's formats */
    double source_loss;           /* ... through the source's formats (this run's precision) */
} qat_init;

/* Read the source's parameters into m (built from cfg) and set up the
 * quantizers' starting state. Errors name the file: a tensor whose shape
 * differs or that this model does not have, or different attention heads, is
 * QAT_EINPUT; a missing or non-HDF5 file is QAT_EINPUT; a damaged file
 * (checksum) or non-finite values are QAT_ERUNTIME, as for every loader. */
int qat_init_load(qat_init *it, const char *path, const qat_config *cfg, qat_model *m);

/* The PTQ and source losses (it->ptq_loss, it->source_loss) on the run's
 * held-out batches (in/tg are (B, T) scratch). Leaves m's quantizer state as it
 * found it, so the first training step sees what it would have seen without
 * this evaluation (an activation step is still set by the first training batch).
 * Each evaluation stops between batches once *stop is set (stop may be NULL),
 * leaving its loss NaN: a SIGINT need not wait for millions of held-out tokens. */
int qat_init_evaluate(qat_init *it, const qat_config *cfg, qat_model *m, struct qat_tape *tp,
                      const struct qat_dataset *ds, int B, int32_t *in, int32_t *tg, const volatile sig_atomic_t *stop);

/* What init_state and the per-side attributes record: "carried", "projected", and
 * (init_state only) "partial" when one side carried and the other did not. */
const char *qat_init_state(const qat_init *it);
const char *qat_init_side_state(const qat_init *it, int is_weight);

/* The quantizer state in words, for the `init:` lines of train and grads: "quantizer
 * state carried from the source (the same quantizers)", or one phrase per side,
 * weights first, joined by sep, e.g. "weights' quantizer state carried from the
 * source: the aq codebooks, scales and codes of ..., read by ...; PV's buffers start
 * from them" and "activations' quantizer state derived afresh: NOW, was SOURCE";
 * after the weights' phrase, "weights start from the source's forward (N tensors):
 * ..." when they were decoded from the source's codes (n_decoded). */
void qat_init_describe_state(const qat_init *it, const char *sep, char *buf, size_t n);

void qat_init_free(qat_init *it);

#endif
