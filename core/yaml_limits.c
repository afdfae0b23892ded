/*
 * core/yaml_limits.c — refusing YAML shapes that would cost more than linear time
 * before libyaml builds a document from them.
 *
 * libyaml's scanner rescans its stack of open flow collections on every token, so
 * `[[[...]]]` n deep costs n^2; its loader compares every anchor (and alias) with
 * every anchor before it, so n anchors cost n^2 too. No config or sweep needs more
 * than a few levels or a few anchors, so one pass of the scanner alone (tokens, no
 * document) stops at the first token past a limit, which costs at most the limit
 * per token, and the caller names that token's position. The document is then
 * built by a second parser over the same input. Scanner errors are left to that
 * parse, which reports them with its own context.
 *
 * The reader's own errors (bytes that are not UTF-8) carry only a byte offset;
 * qat_yaml_reader_mark turns it into the line and column every other message
 * gives. qat_yaml_load_text does the two parses and words every failure, for
 * the config loader and the sweep file alike.
 */
#include "config_table.h"

#include <stdio.h>
#include <yaml.h>

#include "error.h"

int qat_yaml_check_limits(struct yaml_parser_s *parser, struct yaml_mark_s *at, char *why, size_t n) {
    int depth = 0, anchors = 0, aliases = 0, rc = 0;
    for (int done = 0; !done && !rc;) {
        yaml_token_t t;
        if (!yaml_parser_scan(parser, &t)) break; /* a syntax error: the real parse names it */
        switch (t.type) {
        case YAML_STREAM_END_TOKEN:
            done = 1;
            break;
        case YAML_FLOW_SEQUENCE_START_TOKEN:
        case YAML_FLOW_MAPPING_START_TOKEN:
        case YAML_BLOCK_SEQUENCE_START_TOKEN:
        case YAML_BLOCK_MAPPING_START_TOKEN:
            if (++depth > QAT_YAML_MAX_DEPTH) {
                snprintf(why, n, "nested deeper than %d levels, expected a config or sweep (a few levels)",
                         QAT_YAML_MAX_DEPTH);
                rc = 1;
            }
            break;
        case YAML_FLOW_SEQUENCE_END_TOKEN:
        case YAML_FLOW_MAPPING_END_TOKEN:
        case YAML_BLOCK_END_TOKEN:
            depth--;
            break;
        case YAML_ANCHOR_TOKEN:
        case YAML_ALIAS_TOKEN: {
            int alias = t.type == YAML_ALIAS_TOKEN;
            if (++*(alias ? &aliases : &anchors) > QAT_YAML_MAX_ANCHORS) {
                snprintf(why, n, "more than %d %s, expected at most %d", QAT_YAML_MAX_ANCHORS,
                         alias ? "aliases (*name)" : "anchors (&name)", QAT_YAML_MAX_ANCHORS);
                rc = 1;
            }
            break;
        }
        default:
            break;
        }
        if (rc) *at = t.start_mark;
        yaml_token_delete(&t);
    }
    return rc;
}

/* Advance (line, column) over one byte: a newline starts a line, a UTF-8
 * continuation byte belongs to the character before it. */
static void count_byte(unsigned char ch, size_t *line, size_t *col) {
    if (ch == '\n') ++*line, *col = 0;
    else if ((ch & 0xC0) != 0x80) ++*col;
}

void qat_yaml_reader_mark(struct yaml_parser_s *parser, const char *text, size_t len) {
    if (parser->error != YAML_READER_ERROR) return;
    size_t off = parser->problem_offset, line = 0, col = 0;
    for (size_t i = 0; i < off && i < len; i++) count_byte((unsigned char)text[i], &line, &col);
    parser->problem_mark.index = off;
    parser->problem_mark.line = line;
    parser->problem_mark.column = col;
}

int qat_yaml_load_text(const char *text, size_t len, yaml_document_t *doc, yaml_mark_t *at, char *why, size_t n) {
    yaml_parser_t parser;
    QAT_ASSERT(yaml_parser_initialize(&parser));
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    int too_much = qat_yaml_check_limits(&parser, at, why, n);
    yaml_parser_delete(&parser);
    if (too_much) return 1;
    QAT_ASSERT(yaml_parser_initialize(&parser));
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    int ok = yaml_parser_load(&parser, doc);
    if (ok) {
        /* a second document would be silently ignored: refuse it */
        yaml_document_t more;
        if (!yaml_parser_load(&parser, &more)) {
            ok = 0;
        } else {
            yaml_node_t *r2 = yaml_document_get_root_node(&more);
            if (r2) {
                snprintf(why, n, "expected a single YAML document, found a second one");
                *at = r2->start_mark;
            }
            yaml_document_delete(&more);
            if (r2) {
                yaml_document_delete(doc);
                yaml_parser_delete(&parser);
                return 1;
            }
        }
        if (!ok) yaml_document_delete(doc);
    }
    if (!ok) {
        const char *problem = parser.problem ? parser.problem : "unknown error";
        if (parser.error == YAML_READER_ERROR) {
            qat_yaml_reader_mark(&parser, text, len);
            snprintf(why, n, "YAML syntax error: %s (byte %zu; expected UTF-8 text)", problem, parser.problem_offset);
        } else if (parser.context) {
            snprintf(why, n, "YAML syntax error: %s (%s at line %zu)", problem, parser.context,
                     parser.context_mark.line + 1);
        } else {
            snprintf(why, n, "YAML syntax error: %s", problem);
        }
        *at = parser.problem_mark;
    }
    yaml_parser_delete(&parser);
    return !ok;
}
