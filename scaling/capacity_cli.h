/*
 * scaling/capacity_cli.h — `qat capacity FORMAT… [--samples N] [--seed S]
 * [--fit FIT.h5] [--json]`: GMSE, capacity ρ and bits per parameter of formats.
 * cli/ dispatches here; argv[0] is "capacity". Returns the exit code.
 */
#ifndef QAT_SCALING_CAPACITY_CLI_H
#define QAT_SCALING_CAPACITY_CLI_H

int qat_capacity_main(int argc, char **argv);

#endif
