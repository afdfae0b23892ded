/*
 * train/resume_check.h — the checks qat_runio_open makes before it continues a
 * run (resume_check.c), for runio.c only: the public half
 * (qat_runio_config_changes_run, qat_runio_absolute_init) is in runio.h.
 */
#ifndef QAT_TRAIN_RESUME_CHECK_H
#define QAT_TRAIN_RESUME_CHECK_H

#include <stdint.h>

#include "core/config.h"

/* Compare the config a run was started with (`old`, from `origin`) with the one
 * given now, key by key, formats by their canonical form, train.init by the
 * file it names (init_from: run.h5's absolute record of it, or NULL). Changed
 * safe keys go into *note ("key old -> new; ...", NULL when none); any other
 * change is QAT_EINPUT listing every changed key. */
int qat_runio_compare_configs(const char *origin, const qat_config *old, const qat_config *cfg, const char *init_from,
                              char **note);

/* QAT_EINPUT when the checkpoint at ckpt_path was written on other data than
 * crc and tokens, naming both; a checkpoint without them (synthetic data, or
 * written by an older qat) passes. Asked only once the configs agree: data
 * that differs because a key changed (data.val_fraction moves the split the
 * fingerprint covers) is that key's change, listed as such. */
int qat_runio_check_data(const char *ckpt_path, uint32_t crc, int64_t tokens);

#endif
