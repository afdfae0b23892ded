/*
 * core/yaml_dupkeys.c — refusing a key given twice in one YAML mapping.
 *
 * Config files, --set values and sweep files are all checked with this before
 * anything in them is applied, so the mistake is named with the line and column
 * of both occurrences instead of one value silently winning.
 */
#include "config_table.h"

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "error.h"

/* One key of a mapping, for finding repeats by sorting (n log n, where comparing
 * every pair would make a wide mapping quadratic). */
typedef struct {
    const char *name; /* the key's text */
    size_t pos;       /* its index among the mapping's pairs */
    yaml_node_t *node;
} key_ref;

static int by_name_then_pos(const void *a, const void *b) {
    const key_ref *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->pos > y->pos) - (x->pos < y->pos);
}

/* The earliest key of mapping `n` that repeats an earlier one: 1 with it in *dup
 * and the first occurrence in *first, else 0. */
static int repeat_in_mapping(yaml_document_t *doc, yaml_node_t *n, yaml_node_t **dup, yaml_node_t **first) {
    size_t np = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start), m = 0;
    if (np < 2) return 0;
    key_ref *keys = qat_xmalloc(np * sizeof *keys);
    for (size_t i = 0; i < np; i++) {
        yaml_node_t *k = yaml_document_get_node(doc, n->data.mapping.pairs.start[i].key);
        if (k && k->type == YAML_SCALAR_NODE) /* the loaders name non-scalar keys themselves */
            keys[m++] = (key_ref){(const char *)k->data.scalar.value, i, k};
    }
    qsort(keys, m, sizeof *keys, by_name_then_pos);
    size_t best = np;
    for (size_t i = 1; i < m; i++)
        if (!strcmp(keys[i].name, keys[i - 1].name) && (i < 2 || strcmp(keys[i - 1].name, keys[i - 2].name)) &&
            keys[i].pos < best) {
            best = keys[i].pos; /* the second occurrence of a name: sorted by position within it */
            *dup = keys[i].node;
            *first = keys[i - 1].node;
        }
    free(keys);
    return best < np;
}

/* The first key given twice in one mapping anywhere below `n` (depth-first, in
 * document order): libyaml keeps both pairs, and applying them in turn would
 * silently merge `train: {lr: 1}` with a later `train: {tokens: 2}`, so such a
 * file is refused before anything is applied. `path` holds the dotted key of
 * `n` and names the repeated key; *dup and *first receive the two key nodes.
 * An alias is the anchored node itself in libyaml's document, so a node reached
 * again was checked already and is skipped (`seen`, one byte per node): without
 * that, n aliases of aliases would cost 2^n. */
static int find_repeat(yaml_document_t *doc, unsigned char *seen, yaml_node_t *n, char *path, size_t cap, int depth,
                       yaml_node_t **dup, yaml_node_t **first) {
    if (!n || depth > 64) return 0; /* deeper than any config: the loaders refuse it higher up */
    if (seen[n - doc->nodes.start]) return 0;
    seen[n - doc->nodes.start] = 1;
    size_t len = strlen(path);
    if (n->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++)
            if (find_repeat(doc, seen, yaml_document_get_node(doc, *it), path, cap, depth + 1, dup, first)) return 1;
        return 0;
    }
    if (n->type != YAML_MAPPING_NODE) return 0;
    if (repeat_in_mapping(doc, n, dup, first)) {
        snprintf(path + len, cap - len, "%s%s", len ? "." : "", (const char *)(*dup)->data.scalar.value);
        return 1;
    }
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        if (k && k->type == YAML_SCALAR_NODE)
            snprintf(path + len, cap - len, "%s%s", len ? "." : "", (const char *)k->data.scalar.value);
        if (find_repeat(doc, seen, yaml_document_get_node(doc, p->value), path, cap, depth + 1, dup, first)) return 1;
        path[len] = 0;
    }
    return 0;
}

static int find_repeat_from(yaml_document_t *doc, yaml_node_t *n, char *path, size_t cap, yaml_node_t **dup,
                            yaml_node_t **first) {
    unsigned char *seen = qat_xcalloc((size_t)(doc->nodes.top - doc->nodes.start) + 1, 1);
    int found = find_repeat(doc, seen, n, path, cap, 0, dup, first);
    free(seen);
    return found;
}

int qat_yaml_find_repeat(struct yaml_document_s *doc, struct yaml_node_s *n, char *path, size_t cap,
                         struct yaml_node_s **dup, struct yaml_node_s **first) {
    return find_repeat_from(doc, n, path, cap, dup, first);
}

int qat_yaml_unique_keys(struct yaml_document_s *doc, struct yaml_node_s *node, const char *origin) {
    char path[512] = "";
    yaml_node_t *dup, *first;
    if (!find_repeat_from(doc, node, path, sizeof path, &dup, &first)) return QAT_OK;
    return qat_fail(QAT_EINPUT, "%s:%zu:%zu: duplicate key '%s' (first given at %zu:%zu)", origin,
                    dup->start_mark.line + 1, dup->start_mark.column + 1, path, first->start_mark.line + 1,
                    first->start_mark.column + 1);
}
