/*
 * sweep/sweep_cli.h — `qat sweep` (docs/cli.md). cli/ only dispatches: argv[0]
 * is "sweep", and the return value is the exit code (0 every run completed or
 * was skipped, 1 a run failed or was left busy, 2 usage or sweep-file error).
 */
#ifndef QAT_SWEEP_SWEEP_CLI_H
#define QAT_SWEEP_SWEEP_CLI_H

int qat_sweep_main(int argc, char **argv);

#endif
