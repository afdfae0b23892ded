/*
 * scaling/capacity_main.c — `qat-capacity`, a stand-alone driver for
 * qat_capacity_main so the command can be tested (test_compress_capacity_cli)
 * without the full `qat` binary, which cli/ assembles after every module.
 */
#include "scaling/capacity_cli.h"

int main(int argc, char **argv) {
    argv[0] = "capacity";
    return qat_capacity_main(argc, argv);
}
