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
 */
#include "config_table.h"

#include <stdio.h>
#include <yaml.h>

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
