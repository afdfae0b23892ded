/*
 * core/cpu.h — which CPU this is and which kernels run on it.
 *
 * qat builds two ways (docs/model.md, "Builds"):
 *   native   (-Dnative=true)  everything compiled with -march=native; the kernels
 *            are the ones the compiler's flags allow, fixed at build time;
 *   portable (-Dnative=false) everything compiled for a baseline (x86-64-v3 by
 *            default), and the few files whose speed depends on AVX-512
 *            (compress/hadamard.c, compress/project.c, autograd/ops_attention.c)
 *            compiled a second time for x86-64-v4 (meson.build). Their entry points
 *            dispatch here, once per call, to the AVX-512 copy when the CPU has it.
 *            The header kernels (core/vexpf.h, core/bf16.h, compress/vq.h) carry
 *            target attributes and dispatch the same way.
 * The AVX-512 copy is the same source compiled with the same vector width as a
 * native build on an AVX-512 CPU, so on a given CPU a portable binary produces the
 * bits of a native one wherever both run the same instructions (see docs/model.md).
 *
 * The level is resolved once, from cpuid (and the OS's saved register state), the
 * first time it is asked for. QAT_KERNELS=generic|avx512|avx512+bf16 in the
 * environment lowers it (to reproduce another node's bits, or to test a path);
 * asking for more than the CPU has keeps what it has and says so on stderr.
 */
#ifndef QAT_CORE_CPU_H
#define QAT_CORE_CPU_H

#include <stddef.h>

/* Multiversioned files. In a portable x86-64 build (QAT_ISA_VARIANTS) such a file
 * is compiled twice: as itself, and with -march=x86-64-v4 -DQAT_ISA_VARIANT. It
 * renames its dispatched entry points NAME to QAT_ISA_NAME(NAME) (NAME_generic or
 * NAME_avx512) after including its own header, and under QAT_ISA_DISPATCH defines
 * NAME itself as `qat_cpu_avx512() ? NAME_avx512(...) : NAME_generic(...)`. Calls
 * inside the file stay in the copy they started in. Functions outside the dispatch
 * are left out of the AVX-512 copy with #if !QAT_ISA_COPY. */
#if defined(QAT_ISA_VARIANT)
#define QAT_ISA_NAME(name) name##_avx512
#define QAT_ISA_RENAME 1
#define QAT_ISA_COPY 1
#define QAT_ISA_DISPATCH 0
#elif defined(QAT_ISA_VARIANTS)
#define QAT_ISA_NAME(name) name##_generic
#define QAT_ISA_RENAME 1
#define QAT_ISA_COPY 0
#define QAT_ISA_DISPATCH 1
#else
#define QAT_ISA_NAME(name) name
#define QAT_ISA_RENAME 0
#define QAT_ISA_COPY 0
#define QAT_ISA_DISPATCH 0
#endif

/* Kernel levels, each including the ones below it (macros: #if compares them). */
#define QAT_KERNELS_GENERIC 0     /* C compiled for the build's baseline */
#define QAT_KERNELS_AVX512 1      /* AVX-512 F/BW/DQ/VL/CD (x86-64-v4) */
#define QAT_KERNELS_AVX512_BF16 2 /* and AVX512-BF16 (bf16 rounding 16 lanes at a time) */

/* x86 GCC/Clang: header kernels may carry target attributes. */
#if defined(__x86_64__) && defined(__GNUC__)
#define QAT_CPU_X86 1
#else
#define QAT_CPU_X86 0
#endif

/* The level the compiler's own flags already guarantee (a native build, or the
 * AVX-512 copy of a multiversioned file): dispatch is then a constant. */
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__) && defined(__AVX512VL__)
#if defined(__AVX512BF16__)
#define QAT_KERNELS_BUILTIN QAT_KERNELS_AVX512_BF16
#else
#define QAT_KERNELS_BUILTIN QAT_KERNELS_AVX512
#endif
#else
#define QAT_KERNELS_BUILTIN QAT_KERNELS_GENERIC
#endif

/* Resolved once (thread-safe); never below QAT_KERNELS_BUILTIN. */
extern int qat_cpu_kernels_cached; /* -1 until resolved */
int qat_cpu_kernels_resolve(void);

static inline int qat_cpu_kernels(void) {
    int l = __atomic_load_n(&qat_cpu_kernels_cached, __ATOMIC_RELAXED);
    return l >= 0 ? l : qat_cpu_kernels_resolve();
}

/* 1 when the AVX-512 kernels run; a constant when the build guarantees them. */
static inline int qat_cpu_avx512(void) {
#if QAT_KERNELS_BUILTIN >= QAT_KERNELS_AVX512
    return 1;
#else
    return QAT_CPU_X86 && qat_cpu_kernels() >= QAT_KERNELS_AVX512;
#endif
}

static inline int qat_cpu_avx512bf16(void) {
#if QAT_KERNELS_BUILTIN >= QAT_KERNELS_AVX512_BF16
    return 1;
#else
    return QAT_CPU_X86 && qat_cpu_kernels() >= QAT_KERNELS_AVX512_BF16;
#endif
}

/* Highest level this CPU (and this build) can run, ignoring QAT_KERNELS. */
int qat_cpu_kernels_max(void);

/* For tests: run `level` from now on, clamped to [QAT_KERNELS_BUILTIN (in this
 * file's build), qat_cpu_kernels_max()]; returns the level in effect. */
int qat_cpu_set_kernels(int level);

/* "generic", "avx512" or "avx512+bf16". */
const char *qat_cpu_kernels_name(int level);

/* A few lines "key: value" (cpu, features, build, kernels and, once autograd/gemm.c
 * has registered it, gemm: oneDNN's ISA), for `qat --version` and run.h5's `cpu`
 * attribute. Always NUL-terminated; truncated to n. */
void qat_cpu_describe(char *buf, size_t n);

/* autograd/gemm.c registers a function naming oneDNN's ISA (core does not link oneDNN). */
void qat_cpu_set_gemm_isa_fn(const char *(*fn)(void));

#endif
