/*
 * train/train_cli.h — the commands of the train module (docs/cli.md): `qat
 * train`, `qat eval`, `qat sample` and `qat grads`. cli/ only dispatches:
 * argv[0] is the command's name, and the return value is the exit code (0 ok,
 * 1 runtime failure, 2 usage, config or input error, message on stderr).
 */
#ifndef QAT_TRAIN_TRAIN_CLI_H
#define QAT_TRAIN_TRAIN_CLI_H

int qat_train_main(int argc, char **argv);  /* train_cli.c */
int qat_eval_main(int argc, char **argv);   /* eval_cli.c */
int qat_sample_main(int argc, char **argv); /* sample_cli.c */
int qat_grads_main(int argc, char **argv);  /* grads.c */

#endif
