/*
 * compress/capacity_cli.h — `qat capacity FORMAT… [--samples N] [--seed S]
 * [--fit FIT.h5] [--json]`: GMSE, capacity ρ and bits per parameter of formats.
 * cli/ dispatches here; argv[0] is "capacity". Returns the exit code.
 */
#ifndef QAT_COMPRESS_CAPACITY_CLI_H
#define QAT_COMPRESS_CAPACITY_CLI_H

#include "compress/capacity.h"

int qat_capacity_main(int argc, char **argv);

/* Read (L, F, C) per type from a fit file's root attributes cap_<type>_L/F/C
 * (type = quant, sparse, vq); a type whose attributes are absent keeps the
 * value already in params (the published constants by default). */
int qat_capacity_read_fit(const char *path, qat_cap_params params[QAT_CAP_NTYPES]);

#endif
