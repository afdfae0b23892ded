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
 */
#include "gemm.h"

#include <oneapi/dnnl/dnnl.h>
#include <stdlib.h>
#include <string.h>

#include "core/bf16.h"
#include "core/cpu.h"
#include "core/error.h"

#define QAT_GEMM_CACHE_MAX 256

typedef struct {
    qat_gemm_desc key;          /* the descriptor this primitive was built for */
    dnnl_primitive_t prim;      /* the matmul */
    dnnl_memory_t a, b, c;      /* memory objects re-pointed at every call */
    dnnl_memory_t scratch;      /* its scratchpad, pointed at the shared buffer (NULL: none) */
    dnnl_primitive_t pack;      /* reorder of B into the matmul's layout (NULL: B used as given) */
    dnnl_memory_t bpk;          /* B in that layout, pointed at the shared packing buffer */
    dnnl_memory_t pscratch;     /* the reorder's scratchpad (NULL: none) */
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

/* A scratchpad memory object for pd, growing the shared buffer (NULL: none needed). */
static dnnl_memory_t scratch_for(const_dnnl_primitive_desc_t pd) {
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t ssz = smd ? dnnl_memory_desc_get_size(smd) : 0;
    if (!ssz) return NULL;
    grow(&g_scratch, &g_scratch_size, ssz);
    dnnl_memory_t m;
    DNNL_OK(dnnl_memory_create(&m, smd, g_engine, DNNL_MEMORY_NONE));
    return m;
}

static gemm_entry *build(const qat_gemm_desc *d) {
    engine_init();
    if (g_ncache == QAT_GEMM_CACHE_MAX) qat_gemm_shutdown(), engine_init();
    gemm_entry *e = &g_cache[g_ncache];
    memset(e, 0, sizeof *e);
    e->key = *d;

    int nb = 0;
    int64_t bd[2], as[2], bs[2], cs[2];
    if (d->b0 > 1 || d->b1 > 1) {
        bd[0] = d->b0; as[0] = d->a_s0; bs[0] = d->b_s0; cs[0] = d->c_s0;
        bd[1] = d->b1; as[1] = d->a_s1; bs[1] = d->b_s1; cs[1] = d->c_s1;
        nb = 2;
    }
    dnnl_memory_desc_t amd, bmd, cmd;
    dnnl_data_type_t in = d->bf16 ? dnnl_bf16 : dnnl_f32;
    make_md(&amd, nb, bd, as, d->M, d->K, d->a_rs, d->a_cs, in);
    make_md(&bmd, nb, bd, bs, d->K, d->N, d->b_rs, d->b_cs, in);
    make_md(&cmd, nb, bd, cs, d->M, d->N, d->c_rs, d->c_cs, dnnl_f32);

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
    dnnl_primitive_desc_t pd;
    DNNL_OK(dnnl_primitive_desc_create(&pd, &mm, attr, g_engine, NULL));
    DNNL_OK(dnnl_primitive_create(&e->prim, pd));
    e->scratch = scratch_for(pd);
    const dnnl_memory_desc_t *wmd = pack ? dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0) : NULL;
    if (wmd && !dnnl_memory_desc_equal(wmd, &bmd)) {
        dnnl_primitive_desc_t rpd;
        dnnl_primitive_attr_t rattr; /* no scales or sums: those are the product's */
        DNNL_OK(dnnl_primitive_attr_create(&rattr));
        DNNL_OK(dnnl_primitive_attr_set_scratchpad_mode(rattr, dnnl_scratchpad_mode_user));
        DNNL_OK(dnnl_reorder_primitive_desc_create(&rpd, &bmd, g_engine, wmd, g_engine, rattr));
        dnnl_primitive_attr_destroy(rattr);
        DNNL_OK(dnnl_primitive_create(&e->pack, rpd));
        e->pscratch = scratch_for(rpd);
        dnnl_primitive_desc_destroy(rpd);
        grow(&g_packed, &g_packed_size, dnnl_memory_desc_get_size(wmd));
        DNNL_OK(dnnl_memory_create(&e->bpk, wmd, g_engine, DNNL_MEMORY_NONE));
    }
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_attr_destroy(attr);
    DNNL_OK(dnnl_memory_create(&e->a, &amd, g_engine, DNNL_MEMORY_NONE));
    DNNL_OK(dnnl_memory_create(&e->b, &bmd, g_engine, DNNL_MEMORY_NONE));
    DNNL_OK(dnnl_memory_create(&e->c, &cmd, g_engine, DNNL_MEMORY_NONE));
    return &g_cache[g_ncache++];
}

static gemm_entry *lookup(const qat_gemm_desc *d) {
    if (g_ncache && memcmp(&g_cache[g_last].key, d, sizeof *d) == 0) return &g_cache[g_last];
    for (int i = 0; i < g_ncache; i++)
        if (memcmp(&g_cache[i].key, d, sizeof *d) == 0) { g_last = i; return &g_cache[i]; }
    gemm_entry *e = build(d);
    g_last = (int)(e - g_cache);
    return e;
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
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, e->a}, {DNNL_ARG_WEIGHTS, e->pack ? e->bpk : e->b}, {DNNL_ARG_DST, e->c},
                               {DNNL_ARG_SCRATCHPAD, e->scratch}};
    int nargs = 3;
    if (e->scratch) {
        DNNL_OK(dnnl_memory_set_data_handle(e->scratch, g_scratch));
        nargs = 4;
    }
    DNNL_OK(dnnl_primitive_execute(e->prim, g_stream, nargs, args));
    DNNL_OK(dnnl_stream_wait(g_stream));
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

void qat_gemm_shutdown(void) {
    for (int i = 0; i < g_ncache; i++) {
        dnnl_primitive_destroy(g_cache[i].prim);
        dnnl_memory_destroy(g_cache[i].a);
        dnnl_memory_destroy(g_cache[i].b);
        dnnl_memory_destroy(g_cache[i].c);
        if (g_cache[i].scratch) dnnl_memory_destroy(g_cache[i].scratch);
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
    if (g_engine) dnnl_engine_destroy(g_engine);
    g_stream = NULL;
    g_engine = NULL;
}
