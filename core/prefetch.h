/*
 * core/prefetch.h — ask for a range of memory ahead of its use.
 *
 * The row passes outside the products (norms, SwiGLU, the quantizers' backward)
 * read several arrays that come cold from memory: the previous op wrote them
 * long ago, or a product just wrote them past the caches. Each pass walks rows
 * in order, so it knows which rows come next; the hardware's stream prefetch,
 * which has to discover each of the several streams again at every row, left
 * those passes waiting on their loads (perf: the first use of each load was
 * their hottest instruction). Prefetching a row or two ahead changes no value.
 */
#ifndef QAT_CORE_PREFETCH_H
#define QAT_CORE_PREFETCH_H

#include <stddef.h>

/* Every 64-byte line of [p, p + bytes), for reading (into all cache levels). */
static inline void qat_prefetch(const void *p, size_t bytes) {
    const char *c = (const char *)p;
    for (size_t i = 0; i < bytes; i += 64) __builtin_prefetch(c + i, 0, 3);
}

#endif
