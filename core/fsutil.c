/*
 * core/fsutil.c — mkdir -p.
 */
#include "fsutil.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "error.h"

int qat_mkdirs(const char *path) {
    if (!mkdir(path, 0777) || errno == EEXIST) return QAT_OK;
    const char *slash = strrchr(path, '/');
    if (errno == ENOENT && slash && slash != path) {
        char parent[2 * QAT_PATH_MAX];
        snprintf(parent, sizeof parent, "%.*s", (int)(slash - path), path);
        QAT_TRY(qat_mkdirs(parent));
        if (!mkdir(path, 0777) || errno == EEXIST) return QAT_OK;
    }
    return qat_fail(QAT_ERUNTIME, "%s: cannot create directory: %s", path, strerror(errno));
}
