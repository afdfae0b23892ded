/*
 * scaling/fit_cli.h — `qat fit` and `qat plot` (docs/cli.md). cli/ only dispatches:
 * argv[0] is "fit" or "plot", and the return value is the exit code
 * (0 ok, 1 runtime failure, 2 usage or input error, message on stderr).
 */
#ifndef QAT_SCALING_FIT_CLI_H
#define QAT_SCALING_FIT_CLI_H

int qat_fit_main(int argc, char **argv);
int qat_plot_main(int argc, char **argv);

#endif
