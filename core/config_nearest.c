/*
 * core/config_nearest.c — "did you mean": the candidate nearest a misspelt word.
 *
 * Used for unknown config keys (qat_config_nearest_key, against every key and
 * group of the table), for values outside a row's allowed list, and by callers
 * with their own vocabulary (a sweep file's top-level keys). The distance is
 * optimal string alignment, i.e. Levenshtein that also counts a swap of two
 * neighbours as one edit, since swapped letters are the commonest typo.
 */
#include "config_table.h"

#include <string.h>

/* Optimal-string-alignment distance: Levenshtein plus adjacent transpositions,
 * so "trian" is one edit from "train". Strings longer than 63 are cut. */
static int edit_distance(const char *a, const char *b) {
    int n = (int)strlen(a), m = (int)strlen(b);
    if (n > 63) n = 63;
    if (m > 63) m = 63;
    int d[64][64];
    for (int i = 0; i <= n; i++) d[i][0] = i;
    for (int j = 0; j <= m; j++) d[0][j] = j;
    for (int i = 1; i <= n; i++)
        for (int j = 1; j <= m; j++) {
            int cost = a[i - 1] != b[j - 1];
            int v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v) v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[n][m];
}

/* Score one candidate: the better of the whole-path distance and the distance
 * between last components (so `model.lr` finds `train.lr`), with prefixes of a
 * last component counted as one edit; ties go to the smaller whole-path
 * distance, then to table order. */
static void nearest_consider(const char *key, const char *cand, const char **best, int *bs, int *bf) {
    int full = edit_distance(key, cand);
    int last = edit_distance(qat_config_key_leaf(key), qat_config_key_leaf(cand));
    int s = last < full ? last : full;
    /* An abbreviation (`train.sched`) is as close as a one-letter typo. */
    const char *kl = qat_config_key_leaf(key), *cl = qat_config_key_leaf(cand);
    if (s > 1 && *kl && !strncmp(kl, cl, strlen(kl))) s = 1;
    if (!*best || s < *bs || (s == *bs && full < *bf)) {
        *best = cand;
        *bs = s;
        *bf = full;
    }
}

const char *qat_config_nearest_key(const char *key) {
    static _Thread_local char group[QAT_NAME_MAX];
    const char *best = NULL;
    int bs = 0, bf = 0;
    for (int i = 0; i < qat_config_n_keys; i++) nearest_consider(key, qat_config_keys[i].key, &best, &bs, &bf);
    /* Group names are candidates too, for a misspelt section (`trian:`). */
    for (int i = 0; i < qat_config_n_keys; i++) {
        char g[QAT_NAME_MAX];
        qat_config_copy_str(g, sizeof g, qat_config_keys[i].key);
        for (char *dot = strrchr(g, '.'); dot; dot = strrchr(g, '.')) {
            *dot = 0;
            const char *prev = best;
            nearest_consider(key, g, &best, &bs, &bf);
            if (best != prev) {
                qat_config_copy_str(group, sizeof group, g);
                best = group;
            }
        }
    }
    return best;
}

const char *qat_config_nearest_word(const char *word, const char *const *candidates) {
    const char *best = NULL;
    int bd = 0;
    for (int i = 0; candidates[i]; i++) {
        int d = edit_distance(word, candidates[i]);
        if (!best || d < bd) best = candidates[i], bd = d;
    }
    return best;
}
