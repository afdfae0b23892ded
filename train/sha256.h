/*
 * train/sha256.h — SHA-256 (FIPS 180-4), for the `init_hash` of a run started
 * with `qat train --init` (docs/files.md).
 *
 * A run records which weights it started from; a 64-bit or CRC checksum would
 * tell two files apart by accident only, while SHA-256 is collision resistant
 * and is what `sha256sum` and Python's hashlib compute, so anyone can check the
 * recorded value from the checkpoint alone. Small enough to carry here rather
 * than add a crypto library for one hash.
 */
#ifndef QAT_TRAIN_SHA256_H
#define QAT_TRAIN_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];     /* chaining state */
    uint8_t buf[64];   /* the current partial block */
    size_t fill;       /* bytes in buf */
    uint64_t bytes;    /* message length so far */
} qat_sha256;

void qat_sha256_init(qat_sha256 *s);
void qat_sha256_update(qat_sha256 *s, const void *data, size_t n);
/* The digest as 64 lowercase hex digits and a NUL. */
void qat_sha256_hex(qat_sha256 *s, char out[65]);

#endif
