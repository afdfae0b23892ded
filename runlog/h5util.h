/*
 * runlog/h5util.h — the few HDF5 chores run logs and checkpoints share:
 * string/number attributes and scalar datasets with one call each, a file
 * access list, and turning HDF5's error stack into a qat message.
 *
 * Internal to runlog/: every function returns QAT_OK or a qat error code with
 * qat_errmsg() set ("FILE: what failed"), so callers can QAT_TRY them.
 */
#ifndef QAT_RUNLOG_H5UTIL_H
#define QAT_RUNLOG_H5UTIL_H

#include <hdf5.h>
#include <stddef.h>

/* File access list: latest format (needed for SWMR) when `latest`, HDF5 file
 * locking off when `nolock` (our writers lock a sidecar instead). */
hid_t qat_h5_fapl(int latest, int nolock);

/* Attributes on `loc` (file or group). Writes replace an existing attribute.
 * Strings are stored UTF-8 variable-length; reads accept fixed-length too. */
int qat_h5_attr_write_str(hid_t loc, const char *file, const char *name, const char *value);
int qat_h5_attr_write(hid_t loc, const char *file, const char *name, hid_t filetype, hid_t memtype, const void *v);
int qat_h5_attr_read_str(hid_t loc, const char *file, const char *name, char *buf, size_t size);
char *qat_h5_attr_dup_str(hid_t loc, const char *name); /* malloc'd; NULL when missing */
int qat_h5_attr_read(hid_t loc, const char *file, const char *name, hid_t memtype, void *v);

/* Scalar datasets (/final/..., /state/...). */
int qat_h5_scalar_write(hid_t loc, const char *file, const char *name, hid_t filetype, hid_t memtype, const void *v);
int qat_h5_scalar_read(hid_t loc, const char *file, const char *name, hid_t memtype, void *v);

/* 1 when `name` (a path relative to loc, intermediate groups included) exists. */
int qat_h5_exists(hid_t loc, const char *name);

#endif
