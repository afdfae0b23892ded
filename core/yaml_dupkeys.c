/*
 * core/yaml_dupkeys.c — refusing a key given twice in one YAML mapping.
 *
 * Config files, --set values and sweep files are all checked with this before
 * anything in them is applied, so the mistake is named with the line and column
 * of both occurrences instead of one value silently winning.
 */
#include "config_table.h"

#include <string.h>
#include <yaml.h>

#include "error.h"

/* The first key given twice in one mapping anywhere below `n` (depth-first, in
 * document order): libyaml keeps both pairs, and applying them in turn would
 * silently merge `train: {lr: 1}` with a later `train: {tokens: 2}`, so such a
 * file is refused before anything is applied. `path` holds the dotted key of
 * `n` and names the repeated key; *dup and *first receive the two key nodes. */
static int find_repeat(yaml_document_t *doc, yaml_node_t *n, char *path, size_t cap, int depth, yaml_node_t **dup,
                       yaml_node_t **first) {
    if (!n || depth > 64) return 0; /* deeper than any config: an alias loop at worst */
    size_t len = strlen(path);
    if (n->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++)
            if (find_repeat(doc, yaml_document_get_node(doc, *it), path, cap, depth + 1, dup, first)) return 1;
        return 0;
    }
    if (n->type != YAML_MAPPING_NODE) return 0;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        if (!k || k->type != YAML_SCALAR_NODE) continue; /* the loaders name non-scalar keys themselves */
        const char *name = (const char *)k->data.scalar.value;
        for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *k0 = yaml_document_get_node(doc, q->key);
            if (k0 && k0->type == YAML_SCALAR_NODE && !strcmp((const char *)k0->data.scalar.value, name)) {
                snprintf(path + len, cap - len, "%s%s", len ? "." : "", name);
                *dup = k;
                *first = k0;
                return 1;
            }
        }
    }
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        if (k && k->type == YAML_SCALAR_NODE)
            snprintf(path + len, cap - len, "%s%s", len ? "." : "", (const char *)k->data.scalar.value);
        if (find_repeat(doc, yaml_document_get_node(doc, p->value), path, cap, depth + 1, dup, first)) return 1;
        path[len] = 0;
    }
    return 0;
}

int qat_yaml_find_repeat(struct yaml_document_s *doc, struct yaml_node_s *n, char *path, size_t cap,
                         struct yaml_node_s **dup, struct yaml_node_s **first) {
    return find_repeat(doc, n, path, cap, 0, dup, first);
}

int qat_yaml_unique_keys(struct yaml_document_s *doc, struct yaml_node_s *node, const char *origin) {
    char path[512] = "";
    yaml_node_t *dup, *first;
    if (!find_repeat(doc, node, path, sizeof path, 0, &dup, &first)) return QAT_OK;
    return qat_fail(QAT_EINPUT, "%s:%zu:%zu: duplicate key '%s' (first given at %zu:%zu)", origin,
                    dup->start_mark.line + 1, dup->start_mark.column + 1, path, first->start_mark.line + 1,
                    first->start_mark.column + 1);
}
