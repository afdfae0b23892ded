/*
 * autograd/gemm.c — the oneDNN 2.6 matmul behind qat_gemm_run.
 *
 * oneDNN's matmul takes src (…, M, K), weights (…, K, N), dst (…, M, N) with
 * arbitrary strides in plain formats; we describe our operands by strides and let
 * it pick the kernel (brgemm on AVX-512 machines). Creating a primitive costs far
 * more than a small product, so primitives live in a cache keyed by the full
 * descriptor; memory objects are created once with no data and re-pointed at each
 * call with dnnl_memory_set_data_handle.
 *
 * Scratchpad: oneDNN's library-managed scratchpad is allocated and freed around
 * every execute when nothing else holds it, and the fresh pages fault in on
 * each step (9% of a d256 step in the profile, bench/README.md). We ask for the
 * user-managed mode instead and hand every primitive one shared buffer, grown
 * while primitives are built (first step only).
 *
 * Threads: Debian's oneDNN is built on the same libgomp runtime as our OpenMP
 * loops, so omp_set_num_threads governs both.
 *
 * Packed B: given B in a plain layout, brgemm repacks it inside every execute
 * (its copy_B), block by block. We instead let the matmul choose B's layout
 * (format_tag_any) and reorder B into it once per call, into one shared buffer:
 * the same kernel on the same values, so the same bits (test_autograd_ops'
 * test_gemm_packing_same_bits), and a d256 step 4–8% faster (want_pack).
 *
 * Row split: with n threads a 2-D product runs as n one-thread products on M/n
 * rows each, side by side (split_for), instead of oneDNN's partition of the whole,
 * which on two threads left one of them waiting at the end of the weight
 * gradients' products.
 */
#include "gemm.h"

#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/bf16.h"
#include "core/cpu.h"
#include "core/error.h"

#define QAT_GEMM_CACHE_MAX 256
#define QAT_GEMM_SPLIT_MAX 8 /* most row slices of one product (threads) */

typedef struct {
    qat_gemm_desc key;          /* the descriptor this primitive was built for */
    dnnl_primitive_t prim;      /* the matmul */
    dnnl_memory_t a, b, c;      /* memory objects re-pointed at every call */
    dnnl_primitive_t pack;      /* reorder of B into the matmul's layout (NULL: B used as given) */
    dnnl_memory_t bpk;          /* B in that layout, pointed at the shared packing buffer */
    dnnl_memory_t pscratch;     /* the reorder's scratchpad (NULL: none) */
    int nsplit;                 /* 1, or row slices: prim is then built for M/nsplit rows on one thread */
    dnnl_memory_t sa[QAT_GEMM_SPLIT_MAX], sc[QAT_GEMM_SPLIT_MAX]; /* slice t's A and C (t > 0; t = 0 is a, c) */
    dnnl_memory_t ss[QAT_GEMM_SPLIT_MAX]; /* slice t's scratchpad, its own part of the shared buffer */
    size_t sstride;             /* bytes between the slices' scratchpads */
} gemm_entry;

static dnnl_engine_t g_engine;
static dnnl_stream_t g_stream;
static gemm_entry g_cache[QAT_GEMM_CACHE_MAX];
static int g_ncache;
static int g_last; /* most recently used entry: consecutive calls often repeat */
static void *g_scratch;        /* shared scratchpad of every primitive (one runs at a time) */
static size_t g_scratch_size;  /* its bytes */
static void *g_packed;         /* shared buffer of packed B operands (one product at a time) */
static size_t g_packed_size;   /* its bytes */
static int g_pack_mode = -1;   /* QAT_GEMM_PACK: 0 never, 1 small B (default), 2 every 2-D product */
static int g_split_mode = -1;  /* QAT_GEMM_SPLIT: 0 never, 1 every 2-D product that divides (default) */
static dnnl_stream_t g_tstream[QAT_GEMM_SPLIT_MAX]; /* slice t's stream (t > 0; slice 0 runs on g_stream) */

#define DNNL_OK(call)                                                                   \
    do {                                                                                \
        dnnl_status_t st_ = (call);                                                     \
        if (st_ != dnnl_success) {                                                      \
            fprintf(stderr, "qat: internal error at %s:%d: oneDNN call %s failed (%d)\n", \
                    __FILE__, __LINE__, #call, (int)st_);                               \
            abort();                                                                    \
        }                                                                               \
    } while (0)

static void engine_init(void) {
    if (g_engine) return;
    DNNL_OK(dnnl_engine_create(&g_engine, dnnl_cpu, 0));
    DNNL_OK(dnnl_stream_create(&g_stream, g_engine, dnnl_stream_default_flags));
    for (int t = 1; t < QAT_GEMM_SPLIT_MAX; t++)
        DNNL_OK(dnnl_stream_create(&g_tstream[t], g_engine, dnnl_stream_default_flags));
}

/* A memory descriptor of rank 2, 3 or 4 (batch dims dropped when of size 1 in both). */
static void make_md(dnnl_memory_desc_t *md, int nb, const int64_t *bdims, const int64_t *bstr,
                    int64_t rows, int64_t cols, int64_t rs, int64_t cs, dnnl_data_type_t dt) {
    dnnl_dims_t dims, strides;
    int nd = 0;
    for (int i = 0; i < nb; i++) { dims[nd] = bdims[i]; strides[nd] = bstr[i]; nd++; }
    dims[nd] = rows; strides[nd] = rs; nd++;
    dims[nd] = cols; strides[nd] = cs; nd++;
    /* oneDNN rejects a zero stride; a dimension of size 1 never uses its stride. */
    for (int i = 0; i < nd; i++) if (dims[i] == 1 && strides[i] == 0) strides[i] = 1;
    DNNL_OK(dnnl_memory_desc_init_by_strides(md, nd, dims, dt, strides));
}

/* Grow a shared buffer to at least n bytes (primitives are built in the first
 * step only, so this never runs in steady state). */
static void grow(void **buf, size_t *size, size_t n) {
    if (n <= *size) return;
    free(*buf);
    *buf = qat_xaligned(n);
    *size = n;
}

static int isa_at_least(dnnl_cpu_isa_t want) {
    return ((unsigned)dnnl_get_effective_cpu_isa() & (unsigned)want) == (unsigned)want;
}

/* Whether to pack B (see the top of this file): every 2-D bf16 product, and an
 * f32 one whose B is narrow against A (N <= M/4: a weight matrix against the
 * token rows). Measured on the EPYC (bench/README.md): packing every bf16 product
 * gave 1.078× at d256 and 1.029× at d64, the weight products alone 1.036×; in
 * f32 packing the weights gave 1.04–1.05× at d256 and 1.028× at d64, packing the
 * weight gradients' products too 0.989× at d64. */
static int want_pack(const qat_gemm_desc *d) {
    if (g_pack_mode < 0) { /* QAT_GEMM_PACK=0, 1 or 2 (bench/README.md: timing the choice) */
        const char *e = getenv("QAT_GEMM_PACK");
        int ok = e && e[0] >= '0' && e[0] <= '2' && !e[1];
        if (e && !ok) fprintf(stderr, "qat: warning: QAT_GEMM_PACK=%s is not 0, 1 or 2; using 1\n", e);
        g_pack_mode = ok ? e[0] - '0' : 1;
    }
    /* only where the packed product is the kernel the plain one runs (AVX-512's
     * brgemm); on AVX2 oneDNN picks another kernel for a packed B, other bits */
    if (g_pack_mode == 0 || d->b0 > 1 || d->b1 > 1 || !isa_at_least(dnnl_cpu_isa_avx512_core)) return 0;
    return g_pack_mode == 2 || d->bf16 || 4 * d->N <= d->M;
}

/* Whether to split a product's rows into one slice per thread (QAT_GEMM_SPLIT):
 * the number of slices, or 1. Each slice is a one-thread product on M/n rows of
 * A and C against all of B, all slices in one parallel region. With two threads
 * oneDNN's own partition of the weight-gradient products (A transposed: rows are
 * features, K is the 4096 tokens) left one thread waiting: on the d256 f32 step
 * the main thread spent 12% of its samples in libgomp's barrier inside oneDNN's
 * region while the other ran ~9% more samples in the kernels. Split, the d256
 * step took 0.94–0.95× the time in f32 and 0.94–0.98× in bf16, d64 0.98× and
 * 0.97× (paired steps, bench/README.md). On one thread oneDNN multiplies a
 * transposed A with its jit sgemm rather than brgemm, so the weight gradients'
 * sums take another order: other last bits than the unsplit product (the forward
 * and dX products keep theirs: test_autograd_ops' test_gemm_split). */
static int split_for(const qat_gemm_desc *d) {
    if (g_split_mode < 0) {
        const char *e = getenv("QAT_GEMM_SPLIT");
        int ok = e && (e[0] == '0' || e[0] == '1') && !e[1];
        if (e && !ok) fprintf(stderr, "qat: warning: QAT_GEMM_SPLIT=%s is not 0 or 1; using 1\n", e);
        g_split_mode = ok ? e[0] - '0' : 1;
    }
    if (g_split_mode == 0 || d->b0 > 1 || d->b1 > 1 || omp_in_parallel()) return 1;
    int n = omp_get_max_threads();
    if (n < 2 || n > QAT_GEMM_SPLIT_MAX || d->M % (16 * n)) return 1;
    return n;
}

/* Scratchpad memory objects for pd, one per slice (m[0..copies)), each on its
 * own stride-apart part of the shared buffer, which grows to fit; m[t] = NULL
 * when pd needs none. Returns the stride in bytes. */
static size_t scratch_for(const_dnnl_primitive_desc_t pd, int copies, dnnl_memory_t *m) {
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t ssz = smd ? dnnl_memory_desc_get_size(smd) : 0;
    for (int t = 0; t < copies; t++) m[t] = NULL;
    if (!ssz) return 0;
    size_t stride = (ssz + 4095) / 4096 * 4096;
    grow(&g_scratch, &g_scratch_size, stride * (size_t)copies);
    for (int t = 0; t < copies; t++) DNNL_OK(dnnl_memory_create(&m[t], smd, g_engine, DNNL_MEMORY_NONE));
    return stride;
}

static gemm_entry *build(const qat_gemm_desc *d, int nsplit) {
    engine_init();
    if (g_ncache == QAT_GEMM_CACHE_MAX) qat_gemm_shutdown(), engine_init();
    gemm_entry *e = &g_cache[g_ncache];
    memset(e, 0, sizeof *e);
    e->key = *d;
    e->nsplit = nsplit;
    const int64_t M = d->M / nsplit; /* rows of the product oneDNN is asked for */

    int nb = 0;
    int64_t bd[2], as[2], bs[2], cs[2];
    if (d->b0 > 1 || d->b1 > 1) {
        bd[0] = d->b0; as[0] = d->a_s0; bs[0] = d->b_s0; cs[0] = d->c_s0;
        bd[1] = d->b1; as[1] = d->a_s1; bs[1] = d->b_s1; cs[1] = d->c_s1;
        nb = 2;
    }
    dnnl_memory_desc_t amd, bmd, cmd;
    dnnl_data_type_t in = d->bf16 ? dnnl_bf16 : dnnl_f32;
    make_md(&amd, nb, bd, as, M, d->K, d->a_rs, d->a_cs, in);
    make_md(&bmd, nb, bd, bs, d->K, d->N, d->b_rs, d->b_cs, in);
    make_md(&cmd, nb, bd, cs, M, d->N, d->c_rs, d->c_cs, dnnl_f32);

    const int pack = want_pack(d);
    dnnl_memory_desc_t bany;
    if (pack) {
        dnnl_dims_t bdims = {d->K, d->N};
        DNNL_OK(dnnl_memory_desc_init_by_tag(&bany, 2, bdims, in, dnnl_format_tag_any));
    }
    dnnl_matmul_desc_t mm;
    DNNL_OK(dnnl_matmul_desc_init(&mm, &amd, pack ? &bany : &bmd, NULL, &cmd));
    dnnl_primitive_attr_t attr;
    DNNL_OK(dnnl_primitive_attr_create(&attr));
    DNNL_OK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    if (d->alpha != 0.0f && d->alpha != 1.0f) {
        float s = d->alpha;
        DNNL_OK(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &s));
    }
    if (d->accumulate) {
        dnnl_post_ops_t po;
        DNNL_OK(dnnl_post_ops_create(&po));
        DNNL_OK(dnnl_post_ops_append_sum(po, 1.0f));
        DNNL_OK(dnnl_primitive_attr_set_post_ops(attr, po));
        dnnl_post_ops_destroy(po);
    }
    /* a slice's product is built for one thread: oneDNN sizes its partition
     * by the thread count at creation */
    const int threads = omp_get_max_threads();
    if (nsplit > 1) omp_set_num_threads(1);
    dnnl_primitive_desc_t pd;
    DNNL_OK(dnnl_primitive_desc_create(&pd, &mm, attr, g_engine, NULL));
    DNNL_OK(dnnl_primitive_create(&e->prim, pd));
    if (nsplit > 1) omp_set_num_threads(threads);
    e->sstride = scratch_for(pd, nsplit, e->ss);
    const dnnl_memory_desc_t *wmd = pack ? dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0) : NULL;
    if (wmd && !dnnl_memory_desc_equal(wmd, &bmd)) {
        dnnl_primitive_desc_t rpd;
        dnnl_primitive_attr_t rattr; /* no scales or sums: those are the product's */
        DNNL_OK(dnnl_primitive_attr_create(&rattr));
        DNNL_OK(dnnl_primitive_attr_set_scratchpad_mode(rattr, dnnl_scratchpad_mode_user));
        DNNL_OK(dnnl_reorder_primitive_desc_create(&rpd, &bmd, g_engine, wmd, g_engine, rattr));
        dnnl_primitive_attr_destroy(rattr);
        DNNL_OK(dnnl_primitive_create(&e->pack, rpd));
        scratch_for(rpd, 1, &e->pscratch);
        dnnl_primitive_desc_destroy(rpd);
        grow(&g_packed, &g_packed_size, dnnl_memory_desc_get_size(wmd));
        DNNL_OK(dnnl_memory_create(&e->bpk, wmd, g_engine, DNNL_MEMORY_NONE));
    }
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_attr_destroy(attr);
    DNNL_OK(dnnl_memory_create(&e->a, &amd, g_engine, DNNL_MEMORY_NONE));
    DNNL_OK(dnnl_memory_create(&e->b, &bmd, g_engine, DNNL_MEMORY_NONE));
    DNNL_OK(dnnl_memory_create(&e->c, &cmd, g_engine, DNNL_MEMORY_NONE));
    e->sa[0] = e->a, e->sc[0] = e->c;
    for (int t = 1; t < nsplit; t++) {
        DNNL_OK(dnnl_memory_create(&e->sa[t], &amd, g_engine, DNNL_MEMORY_NONE));
        DNNL_OK(dnnl_memory_create(&e->sc[t], &cmd, g_engine, DNNL_MEMORY_NONE));
    }
    return &g_cache[g_ncache++];
}

/* The cached entry for d at the current thread count, built on first use. */
static gemm_entry *lookup(const qat_gemm_desc *d) {
    const int nsplit = split_for(d);
    gemm_entry *l = &g_cache[g_last];
    if (g_ncache && l->nsplit == nsplit && memcmp(&l->key, d, sizeof *d) == 0) return l;
    for (int i = 0; i < g_ncache; i++)
        if (g_cache[i].nsplit == nsplit && memcmp(&g_cache[i].key, d, sizeof *d) == 0) {
            g_last = i;
            return &g_cache[i];
        }
    gemm_entry *e = build(d, nsplit);
    g_last = (int)(e - g_cache);
    return e;
}

/* Run slice t of e's product (A and C handles already set) against weights w. */
static void slice_run(gemm_entry *e, int t, dnnl_memory_t w) {
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, e->sa[t]}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, e->sc[t]},
                               {DNNL_ARG_SCRATCHPAD, e->ss[t]}};
    int nargs = 3;
    if (e->ss[t]) {
        DNNL_OK(dnnl_memory_set_data_handle(e->ss[t], (char *)g_scratch + (size_t)t * e->sstride));
        nargs = 4;
    }
    dnnl_stream_t st = t ? g_tstream[t] : g_stream;
    DNNL_OK(dnnl_primitive_execute(e->prim, st, nargs, args));
    DNNL_OK(dnnl_stream_wait(st));
}

void qat_gemm_run(const qat_gemm_desc *d_in, const void *A, const void *B, float *C) {
    qat_gemm_desc d = *d_in;
    if (d.b0 < 1) d.b0 = 1;
    if (d.b1 < 1) d.b1 = 1;
    if (d.alpha == 1.0f) d.alpha = 0.0f; /* one key for "no scaling" */
    if (d.M == 0 || d.N == 0) return;
    QAT_ASSERT(d.K > 0);
    gemm_entry *e = lookup(&d);
    DNNL_OK(dnnl_memory_set_data_handle(e->a, (void *)A));
    DNNL_OK(dnnl_memory_set_data_handle(e->b, (void *)B));
    DNNL_OK(dnnl_memory_set_data_handle(e->c, C));
    if (e->pack) {
        DNNL_OK(dnnl_memory_set_data_handle(e->bpk, g_packed));
        dnnl_exec_arg_t pargs[3] = {{DNNL_ARG_FROM, e->b}, {DNNL_ARG_TO, e->bpk}, {DNNL_ARG_SCRATCHPAD, e->pscratch}};
        if (e->pscratch) DNNL_OK(dnnl_memory_set_data_handle(e->pscratch, g_scratch));
        DNNL_OK(dnnl_primitive_execute(e->pack, g_stream, e->pscratch ? 3 : 2, pargs));
    }
    if (e->nsplit == 1) {
        slice_run(e, 0, e->pack ? e->bpk : e->b);
        return;
    }
    /* one slice per thread; a thread runs the slices a smaller team leaves over */
    const size_t esz = d.bf16 ? sizeof(uint16_t) : sizeof(float);
    const int64_t Ms = d.M / e->nsplit;
#pragma omp parallel num_threads(e->nsplit)
    for (int t = omp_get_thread_num(); t < e->nsplit; t += omp_get_num_threads()) {
        DNNL_OK(dnnl_memory_set_data_handle(e->sa[t], (char *)A + (size_t)(t * Ms * d.a_rs) * esz));
        DNNL_OK(dnnl_memory_set_data_handle(e->sc[t], C + t * Ms * d.c_rs));
        slice_run(e, t, e->pack ? e->bpk : e->b);
    }
}

void qat_gemm_scaled(int bf16, int ta, int tb, int64_t M, int64_t N, int64_t K, const void *A, int64_t lda,
                     const void *B, int64_t ldb, float *C, int64_t ldc, int accumulate, float alpha) {
    qat_gemm_desc d = {0};
    d.alpha = alpha;
    d.bf16 = bf16;
    d.b0 = d.b1 = 1;
    d.M = M; d.N = N; d.K = K;
    if (ta) { d.a_rs = 1; d.a_cs = lda; } else { d.a_rs = lda; d.a_cs = 1; }
    if (tb) { d.b_rs = 1; d.b_cs = ldb; } else { d.b_rs = ldb; d.b_cs = 1; }
    d.c_rs = ldc; d.c_cs = 1;
    d.accumulate = accumulate;
    qat_gemm_run(&d, A, B, C);
}

void qat_gemm(int ta, int tb, int64_t M, int64_t N, int64_t K,
              const float *A, int64_t lda, const float *B, int64_t ldb,
              float *C, int64_t ldc, int accumulate) {
    qat_gemm_scaled(0, ta, tb, M, N, K, A, lda, B, ldb, C, ldc, accumulate, 1.0f);
}

void qat_gemm_bf16(int ta, int tb, int64_t M, int64_t N, int64_t K,
                   const uint16_t *A, int64_t lda, const uint16_t *B, int64_t ldb,
                   float *C, int64_t ldc, int accumulate) {
    qat_gemm_scaled(1, ta, tb, M, N, K, A, lda, B, ldb, C, ldc, accumulate, 1.0f);
}

void qat_to_bf16(const float *src, uint16_t *dst, int64_t n) {
    int64_t nv = n / 16;
#pragma omp parallel for schedule(static)
    for (int64_t v = 0; v < nv; v++) qat_bf16_row(src + 16 * v, dst + 16 * v, 16);
    qat_bf16_row(src + 16 * nv, dst + 16 * nv, n - 16 * nv);
}

int qat_gemm_bf16_supported(const char **isa) {
    dnnl_cpu_isa_t e = dnnl_get_effective_cpu_isa();
    if (isa) {
        *isa = e == dnnl_cpu_isa_avx512_core_amx    ? "avx512_core_amx"
               : e == dnnl_cpu_isa_avx512_core_bf16 ? "avx512_core_bf16"
               : e == dnnl_cpu_isa_avx512_core_vnni ? "avx512_core_vnni"
               : e == dnnl_cpu_isa_avx512_core      ? "avx512_core"
               : e == dnnl_cpu_isa_avx2_vnni        ? "avx2_vnni"
               : e == dnnl_cpu_isa_avx2             ? "avx2"
                                                    : "older than avx2";
    }
    return isa_at_least(dnnl_cpu_isa_avx512_core_bf16);
}

static const char *gemm_isa_name(void) {
    const char *isa;
    qat_gemm_bf16_supported(&isa);
    return isa;
}

/* Any binary that can multiply also names oneDNN's ISA in qat_cpu_describe (core
 * cannot ask oneDNN itself: it does not link it). */
__attribute__((constructor)) static void gemm_register_isa(void) { qat_cpu_set_gemm_isa_fn(gemm_isa_name); }

int qat_gemm_cache_size(void) { return g_ncache; }

int qat_gemm_cache_packed(void) {
    int n = 0;
    for (int i = 0; i < g_ncache; i++) n += g_cache[i].pack != NULL;
    return n;
}

void qat_gemm_set_packing(int mode) {
    QAT_ASSERT(mode >= 0 && mode <= 2);
    qat_gemm_shutdown(); /* cached primitives were built for the old mode */
    g_pack_mode = mode;
}

int qat_gemm_cache_split(void) {
    int n = 0;
    for (int i = 0; i < g_ncache; i++) n += g_cache[i].nsplit > 1;
    return n;
}

void qat_gemm_set_split(int mode) {
    QAT_ASSERT(mode == 0 || mode == 1);
    g_split_mode = mode; /* entries are keyed by their slice count: nothing to drop */
}

void qat_gemm_shutdown(void) {
    for (int i = 0; i < g_ncache; i++) {
        dnnl_primitive_destroy(g_cache[i].prim);
        dnnl_memory_destroy(g_cache[i].a);
        dnnl_memory_destroy(g_cache[i].b);
        dnnl_memory_destroy(g_cache[i].c);
        for (int t = 0; t < g_cache[i].nsplit; t++) {
            if (t) dnnl_memory_destroy(g_cache[i].sa[t]), dnnl_memory_destroy(g_cache[i].sc[t]);
            if (g_cache[i].ss[t]) dnnl_memory_destroy(g_cache[i].ss[t]);
        }
        if (g_cache[i].pack) dnnl_primitive_destroy(g_cache[i].pack);
        if (g_cache[i].bpk) dnnl_memory_destroy(g_cache[i].bpk);
        if (g_cache[i].pscratch) dnnl_memory_destroy(g_cache[i].pscratch);
    }
    free(g_scratch);
    g_scratch = NULL;
    g_scratch_size = 0;
    free(g_packed);
    g_packed = NULL;
    g_packed_size = 0;
    g_ncache = 0;
    g_last = 0;
    if (g_stream) dnnl_stream_destroy(g_stream);
    for (int t = 1; t < QAT_GEMM_SPLIT_MAX; t++) {
        if (g_tstream[t]) dnnl_stream_destroy(g_tstream[t]);
        g_tstream[t] = NULL;
    }
    if (g_engine) dnnl_engine_destroy(g_engine);
    g_stream = NULL;
    g_engine = NULL;
}
