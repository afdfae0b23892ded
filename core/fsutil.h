/*
 * core/fsutil.h — the few file-system operations several modules need.
 */
#ifndef QAT_CORE_FSUTIL_H
#define QAT_CORE_FSUTIL_H

/* mkdir -p: create `path` and any missing parents. QAT_ERUNTIME naming the
 * directory that could not be made. */
int qat_mkdirs(const char *path);

#endif
