/*
 * data/synth.c — the synthetic corpus (docs/data.md): a stochastic language with a
 * known, exactly computable next-token distribution and structure at several
 * scales, so that small models learn the easy part, larger models keep gaining on
 * the hard part, and a fitted irreducible loss E can be checked against the truth.
 *
 * Generative process (all tables and draws keyed by the corpus seed):
 *
 *   Token layout: 0 = BOS; topic0+k = topic k (k < K); COPY marker; N_OFF·N_LEN
 *   spec tokens (spec m = copy distance offsets[m / N_LEN], length lengths[m % N_LEN]);
 *   the rest are content tokens (222 of 256 with the defaults).
 *
 *   Tables: a global popularity g = Zipf(pop_zipf) over a seeded permutation of the
 *   content tokens; a bigram row for every token v: bi_fanout successors drawn from g
 *   (repeats allowed), weighted Zipf(bi_zipf) by rank; a topic row for every topic:
 *   topic_fanout content tokens drawn uniformly, weighted Zipf(topic_zipf); a trigram
 *   row for every context (a, b): tri_fanout content tokens drawn uniformly by hashing
 *   (seed, a·V + b, j) — never stored, so it is as large as V² rows (the "knowledge"
 *   a model must memorise; frequent contexts are learnt first, rare ones need capacity
 *   and data), weighted Zipf(tri_zipf).
 *
 *   Document i (its own random stream, keyed by (seed, i)):
 *     t = 0: BOS.  t = 1: a topic token, k uniform over K.
 *     t >= 2 (n = t - 2 tokens of content so far; a, b = the last two tokens):
 *       - inside a copy segment: doc[t] = doc[t - d] with probability 1;
 *       - right after COPY: a spec token, uniform over the specs whose distance
 *         d <= n_c (n_c = content length when COPY was emitted), starting a copy of
 *         the spec's length L at distance d (overlap allowed, like LZ77);
 *       - otherwise ("free"): BOS (the document ends) with p_end when n >= min_doc
 *         (1 when n >= max_doc); COPY with p_copy when offsets[0] <= n < max_doc;
 *         else a content token from
 *             q(x | a, b, k) = w_bi·Bi[b](x) + w_tri·Tri[a, b](x) + w_topic·Top[k](x).
 *   The corpus is the concatenation of documents 0, 1, 2, … (validation documents
 *   start at index 2^40), so the BOS of a document is drawn at the last free
 *   position of the previous one.
 *
 * Every quantity above is a function of the document's visible tokens (the copy
 * state is decoded by scanning COPY and spec tokens from the start, which is why
 * copied COPY/spec tokens are inert), so the conditional distribution is exact
 * and the entropy rate reported for a split is the mean entropy of those
 * distributions: the cross-entropy of a perfect model. A model whose window
 * starts mid-document cannot see the topic token or a distant copy source, so
 * its best loss sits slightly above this rate.
 *
 * Sampling picks the event, then the mixture component, then the rank inside the
 * component's row — two uniforms and a short binary search per token — which
 * keeps generation well above 10M tokens/s per core; entropies (a scatter of
 * about 70 entries and their logs) are computed only when asked, i.e. for the
 * validation split.
 */
#include "data/synth.h"

#include <math.h>
#include <string.h>

#include "core/config.h"
#include "core/error.h"
#include "core/rng.h"

struct qat_synth {
    qat_synth_params p;  /* the parameters it was built from */
    qat_synth_layout L;  /* token ids of each role */
    uint64_t tri_key;    /* hash key of the trigram table */
    uint64_t doc_key;    /* hash key of the document streams */
    uint16_t *bi;        /* (vocab, bi_fanout) bigram successors */
    uint16_t *top;       /* (topics, topic_fanout) topic tokens */
    double bi_w[QAT_SYNTH_MAX_FANOUT];   /* Zipf weights of a bigram row, normalised */
    double tri_w[QAT_SYNTH_MAX_FANOUT];  /* of a trigram row */
    double top_w[QAT_SYNTH_MAX_FANOUT];  /* of a topic row */
    double bi_c[QAT_SYNTH_MAX_FANOUT];   /* cumulative sums of the above, for sampling */
    double tri_c[QAT_SYNTH_MAX_FANOUT];
    double top_c[QAT_SYNTH_MAX_FANOUT];
    int max_entries;     /* bound on a sparse distribution's entries */
};

enum { KEY_POP = 0x909, KEY_BI = 0xB16, KEY_TOP = 0x70C, KEY_TRI = 0x7B1, KEY_DOC = 0xD0C };

void qat_synth_params_default(qat_synth_params *p, uint64_t seed, int vocab, int topics) {
    memset(p, 0, sizeof *p);
    p->seed = seed;
    p->vocab = vocab;
    p->topics = topics > 0 ? topics : 16;
    p->pop_zipf = 0.8;
    p->bi_fanout = 32;
    p->bi_zipf = 1.0;
    p->tri_fanout = 4;
    p->tri_zipf = 1.0;
    p->topic_fanout = 32;
    p->topic_zipf = 1.0;
    p->w_bi = 0.5;
    p->w_tri = 0.3;
    p->w_topic = 0.2;
    p->p_end = 1.0 / 256;
    p->min_doc = 16;
    p->max_doc = 2048;
    p->p_copy = 1.0 / 128;
    const int off[QAT_SYNTH_N_OFFSETS] = {8, 16, 32, 64};
    const int len[QAT_SYNTH_N_LENGTHS] = {4, 8, 16, 32};
    memcpy(p->offsets, off, sizeof off);
    memcpy(p->lengths, len, sizeof len);
}

static void zipf_row(int n, double s, double *w, double *c) {
    double z = 0;
    for (int j = 0; j < n; j++) z += pow(j + 1.0, -s);
    double acc = 0;
    for (int j = 0; j < n; j++) {
        w[j] = pow(j + 1.0, -s) / z;
        acc += w[j];
        c[j] = acc;
    }
    c[n - 1] = 1.0; /* u < 1 always lands inside the row */
}

/* First j with c[j] > u (c increasing, c[n-1] = 1). */
static inline int search_cdf(const double *c, int n, double u) {
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int mid = (lo + hi) >> 1;
        if (c[mid] > u) hi = mid; else lo = mid + 1;
    }
    return lo;
}

static inline uint64_t below(uint64_t h, uint64_t n) {
    return (uint64_t)(((unsigned __int128)h * n) >> 64);
}

int qat_synth_create(const qat_synth_params *p, qat_synth **out) {
    *out = NULL;
    int V = p->vocab, K = p->topics;
    /* the limits core/config.h states (the config refuses beyond them at the key) */
    _Static_assert(QAT_SYNTH_MAX_TOPICS <= QAT_SYNTH_MAX_FANOUT, "a topic row is a fan-out row");
    _Static_assert(QAT_SYNTH_MIN_VOCAB(0) == 2 + QAT_SYNTH_N_OFFSETS * QAT_SYNTH_N_LENGTHS + 32, "the layout below");
    if (K < 1 || K > QAT_SYNTH_MAX_TOPICS)
        return qat_fail(QAT_EINPUT, "synthetic corpus: topics %d out of range, expected 1..%d", K,
                        QAT_SYNTH_MAX_TOPICS);
    if (V < QAT_SYNTH_MIN_VOCAB(K) || V > QAT_SYNTH_MAX_VOCAB)
        return qat_fail(QAT_EINPUT, "synthetic corpus: vocab %d out of range for %d topics, expected %d..%d (BOS, "
                        "COPY, a token per topic, 16 copy specs, at least 32 content tokens)", V, K,
                        QAT_SYNTH_MIN_VOCAB(K), QAT_SYNTH_MAX_VOCAB);
    int n_spec = QAT_SYNTH_N_OFFSETS * QAT_SYNTH_N_LENGTHS, n_content = V - 2 - K - n_spec;
    int fan[3] = {p->bi_fanout, p->tri_fanout, p->topic_fanout};
    for (int i = 0; i < 3; i++)
        if (fan[i] < 1 || fan[i] > QAT_SYNTH_MAX_FANOUT)
            return qat_fail(QAT_EINPUT, "synthetic corpus: fan-out %d out of range 1..%d", fan[i],
                            QAT_SYNTH_MAX_FANOUT);
    if (p->w_bi < 0 || p->w_tri < 0 || p->w_topic < 0 || fabs(p->w_bi + p->w_tri + p->w_topic - 1) > 1e-9)
        return qat_fail(QAT_EINPUT, "synthetic corpus: mixture weights must be >= 0 and sum to 1");
    if (p->p_end < 0 || p->p_copy < 0 || p->p_end + p->p_copy >= 1 || p->min_doc < 0 ||
        p->max_doc < p->min_doc || p->max_doc < 1)
        return qat_fail(QAT_EINPUT, "synthetic corpus: inconsistent document-length or copy parameters");
    for (int i = 0; i < QAT_SYNTH_N_OFFSETS; i++)
        if (p->offsets[i] < 1 || (i && p->offsets[i] <= p->offsets[i - 1]))
            return qat_fail(QAT_EINPUT, "synthetic corpus: copy offsets must be positive and increasing");
    for (int i = 0; i < QAT_SYNTH_N_LENGTHS; i++)
        if (p->lengths[i] < 1) return qat_fail(QAT_EINPUT, "synthetic corpus: copy lengths must be >= 1");

    qat_synth *s = qat_xcalloc(1, sizeof *s);
    s->p = *p;
    s->L.bos = 0;
    s->L.topic0 = 1;
    s->L.copy = 1 + K;
    s->L.spec0 = 2 + K;
    s->L.n_spec = n_spec;
    s->L.content0 = 2 + K + n_spec;
    s->L.n_content = n_content;
    s->tri_key = qat_hash3(p->seed, KEY_TRI, (uint64_t)V);
    s->doc_key = qat_hash3(p->seed, KEY_DOC, (uint64_t)V * 1000003u + (uint64_t)K);
    zipf_row(p->bi_fanout, p->bi_zipf, s->bi_w, s->bi_c);
    zipf_row(p->tri_fanout, p->tri_zipf, s->tri_w, s->tri_c);
    zipf_row(p->topic_fanout, p->topic_zipf, s->top_w, s->top_c);

    /* Global popularity: Zipf ranks over a seeded permutation of the content tokens. */
    int C = n_content;
    uint16_t *perm = qat_xmalloc((size_t)C * sizeof *perm);
    double *pc = qat_xmalloc((size_t)C * sizeof *pc);
    for (int i = 0; i < C; i++) perm[i] = (uint16_t)(s->L.content0 + i);
    qat_rng r = qat_rng_make(p->seed, KEY_POP);
    for (int i = C - 1; i > 0; i--) {
        int j = (int)qat_rng_below(&r, (uint64_t)i + 1);
        uint16_t tmp = perm[i]; perm[i] = perm[j]; perm[j] = tmp;
    }
    double z = 0;
    for (int i = 0; i < C; i++) z += pow(i + 1.0, -p->pop_zipf);
    double acc = 0;
    for (int i = 0; i < C; i++) { acc += pow(i + 1.0, -p->pop_zipf) / z; pc[i] = acc; }
    pc[C - 1] = 1.0;

    s->bi = qat_xmalloc((size_t)V * p->bi_fanout * sizeof *s->bi);
    for (int v = 0; v < V; v++)
        for (int j = 0; j < p->bi_fanout; j++) {
            double u = qat_u64_to_unit(qat_hash3(p->seed ^ KEY_BI, (uint64_t)v, (uint64_t)j));
            s->bi[(size_t)v * p->bi_fanout + j] = perm[search_cdf(pc, C, u)];
        }
    s->top = qat_xmalloc((size_t)K * p->topic_fanout * sizeof *s->top);
    for (int k = 0; k < K; k++)
        for (int j = 0; j < p->topic_fanout; j++)
            s->top[(size_t)k * p->topic_fanout + j] = (uint16_t)(
                s->L.content0 + below(qat_hash3(p->seed ^ KEY_TOP, (uint64_t)k, (uint64_t)j), (uint64_t)C));
    free(perm);
    free(pc);
    s->max_entries = 2 + p->bi_fanout + p->tri_fanout + p->topic_fanout;
    if (s->max_entries < K) s->max_entries = K;
    if (s->max_entries < n_spec) s->max_entries = n_spec;
    *out = s;
    return QAT_OK;
}

void qat_synth_free(qat_synth *s) {
    if (!s) return;
    free(s->bi);
    free(s->top);
    free(s);
}

const qat_synth_params *qat_synth_params_of(const qat_synth *s) { return &s->p; }
const qat_synth_layout *qat_synth_layout_of(const qat_synth *s) { return &s->L; }

int64_t qat_synth_max_doc_tokens(const qat_synth *s) {
    int lmax = 0;
    for (int i = 0; i < QAT_SYNTH_N_LENGTHS; i++) if (s->p.lengths[i] > lmax) lmax = s->p.lengths[i];
    /* BOS, topic, max_doc content, then at worst COPY + spec + a full copy started at the last free slot. */
    return 2 + (int64_t)s->p.max_doc + 2 + lmax + 1;
}

void qat_synth_state_init(qat_synth_state *st) {
    memset(st, 0, sizeof *st);
    st->topic = -1;
}

void qat_synth_state_push(const qat_synth *s, qat_synth_state *st, const uint16_t *doc) {
    int x = doc[st->t];
    if (st->t == 1) {
        int k = x - s->L.topic0;
        st->topic = (k >= 0 && k < s->p.topics) ? k : 0; /* foreign data: any topic keeps it defined */
    } else if (st->t >= 2) {
        if (st->copy_left > 0) {
            st->copy_left--;
        } else if (st->spec_next) {
            int m = x - s->L.spec0;
            if (m < 0 || m >= s->L.n_spec) m = 0;
            st->copy_off = s->p.offsets[m / QAT_SYNTH_N_LENGTHS];
            st->copy_left = s->p.lengths[m % QAT_SYNTH_N_LENGTHS];
            st->spec_next = 0;
        } else if (x == s->L.copy) {
            st->spec_next = 1;
        }
    }
    st->a = st->b;
    st->b = x;
    st->t++;
}

static inline int tri_token(const qat_synth *s, int a, int b, int j) {
    uint64_t h = qat_hash3(s->tri_key, (uint64_t)a * (uint64_t)s->p.vocab + (uint64_t)b, (uint64_t)j);
    return s->L.content0 + (int)below(h, (uint64_t)s->L.n_content);
}

/* Specs allowed after a COPY emitted with n_c content tokens before it: those with distance <= n_c. */
static inline int eligible_specs(const qat_synth *s, int64_t n_c) {
    int e = 0;
    while (e < QAT_SYNTH_N_OFFSETS && s->p.offsets[e] <= n_c) e++;
    return e * QAT_SYNTH_N_LENGTHS;
}

/* End and copy probabilities at a free position with n content tokens so far. */
static inline void free_events(const qat_synth *s, int64_t n, double *pe, double *pc) {
    *pe = n >= s->p.max_doc ? 1.0 : (n >= s->p.min_doc ? s->p.p_end : 0.0);
    *pc = (n >= s->p.offsets[0] && n < s->p.max_doc) ? s->p.p_copy : 0.0;
}

/* The next-token distribution as (token, probability) entries; tokens may repeat
 * (their probabilities add). Returns the number of entries. */
static int sparse_dist(const qat_synth *s, const qat_synth_state *st, const uint16_t *doc, int *tok, double *pr) {
    int n = 0;
    if (st->t == 0) {
        tok[0] = s->L.bos; pr[0] = 1; return 1;
    }
    if (st->t == 1) {
        for (int k = 0; k < s->p.topics; k++) { tok[k] = s->L.topic0 + k; pr[k] = 1.0 / s->p.topics; }
        return s->p.topics;
    }
    if (st->copy_left > 0) {
        tok[0] = doc[st->t - st->copy_off]; pr[0] = 1; return 1;
    }
    if (st->spec_next) {
        int e = eligible_specs(s, st->t - 3);
        for (int m = 0; m < e; m++) { tok[m] = s->L.spec0 + m; pr[m] = 1.0 / e; }
        return e;
    }
    double pe, pc;
    free_events(s, st->t - 2, &pe, &pc);
    if (pe > 0) { tok[n] = s->L.bos; pr[n++] = pe; }
    if (pc > 0) { tok[n] = s->L.copy; pr[n++] = pc; }
    double rest = 1.0 - pe - pc;
    if (rest <= 0) return n;
    const qat_synth_params *p = &s->p;
    const uint16_t *bi = s->bi + (size_t)st->b * p->bi_fanout;
    for (int j = 0; j < p->bi_fanout; j++) { tok[n] = bi[j]; pr[n++] = rest * p->w_bi * s->bi_w[j]; }
    for (int j = 0; j < p->tri_fanout; j++) {
        tok[n] = tri_token(s, st->a, st->b, j); pr[n++] = rest * p->w_tri * s->tri_w[j];
    }
    const uint16_t *top = s->top + (size_t)st->topic * p->topic_fanout;
    for (int j = 0; j < p->topic_fanout; j++) { tok[n] = top[j]; pr[n++] = rest * p->w_topic * s->top_w[j]; }
    return n;
}

void qat_synth_dist(const qat_synth *s, const qat_synth_state *st, const uint16_t *doc, double *p) {
    int tok[4 * QAT_SYNTH_MAX_FANOUT + 8];
    double pr[4 * QAT_SYNTH_MAX_FANOUT + 8];
    memset(p, 0, (size_t)s->p.vocab * sizeof *p);
    int n = sparse_dist(s, st, doc, tok, pr);
    for (int i = 0; i < n; i++) p[tok[i]] += pr[i];
}

/* Entropy (nats) of a sparse distribution; acc is a zeroed vocab-sized scratch, left zeroed. */
static double sparse_entropy(const int *tok, const double *pr, int n, double *acc) {
    if (n == 1) return 0.0;
    for (int i = 0; i < n; i++) acc[tok[i]] += pr[i];
    double h = 0;
    for (int i = 0; i < n; i++) {
        double q = acc[tok[i]];
        if (q > 0) { h -= q * log(q); acc[tok[i]] = 0; } /* zeroing also skips later duplicates */
    }
    return h;
}

int64_t qat_synth_doc(const qat_synth *s, uint64_t index, uint16_t *buf, float *ent) {
    const qat_synth_params *p = &s->p;
    qat_rng r = qat_rng_make(s->doc_key, index);
    double *acc = ent ? qat_xcalloc((size_t)p->vocab, sizeof *acc) : NULL;
    int tok[4 * QAT_SYNTH_MAX_FANOUT + 8];
    double pr[4 * QAT_SYNTH_MAX_FANOUT + 8];
    qat_synth_state st;
    qat_synth_state_init(&st);
    buf[0] = (uint16_t)s->L.bos;
    qat_synth_state_push(s, &st, buf);
    for (;;) {
        int x;
        if (ent) ent[st.t] = (float)sparse_entropy(tok, pr, sparse_dist(s, &st, buf, tok, pr), acc);
        if (st.t == 1) {
            x = s->L.topic0 + (int)qat_rng_below(&r, (uint64_t)p->topics);
        } else if (st.copy_left > 0) {
            x = buf[st.t - st.copy_off];
        } else if (st.spec_next) {
            x = s->L.spec0 + (int)qat_rng_below(&r, (uint64_t)eligible_specs(s, st.t - 3));
        } else {
            double pe, pc;
            free_events(s, st.t - 2, &pe, &pc);
            double u = qat_rng_uniform(&r);
            if (u < pe) break; /* the document ends: the next token is the next document's BOS */
            if (u < pe + pc) {
                x = s->L.copy;
            } else {
                double v = qat_rng_uniform(&r);
                if (v < p->w_bi) {
                    int j = search_cdf(s->bi_c, p->bi_fanout, v / p->w_bi);
                    x = s->bi[(size_t)st.b * p->bi_fanout + j];
                } else if (v < p->w_bi + p->w_tri) {
                    x = tri_token(s, st.a, st.b, search_cdf(s->tri_c, p->tri_fanout, (v - p->w_bi) / p->w_tri));
                } else {
                    int j = search_cdf(s->top_c, p->topic_fanout, (v - p->w_bi - p->w_tri) / p->w_topic);
                    x = s->top[(size_t)st.topic * p->topic_fanout + j];
                }
            }
        }
        buf[st.t] = (uint16_t)x;
        qat_synth_state_push(s, &st, buf);
    }
    free(acc);
    return st.t;
}

void qat_synth_generate(const qat_synth *s, uint64_t first_doc, int64_t n, uint16_t *out, float *ent) {
    int64_t L = qat_synth_max_doc_tokens(s);
    int64_t at = 0;
    uint64_t doc = first_doc;
    float carry = NAN; /* entropy of the BOS that starts the next document */
    /* Blocks of documents generated in parallel, concatenated in index order: the
     * block size only affects speed, never the bytes. */
    int64_t nb_max = 1024;
    uint16_t *blk = qat_xmalloc((size_t)(nb_max * L) * sizeof *blk);
    float *eblk = ent ? qat_xmalloc((size_t)(nb_max * (L + 1)) * sizeof *eblk) : NULL;
    int64_t *len = qat_xmalloc((size_t)nb_max * sizeof *len);
    while (at < n) {
        int64_t nb = (n - at) / 200 + 1;
        if (nb > nb_max) nb = nb_max;
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < nb; i++)
            len[i] = qat_synth_doc(s, doc + (uint64_t)i, blk + i * L, eblk ? eblk + i * (L + 1) : NULL);
        for (int64_t i = 0; i < nb && at < n; i++) {
            int64_t m = len[i] < n - at ? len[i] : n - at;
            memcpy(out + at, blk + i * L, (size_t)m * sizeof *out);
            if (ent) {
                const float *e = eblk + i * (L + 1);
                ent[at] = carry;
                if (m > 1) memcpy(ent + at + 1, e + 1, (size_t)(m - 1) * sizeof *ent);
                carry = e[len[i]];
            }
            at += m;
        }
        doc += (uint64_t)nb;
    }
    free(blk);
    free(eblk);
    free(len);
}

double qat_synth_mean_entropy(const float *ent, int64_t n) {
    double sum = 0;
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++)
        if (!isnan(ent[i])) { sum += ent[i]; k++; }
    return k ? sum / (double)k : NAN;
}
