/*
 * compress/capacity_main.c — `qat-capacity`, a stand-alone driver for
 * qat_capacity_main so compress/ can be tested without the full `qat` binary
 * (which cli/ assembles from every module).
 */
#include "compress/capacity_cli.h"

int main(int argc, char **argv) {
    argv[0] = "capacity";
    return qat_capacity_main(argc, argv);
}
