/*
 * scaling/report.c — the human table, the docs/cli.md JSON and the per-run CSV of
 * a fit, plus the derived tables (ρ-plane points, format prices) that the
 * FIT.h5 writer stores for the plots.
 *
 * JSON keys are fixed by docs/cli.md (other tools parse them): law, n_runs,
 * params {A, alpha, B, beta, E}, capacity {type: {L, F, C}} for the types
 * present, eff {"W/A": eff or ρ}, ci {name: [lo, hi]}, fixed {name: {value, by,
 * why}} for parameters held by --fix or by the identifiability rules, rmse_log,
 * bootstrap {drawn, used}.
 * The quartet law adds gamma to params and eff_n, eff_d {"W/A/G": value} with
 * eff_n_ci, eff_d_ci {"W/A/G": [lo, hi]} (keys of docs/scaling-laws.md). Nothing else
 * is added; the leave-one-out error lives in the table and in FIT.h5.
 */
#include "scaling/report.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "compress/capacity.h"
#include "compress/format_table.h"
#include "core/error.h"
#include "core/fsutil.h"

static void cap_points(const qat_fit_runs *rs, const qat_fit_problem *p, qat_fit_cap_point *pt) {
    for (int k = 0; k < p->n_pairs; k++) {
        const qat_fit_run *r = &rs->run[p->pair_run[k]];
        pt[k] = (qat_fit_cap_point){-1, NAN, 0};
        if (r->n_terms <= 0) continue;
        int same = 1;
        for (int j = 1; j < r->n_terms; j++)
            same &= r->terms[j].type == r->terms[0].type && r->terms[j].gmse == r->terms[0].gmse;
        if (same) pt[k] = (qat_fit_cap_point){(int)r->terms[0].type, r->terms[0].gmse, r->n_terms};
    }
}

/* Weight-only capacity of one format under the fit, NaN when the fit cannot price it. */
static double format_rho(const qat_fit_report *rep, const qat_fit_resolver *res, const char *fmt, double *gmse) {
    const qat_fit_problem *p = rep->p;
    *gmse = NAN;
    if (!strcmp(fmt, "fp32")) return 1.0;
    if (p->law == QAT_LAW_UNIFIED) {
        qat_cap_term t[QAT_FIT_MAX_TERMS];
        int nt = 0;
        if (!res || !res->terms || res->terms(fmt, t, QAT_FIT_MAX_TERMS, &nt)) { qat_clear_error(); return NAN; }
        double rho = 1.0;
        for (int j = 0; j < nt; j++) {
            if (p->type_off[t[j].type] < 0) return NAN; /* a type this fit never saw */
            rho *= qat_fit_cap_rho(p, rep->r->theta, (int)t[j].type, t[j].gmse);
        }
        if (nt == 1) *gmse = t[0].gmse;
        return rho;
    }
    if (p->law == QAT_LAW_DECOUPLED) {
        char key[2 * QAT_FIT_FMT_LEN + 2];
        snprintf(key, sizeof key, "%s/fp32", fmt);
        for (int k = 0; k < p->n_pairs; k++)
            if (!strcmp(p->pair[k], key)) return rep->r->pair_rho[k];
    }
    return NAN;
}

static void add_format(qat_fit_report *rep, const qat_fit_resolver *res, const char *fmt, int in_data) {
    for (int k = 0; k < rep->n_fmt; k++)
        if (!strcmp(rep->fmt[k].name, fmt)) { rep->fmt[k].in_data |= in_data; return; }
    double bits, gmse;
    if (!res || !res->bits || res->bits(fmt, &bits)) { qat_clear_error(); return; }
    double rho = format_rho(rep, res, fmt, &gmse);
    if (!isfinite(rho)) return;
    rep->fmt = qat_xrealloc(rep->fmt, (size_t)(rep->n_fmt + 1) * sizeof *rep->fmt);
    qat_fit_format_row *row = &rep->fmt[rep->n_fmt++];
    snprintf(row->name, sizeof row->name, "%s", fmt);
    row->bits = bits;
    row->rho = rho;
    row->gmse = gmse;
    row->in_data = in_data;
}

void qat_fit_report_prepare(qat_fit_report *rep, const qat_fit_resolver *res) {
    rep->pt = qat_xmalloc((size_t)rep->p->n_pairs * sizeof *rep->pt);
    cap_points(rep->runs, rep->p, rep->pt);
    if (rep->dp) {
        rep->dpt = qat_xmalloc((size_t)rep->dp->n_pairs * sizeof *rep->dpt);
        cap_points(rep->runs, rep->dp, rep->dpt);
    }
    for (int i = 0; i < rep->runs->n; i++) add_format(rep, res, rep->runs->run[i].wfmt, 1);
    if (rep->p->law == QAT_LAW_UNIFIED) {
        /* the candidates besides the data: every kind's own list (compress/format_table.c) */
        int nc;
        const char *const *cand = qat_fmt_frontier_candidates(&nc);
        for (int k = 0; k < nc; k++) add_format(rep, res, cand[k], 0);
    }
}

void qat_fit_report_free(qat_fit_report *rep) {
    free(rep->pt); free(rep->dpt); free(rep->fmt);
    rep->pt = rep->dpt = NULL;
    rep->fmt = NULL;
    rep->n_fmt = 0;
}

static int pair_runs(const qat_fit_problem *p, int k) {
    int c = 0;
    for (int i = 0; i < p->n; i++) c += p->pair_of[i] == k;
    return c;
}

/* ρ of run i's formats with the published Llama/C4 constants (L = 1, F = 0.41,
 * C = 1.39 for every type): what the paper's law predicts before any fitting. */
static double predicted_rho(const qat_fit_problem *p, int i) {
    double rho = 1.0;
    for (int j = 0; j < p->nt[i]; j++) {
        double x = p->tx[(size_t)i * QAT_FIT_MAX_TERMS + j]; /* log_{1/4} gmse */
        rho *= QAT_CAP_PUBLISHED.L * pow(tanh(QAT_CAP_PUBLISHED.F * x), QAT_CAP_PUBLISHED.C);
    }
    return rho;
}

/* An eff's label in the pair tables: held by an identifiability rule (its
 * reason is listed under the table) or fixed by the user's --fix. */
static const char *held_label(int fixed) {
    return fixed == QAT_FIT_BY_RULE ? "(held, see below)" : "(fixed by --fix)";
}

static void interval(FILE *out, double lo, double hi, int fixed) {
    if (fixed == QAT_FIT_BY_RULE) fprintf(out, "  (held: the data cannot tell it, see below)");
    else if (fixed) fprintf(out, "  (fixed by --fix)");
    else if (isfinite(lo) && isfinite(hi)) fprintf(out, "  [%.5g, %.5g]", lo, hi);
}

void qat_fit_key_effs(const qat_fit_problem *p, const qat_fit_result *r, int k, double e[6]) {
    int kn = p->eff_of_pair[p->key_pair[k]], kd = p->effd_of_bwd[p->key_bwd[k]];
    e[0] = r->pair_rho[p->key_pair[k]];
    e[1] = kn < 0 ? 1.0 : r->pair_lo[p->key_pair[k]];
    e[2] = kn < 0 ? 1.0 : r->pair_hi[p->key_pair[k]];
    e[3] = exp(qat_fit_quartet_log_effd(p, r->theta, p->key_bwd[k]));
    e[4] = kd < 0 ? 1.0 : r->lo[kd];
    e[5] = kd < 0 ? 1.0 : r->hi[kd];
}

void qat_fit_print_table(FILE *out, const qat_fit_report *rep) {
    const qat_fit_problem *p = rep->p;
    const qat_fit_result *r = rep->r;
    fprintf(out, "qat fit: %s law, %d runs", qat_fit_law_name(p->law), p->n);
    if (rep->skipped) fprintf(out, " (%d input%s skipped, see warnings)", rep->skipped, rep->skipped == 1 ? "" : "s");
    fprintf(out, ", Huber delta = %g on ln L\n", QAT_FIT_HUBER_DELTA);
    /* intervals only from QAT_FIT_MIN_BOOTSTRAP usable resamples on (bootstrap.c) */
    int boot = rep->bootstrap && r->n_boot >= QAT_FIT_MIN_BOOTSTRAP;
    if (boot)
        fprintf(out, "intervals: 95%% percentile, %d of %d bootstrap resamples over runs (seed %llu)%s\n",
                r->n_boot, rep->bootstrap, rep->seed,
                r->n_boot_dropped ? "; the others drew too few runs of some format to tell its eff and were dropped"
                                  : "");
    else if (rep->bootstrap)
        fprintf(out, "intervals: none: only %d of %d bootstrap resamples over runs (seed %llu) drew enough runs of "
                "every format to tell its eff (the others drew too few runs of some format, or did not converge), "
                "fewer than the %d a 95%% percentile interval needs (fewer give percentiles that are single extreme "
                "resamples); add runs of the formats with few\n",
                r->n_boot, rep->bootstrap, rep->seed, QAT_FIT_MIN_BOOTSTRAP);
    fprintf(out, "\n  %-18s %12s  %s\n", "parameter", "value", boot ? "95% interval" : "");
    for (int k = 0; k < p->np; k++) {
        if (p->law == QAT_LAW_DECOUPLED && k >= 5) break; /* effs go in the pair table */
        if (p->law == QAT_LAW_QUARTET && k > QAT_FIT_GAMMA) break; /* and in the W/A/G table */
        fprintf(out, "  %-18s %12.5g", p->name[k], qat_fit_value(p, r->theta, k));
        interval(out, r->lo[k], r->hi[k], p->fixed[k]);
        fputc('\n', out);
    }
    if (p->law == QAT_LAW_QUARTET) {
        fprintf(out, "\n  %-34s %8s  %-20s %8s  %-20s %5s\n", "format key (W/A/G)", "effN",
                boot ? "95% interval" : "", "effD", boot ? "95% interval" : "", "runs");
        for (int k = 0; k < p->n_keys; k++) {
            double e[6];
            qat_fit_key_effs(p, r, k, e);
            char iv[2][64];
            for (int j = 0; j < 2; j++) {
                int idx = j ? p->effd_of_bwd[p->key_bwd[k]] : p->eff_of_pair[p->key_pair[k]];
                if (idx < 0) snprintf(iv[j], sizeof iv[j], "(fp32 baseline)");
                else if (p->fixed[idx]) snprintf(iv[j], sizeof iv[j], "%s", held_label(p->fixed[idx]));
                else if (isfinite(e[3 * j + 1])) snprintf(iv[j], sizeof iv[j], "[%.4g, %.4g]", e[3 * j + 1], e[3 * j + 2]);
                else iv[j][0] = 0;
            }
            int runs = 0;
            for (int i = 0; i < p->n; i++) runs += p->pair_of[i] == p->key_pair[k] && p->bwd_of[i] == p->key_bwd[k];
            fprintf(out, "  %-34s %8.4g  %-20s %8.4g  %-20s %5d\n", p->key[k], e[0], iv[0], e[3], iv[1], runs);
        }
    } else if (p->law != QAT_LAW_CHINCHILLA) {
        int uni = p->law == QAT_LAW_UNIFIED;
        fprintf(out, "\n  %-24s %10s  %-22s %5s%s\n", "format pair (W/A)", uni ? "rho" : "eff",
                boot ? "95% interval" : "", "runs", uni ? "  predicted (published L,F,C)" : "");
        for (int k = 0; k < p->n_pairs; k++) {
            /* the baseline is 1 by definition, an eff held by a rule is not
             * the user's choice: say which (all three were "(fixed)") */
            int dec = p->law == QAT_LAW_DECOUPLED, e = p->eff_of_pair[k];
            char iv[64] = "";
            if (dec && e < 0) snprintf(iv, sizeof iv, "(fp32 baseline)");
            else if (dec && p->fixed[e]) snprintf(iv, sizeof iv, "%s", held_label(p->fixed[e]));
            else if (isfinite(r->pair_lo[k])) snprintf(iv, sizeof iv, "[%.4g, %.4g]", r->pair_lo[k], r->pair_hi[k]);
            fprintf(out, "  %-24s %10.4g  %-22s %5d", p->pair[k], r->pair_rho[k], iv, pair_runs(p, k));
            if (uni) fprintf(out, "  %.4g", predicted_rho(p, p->pair_run[k]));
            fputc('\n', out);
        }
    }
    int held = 0;
    for (int k = 0; k < p->np; k++)
        if (p->fixed[k] == QAT_FIT_BY_RULE) {
            if (!held++)
                fprintf(out, "\nHELD, NOT FITTED (%swhere the fit put them; --fix them to choose other values):\n",
                        p->law == QAT_LAW_UNIFIED ? "capacity constants at the published Llama/C4 values, the others "
                                                  : "");
            fprintf(out, "  %s = %g: %s\n", p->name[k], qat_fit_value(p, r->theta, k), p->why[k]);
        }
    fprintf(out, "\nfit error: rmse(ln L) = %.5g", r->rmse_log);
    if (isfinite(r->loo_rmse_log)) fprintf(out, ", leave-one-out rmse(ln L) = %.5g", r->loo_rmse_log);
    fprintf(out, ", Huber objective = %.6g, %.2f s\n", r->objective, r->seconds);
}

static void json_num(FILE *out, double v) {
    if (isfinite(v)) fprintf(out, "%.9g", v);
    else fputs("null", out);
}

static void json_str(FILE *out, const char *s) {
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(out, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) fprintf(out, "\\u%04x", *s);
        else fputc(*s, out);
    }
    fputc('"', out);
}

void qat_fit_print_json(FILE *out, const qat_fit_report *rep) {
    const qat_fit_problem *p = rep->p;
    const qat_fit_result *r = rep->r;
    fprintf(out, "{\"law\": \"%s\", \"n_runs\": %d, \"params\": {", qat_fit_law_name(p->law), p->n);
    static const int order5[] = {0, 1, 2, 3, 4}, order6[] = {0, 1, 2, 3, QAT_FIT_GAMMA, 4}; /* quartet: gamma before E */
    int quartet = p->law == QAT_LAW_QUARTET;
    for (int j = 0; j < (quartet ? 6 : 5); j++) {
        int k = quartet ? order6[j] : order5[j];
        fprintf(out, "%s\"%s\": ", j ? ", " : "", p->name[k]);
        json_num(out, qat_fit_value(p, r->theta, k));
    }
    fprintf(out, "}, \"capacity\": {");
    int first = 1;
    for (int t = 0; t < QAT_CAP_NTYPES; t++) {
        int o = p->type_off[t];
        if (o < 0) continue;
        fprintf(out, "%s\"%s\": {", first ? "" : ", ", qat_fit_type_name(t));
        for (int j = 0; j < 3; j++) {
            fprintf(out, "%s\"%c\": ", j ? ", " : "", "LFC"[j]);
            json_num(out, qat_fit_value(p, r->theta, o + j));
        }
        fputc('}', out);
        first = 0;
    }
    fprintf(out, "}, \"eff\": {");
    if (p->law != QAT_LAW_CHINCHILLA)
        for (int k = 0; k < p->n_pairs; k++) {
            if (k) fputs(", ", out);
            json_str(out, p->pair[k]);
            fputs(": ", out);
            json_num(out, r->pair_rho[k]);
        }
    fprintf(out, "}, \"ci\": {");
    first = 1;
    for (int k = 0; k < p->np; k++) {
        if (!isfinite(r->lo[k])) continue;
        if (p->law == QAT_LAW_DECOUPLED && k >= 5) continue; /* listed with the pairs below */
        fprintf(out, "%s", first ? "" : ", ");
        json_str(out, p->name[k]);
        fputs(": [", out); json_num(out, r->lo[k]); fputs(", ", out); json_num(out, r->hi[k]); fputc(']', out);
        first = 0;
    }
    if (p->law != QAT_LAW_CHINCHILLA && !quartet) /* quartet effs are in ci by name (effN:W/A) */
        for (int k = 0; k < p->n_pairs; k++) {
            if (!isfinite(r->pair_lo[k])) continue;
            fprintf(out, "%s", first ? "" : ", ");
            json_str(out, p->pair[k]);
            fputs(": [", out); json_num(out, r->pair_lo[k]); fputs(", ", out); json_num(out, r->pair_hi[k]);
            fputc(']', out);
            first = 0;
        }
    if (quartet) {
        /* per W/A/G key: effN of its W/A, effD of its G, and their intervals */
        static const char *obj[4] = {"eff_n", "eff_d", "eff_n_ci", "eff_d_ci"};
        for (int o = 0; o < 4; o++) {
            fprintf(out, "}, \"%s\": {", obj[o]);
            int n_out = 0;
            for (int k = 0; k < p->n_keys; k++) {
                double e[6];
                qat_fit_key_effs(p, r, k, e);
                const double *v = e + 3 * (o & 1);
                /* without --bootstrap no interval at all, as "ci" ({}), not the baselines' held [1, 1] */
                if (o >= 2 && (!rep->bootstrap || r->n_boot < QAT_FIT_MIN_BOOTSTRAP || !(isfinite(v[1]) && isfinite(v[2]))))
                    continue;
                fputs(n_out++ ? ", " : "", out);
                json_str(out, p->key[k]);
                fputs(": ", out);
                if (o < 2) { json_num(out, v[0]); continue; }
                fputc('[', out); json_num(out, v[1]); fputs(", ", out); json_num(out, v[2]); fputc(']', out);
            }
        }
    }
    /* Every parameter that did not move, and why: "user" (--fix) or "rule"
     * (the runs cannot tell it; scaling/identify.c). */
    fprintf(out, "}, \"fixed\": {");
    first = 1;
    for (int k = 0; k < p->np; k++) {
        if (!p->fixed[k]) continue;
        fprintf(out, "%s", first ? "" : ", ");
        json_str(out, p->name[k]);
        fputs(": {\"value\": ", out);
        json_num(out, qat_fit_value(p, r->theta, k));
        fprintf(out, ", \"by\": \"%s\"", p->fixed[k] == QAT_FIT_BY_RULE ? "rule" : "user");
        if (p->why[k][0]) { fputs(", \"why\": ", out); json_str(out, p->why[k]); }
        fputc('}', out);
        first = 0;
    }
    fprintf(out, "}, \"rmse_log\": ");
    json_num(out, r->rmse_log);
    /* how many resamples the intervals rest on: "ci" is {} below QAT_FIT_MIN_BOOTSTRAP used */
    fprintf(out, ", \"bootstrap\": {\"drawn\": %d, \"used\": %d}}\n", rep->bootstrap, rep->bootstrap ? r->n_boot : 0);
}

static void csv_field(FILE *out, const char *s) {
    if (!strpbrk(s, ",\"\n\r")) { fputs(s, out); return; } /* a CR ends a line too (scaling/csv.c) */
    fputc('"', out);
    for (; *s; s++) { if (*s == '"') fputc('"', out); fputc(*s, out); }
    fputc('"', out);
}

int qat_fit_write_csv(const char *path, const qat_fit_report *rep, const char *const *inputs, int n_inputs) {
    qat_out o;
    QAT_TRY(qat_out_begin(&o, path, 0, inputs, n_inputs));
    FILE *out = qat_out_stream(&o);
    /* grad_format is the backward scheme key (a CSV input reads it back by name);
     * eff_d is the quartet law's effD of that scheme, 1 under the other laws. */
    const qat_fit_problem *p = rep->p;
    fprintf(out, "N,D,loss,format,act_format,grad_format,rho,eff_d,pred,resid_log,origin\n");
    for (int i = 0; i < p->n; i++) {
        const qat_fit_run *u = &rep->runs->run[i];
        fprintf(out, "%.10g,%.10g,%.10g,", u->N, u->D, u->loss);
        csv_field(out, u->wfmt); fputc(',', out);
        csv_field(out, u->afmt); fputc(',', out);
        csv_field(out, qat_fit_run_bwd(u));
        double effd = p->law == QAT_LAW_QUARTET ? exp(qat_fit_quartet_log_effd(p, rep->r->theta, p->bwd_of[i])) : 1.0;
        fprintf(out, ",%.8g,%.8g,%.10g,%.8g,", rep->r->rho[i], effd, rep->r->pred[i], rep->r->resid[i]);
        csv_field(out, u->origin);
        fputc('\n', out);
    }
    return qat_out_commit(&o);
}
