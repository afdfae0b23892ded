/*
 * scaling/resolver.c — the default format resolver: compress/'s capacity
 * terms and bits per parameter when qat is built with compress/, nothing
 * otherwise (then only chinchilla and decoupled fits of format strings work,
 * and callers pass terms themselves).
 */
#include "scaling/fit.h"

#if QAT_HAVE_COMPRESS
static const qat_fit_resolver default_resolver = {qat_fmt_capacity_terms, qat_fmt_bits};
#else
static const qat_fit_resolver default_resolver = {NULL, NULL};
#endif

const qat_fit_resolver *qat_fit_default_resolver(void) { return &default_resolver; }
