/*
 * core/config_emit.c — a config as YAML text: the file with every key that
 * --print-config shows and every checkpoint embeds, and single values for
 * key-by-key comparison (the resume check, `qat fit --where`).
 *
 * The text is written so that loading it back gives the same config bit for
 * bit: every key in table order, numbers as the shortest text that reads back
 * exactly, strings always double-quoted (so "", "2:4", "yes" and "~" stay
 * strings), each line followed by its key's help as a comment.
 */
#include "config_table.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

void qat_config_bprintf(qat_config_buf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->n;
        int w = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? room : 0, fmt, ap);
        va_end(ap);
        QAT_ASSERT(w >= 0);
        if (b->s && (size_t)w < room) {
            b->n += (size_t)w;
            return;
        }
        b->cap = (b->cap + (size_t)w + 1) * 2;
        b->s = qat_xrealloc(b->s, b->cap);
        b->s[b->n] = 0;
    }
}

/* Double-quoted YAML string: always quoted so "", "2:4", "yes" and "~" stay strings. */
static void emit_quoted(qat_config_buf *b, const char *s) {
    qat_config_bprintf(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            qat_config_bprintf(b, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            qat_config_bprintf(b, "\\x%02x", *p);
        else
            qat_config_bprintf(b, "%c", *p);
    }
    qat_config_bprintf(b, "\"");
}

/* Value of key k as YAML text (lists excepted). */
static void emit_scalar(qat_config_buf *b, const qat_config *cfg, const qat_key *k) {
    const void *f = qat_config_cfield(cfg, k);
    char num[64];
    switch (k->type) {
    case K_INT: qat_config_bprintf(b, "%d", *(const int *)f); break;
    case K_U64: qat_config_bprintf(b, "%llu", (unsigned long long)*(const uint64_t *)f); break;
    case K_F64:
        qat_config_fmt_double(num, sizeof num, *(const double *)f);
        qat_config_bprintf(b, "%s", num);
        break;
    case K_BOOL: qat_config_bprintf(b, "%s", *(const int *)f ? "true" : "false"); break;
    case K_STR: emit_quoted(b, f); break;
    case K_ENUM:
        QAT_ASSERT(*(const int *)f >= 0 && *(const int *)f < qat_config_n_allowed(k)); /* validated configs only */
        emit_quoted(b, k->allowed[*(const int *)f]);
        break;
    case K_LIST: QAT_ASSERT(0);
    }
}

char *qat_config_key_text(const qat_config *cfg, int i) {
    QAT_ASSERT(i >= 0 && i < qat_config_n_keys);
    const qat_key *k = &qat_config_keys[i];
    qat_config_buf b = {0};
    qat_config_bprintf(&b, "%s", "");
    if (k->type != K_LIST) {
        emit_scalar(&b, cfg, k);
        return b.s;
    }
    qat_config_bprintf(&b, "[");
    for (int j = 0; j < cfg->data.n_text; j++) {
        if (j) qat_config_bprintf(&b, ", ");
        emit_quoted(&b, cfg->data.text[j]);
    }
    qat_config_bprintf(&b, "]");
    return b.s;
}

/* Split "a.b.c" in place into its components; returns their count (<= 8). */
static int split_path(char *s, char **out) {
    int n = 0;
    if (!*s) return 0;
    for (char *p = s; n < 8;) {
        out[n++] = p;
        p = strchr(p, '.');
        if (!p) break;
        *p++ = 0;
    }
    return n;
}

char *qat_config_to_yaml(const qat_config *cfg) {
    qat_config_buf b = {0};
    /* not "resolved": what the model decides (a preset's sizes, the format's default
     * estimator, the auto Hadamard block, which can differ between linears) stays the
     * key's own value, "" / -1 / 0, so this text loads back to the same config */
    qat_config_bprintf(&b, "# qat run config (docs/config.md): every key, defaults included. Automatic values "
                           "(estimator \"\", hadamard -1,\n# model sizes 0) stay as given; the run resolves them "
                           "when it builds the model and its first lines say what\n# they became. Loading this text "
                           "back gives the same run.\n");
    char prev[128] = "";
    for (int i = 0; i < qat_config_n_keys; i++) {
        const qat_key *k = &qat_config_keys[i];
        /* Open the groups this key enters: the components of its group path
         * that differ from the previous key's group path. */
        char group[128], *comp[8], *pcomp[8];
        qat_config_copy_str(group, sizeof group, k->key);
        char *dot = strrchr(group, '.');
        if (dot) *dot = 0; else group[0] = 0;
        char pbuf[128];
        qat_config_copy_str(pbuf, sizeof pbuf, prev);
        int nc = split_path(group, comp), np = split_path(pbuf, pcomp), common = 0;
        while (common < nc && common < np && !strcmp(comp[common], pcomp[common])) common++;
        for (int c = common; c < nc; c++) qat_config_bprintf(&b, "%*s%s:\n", 2 * c, "", comp[c]);
        int depth = nc;
        qat_config_copy_str(prev, sizeof prev, k->key);
        if ((dot = strrchr(prev, '.'))) *dot = 0; else prev[0] = 0;

        size_t line_start = b.n;
        qat_config_bprintf(&b, "%*s%s: ", 2 * depth, "", qat_config_key_leaf(k->key));
        if (k->type == K_LIST) {
            if (!cfg->data.n_text) qat_config_bprintf(&b, "[]");
        } else {
            emit_scalar(&b, cfg, k);
        }
        int width = (int)(b.n - line_start);
        qat_config_bprintf(&b, "%*s# %s\n", width < 40 ? 40 - width : 1, "", k->help);
        if (k->type == K_LIST)
            for (int j2 = 0; j2 < cfg->data.n_text; j2++) {
                qat_config_bprintf(&b, "%*s- ", 2 * depth + 2, "");
                emit_quoted(&b, cfg->data.text[j2]);
                qat_config_bprintf(&b, "\n");
            }
    }
    return b.s;
}
