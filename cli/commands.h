/*
 * cli/commands.h — the subcommands of `qat`, each `int NAME_main(argc, argv)`
 * with argv[0] the subcommand's name, returning the process exit code
 * (0 ok, 1 runtime failure, 2 usage/config/input error). They live with the
 * module they drive; cli/ only dispatches.
 */
#ifndef QAT_CLI_COMMANDS_H
#define QAT_CLI_COMMANDS_H

int qat_train_main(int argc, char **argv);    /* train/train_cli.c */
int qat_eval_main(int argc, char **argv);     /* train/eval_cli.c */
int qat_sample_main(int argc, char **argv);   /* train/sample_cli.c */
int qat_grads_main(int argc, char **argv);    /* train/grads.c */
int qat_sweep_main(int argc, char **argv);    /* train/sweep_cli.c */
int qat_capacity_main(int argc, char **argv); /* compress/capacity_cli.c */
int qat_fit_main(int argc, char **argv);      /* scaling/fit_cli.c */
int qat_plot_main(int argc, char **argv);     /* scaling/fit_cli.c */
int qat_data_main(int argc, char **argv);     /* data/data_cli.c */

#endif
