/*
 * data/synth.h — the synthetic corpus of docs/data.md: a test bed for scaling laws on CPU.
 *
 * A stochastic language whose true next-token distribution is known exactly,
 * so the corpus reports its own entropy rate (the loss of a perfect model, the E
 * a scaling-law fit should approach) and has structure at several scales:
 * unigram popularity, a sparse bigram table, document topics, a large hashed
 * trigram "knowledge" table, and exact copies from earlier in the document.
 * The generative process is documented in synth.c and data/README.md.
 *
 * Everything is a function of (seed, vocab, topics): document i is generated
 * from its own counter-keyed stream, so corpus bytes never depend on thread
 * count or generation order, and a longer corpus extends a shorter one.
 *
 * The conditional distribution is computed by a decoder state that sees only
 * the tokens of the current document (qat_synth_state): the generator samples
 * through that same state, so "a function of the visible past" holds by
 * construction, and tests can re-score any corpus token by token.
 */
#ifndef QAT_DATA_SYNTH_H
#define QAT_DATA_SYNTH_H

#include <stdint.h>

#define QAT_SYNTH_N_OFFSETS 4   /* copy distances a spec token can name */
#define QAT_SYNTH_N_LENGTHS 4   /* copy lengths a spec token can name */
#define QAT_SYNTH_MAX_FANOUT 64 /* bound on every sparse row (stack buffers) */
#define QAT_SYNTH_VAL_DOC0 (1ull << 40) /* first document index of the validation split */

typedef struct {
    uint64_t seed;      /* corpus seed: every table and document derives from it */
    int vocab;          /* token ids 0..vocab-1 */
    int topics;         /* document topics, one visible topic token each */
    double pop_zipf;    /* exponent of the global popularity from which bigram successors are drawn */
    int bi_fanout;      /* successors per previous token (sparse bigram row) */
    double bi_zipf;     /* Zipf exponent over a bigram row's successors */
    int tri_fanout;     /* successors per (a, b) context in the hashed trigram table */
    double tri_zipf;    /* Zipf exponent over a trigram row */
    int topic_fanout;   /* preferred tokens per topic */
    double topic_zipf;  /* Zipf exponent over a topic's tokens */
    double w_bi;        /* mixture weight of the bigram component */
    double w_tri;       /* mixture weight of the trigram (knowledge) component */
    double w_topic;     /* mixture weight of the topic component (w_bi + w_tri + w_topic = 1) */
    double p_end;       /* probability that a free position ends the document */
    int min_doc;        /* content tokens before the document may end */
    int max_doc;        /* content tokens after which the document must end */
    double p_copy;      /* probability that a free position starts a copy segment */
    int offsets[QAT_SYNTH_N_OFFSETS]; /* copy distances, increasing */
    int lengths[QAT_SYNTH_N_LENGTHS]; /* copy lengths */
} qat_synth_params;

typedef struct qat_synth qat_synth;

/* Token layout (ids), derived from vocab and topics. */
typedef struct {
    int bos;       /* document separator, always 0 */
    int topic0;    /* topic k is token topic0 + k */
    int copy;      /* the COPY marker */
    int spec0;     /* spec m (offset offsets[m / N_LENGTHS], length lengths[m % N_LENGTHS]) is spec0 + m */
    int n_spec;    /* N_OFFSETS · N_LENGTHS */
    int content0;  /* first ordinary token */
    int n_content; /* ordinary tokens: content0 .. vocab-1 */
} qat_synth_layout;

/* The decoder state after some prefix of one document; depends only on those tokens. */
typedef struct {
    int64_t t;     /* tokens of the document seen so far (BOS included) */
    int topic;     /* topic index once the topic token was seen, else -1 */
    int a, b;      /* the last two tokens: the order-2 context */
    int copy_left; /* tokens of the current copy segment still to come */
    int copy_off;  /* distance back to the copy source */
    int spec_next; /* 1 right after a COPY marker: the next token is a spec */
} qat_synth_state;

/* Defaults for vocab and topics (topics <= 0: 16). */
void qat_synth_params_default(qat_synth_params *p, uint64_t seed, int vocab, int topics);

/* Build the tables. QAT_EINPUT when the vocabulary is too small for the layout. */
int qat_synth_create(const qat_synth_params *p, qat_synth **out);
void qat_synth_free(qat_synth *s);
const qat_synth_params *qat_synth_params_of(const qat_synth *s);
const qat_synth_layout *qat_synth_layout_of(const qat_synth *s);
/* Longest possible document (tokens, BOS included): buffer size for qat_synth_doc. */
int64_t qat_synth_max_doc_tokens(const qat_synth *s);

void qat_synth_state_init(qat_synth_state *st);
/* Advance the state by doc[st->t] (doc holds the document from its BOS). */
void qat_synth_state_push(const qat_synth *s, qat_synth_state *st, const uint16_t *doc);
/* The exact distribution of doc[st->t] given doc[0 .. st->t): p[0..vocab) sums to 1.
 * At a free position, p[bos] is the probability that the document ends here. */
void qat_synth_dist(const qat_synth *s, const qat_synth_state *st, const uint16_t *doc, double *p);

/* Generate document `index` into buf (capacity qat_synth_max_doc_tokens) and return its
 * length. With ent != NULL (capacity length + 1): ent[t] = entropy (nats) of the
 * distribution doc[t] was drawn from, t = 1..len-1, and ent[len] = entropy of the
 * distribution that drew the next document's BOS; ent[0] is left alone. */
int64_t qat_synth_doc(const qat_synth *s, uint64_t index, uint16_t *buf, float *ent);

/* Exactly n tokens: documents first_doc, first_doc+1, ... concatenated, the last one cut.
 * ent (nullable, n entries) as in qat_synth_doc with ent[0] = NaN (nothing precedes it).
 * OpenMP over documents; the result does not depend on the thread count. */
void qat_synth_generate(const qat_synth *s, uint64_t first_doc, int64_t n, uint16_t *out, float *ent);

/* Mean of ent[1..n) ignoring NaN: the entropy rate of a generated split. */
double qat_synth_mean_entropy(const float *ent, int64_t n);

#endif
