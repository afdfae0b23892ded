/*
 * scaling/driver.c — `qat-fit-driver fit|plot ...`: a stand-in for the real
 * `qat` binary (cli/ wires the same entry points), so the scaling module can
 * be tested end to end and benchmarked on its own.
 */
#include <stdio.h>
#include <string.h>

#include "scaling/fit_cli.h"

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "fit")) return qat_fit_main(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "plot")) return qat_plot_main(argc - 1, argv + 1);
    fprintf(stderr, "usage: %s fit|plot ... (see %s fit --help)\n", argv[0], argv[0]);
    return 2;
}
