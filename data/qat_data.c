/*
 * data/qat_data.c — `qat-data`, a stand-alone driver for `qat data` so the module
 * can be exercised before (and independently of) the real `qat` binary in cli/.
 */
#include "data/data_cli.h"

int main(int argc, char **argv) {
    char *args[argc + 1];
    args[0] = "data";
    for (int i = 1; i <= argc; i++) args[i] = argv[i];
    return qat_data_main(argc, args);
}
