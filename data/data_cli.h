/*
 * data/data_cli.h — `qat data synth|pack|inspect` (docs/cli.md).
 *
 * The command lives with the data module (cli/ only dispatches to it), so the
 * module's tests can run it in-process and the `qat` binary stays thin.
 */
#ifndef QAT_DATA_DATA_CLI_H
#define QAT_DATA_DATA_CLI_H

/* argv[0] = "data". Prints to stdout/stderr and returns the exit code:
 * 0 ok, 1 runtime failure, 2 usage or input error (the message names the file). */
int qat_data_main(int argc, char **argv);

#endif
