"""The audit report as one self-contained HTML page: tables plus hand-built inline SVG charts.

No script, no external resource (the CSP forbids both), and every string that came from the data
(document text, URL, doc_id, language code, blocklist term, category, error message) goes through
``esc`` - in HTML text, in attributes and inside SVG ``<text>``/``<title>``.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from toxsieve.pipelines.cli.audit import (
    SCORE_BINS,
    THRESHOLDS,
    AuditReport,
    LanguageFigures,
    evidence,
    flag_evidence,
    length_bin_labels,
)
from toxsieve.pipelines.cli.charts import (
    KEPT,
    READ,
    REMOVED,
    column_chart,
    esc,
    fmt_int,
    fmt_score,
    fmt_share,
    funnel_chart,
    hbar_chart,
    heatmap,
    histogram,
)

CSP = "default-src 'none'; style-src 'unsafe-inline'"
TOP_LANGUAGES = 12  # columns of the stage x language map, rows of the language mix; the rest is "other"
HISTOGRAM_LANGUAGES = 8
TOP_TERMS = 20
CLUSTER_BUCKETS = ((1, 1), (2, 2), (3, 3), (4, 4), (5, 9), (10, 19), (20, 49), (50, 99), (100, 999), (1000, None))

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
main{max-width:72em;margin:0 auto;padding:1.5em 2em 4em;background:#fff}
h1{margin:.2em 0}h2{margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}h3{margin:1.4em 0 .4em}
nav{font-size:13px;margin:.5em 0 1em}nav a{margin-right:.9em}
table{border-collapse:collapse;margin:.5em 0 1.2em}
td,th{border:1px solid #d8d8d8;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3;font-weight:600}.num{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;gap:1em;flex-wrap:wrap;margin:1em 0}
.card{border:1px solid #ddd;border-radius:6px;padding:.5em 1em;min-width:8em}
.card b{display:block;font-size:22px;font-variant-numeric:tabular-nums}
.chart{display:block;max-width:100%;height:auto;margin:.4em 0 1em}
.grid{display:flex;flex-wrap:wrap;gap:0 1.5em}.grid figure{margin:0}
figcaption{font-size:12px;color:#555}
.ex{border:1px solid #ddd;border-radius:6px;padding:.5em .8em;margin:.6em 0}
.ex dl{display:grid;grid-template-columns:7em 1fr;gap:.15em .8em;margin:0}
.ex dt{color:#666}.ex dd{margin:0;overflow-wrap:anywhere}
.excerpt{font-family:ui-monospace,monospace;font-size:12px;white-space:pre-wrap;overflow-wrap:anywhere;
max-height:9em;overflow:auto;background:#f6f6f6;padding:.4em .6em;margin:.4em 0 0;border-radius:4px}
code{font-family:ui-monospace,monospace;font-size:12px;overflow-wrap:anywhere}
.warn{color:#a00;font-weight:bold}.note{color:#555;font-size:13px}
"""


def _slug(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", value) or "_"


def _table(headers: list[str], rows: list[list[str]], numeric: set[int] | frozenset[int] = frozenset()) -> str:
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _threshold_of(report: AuditReport, language: str) -> float | None:
    tox = report.toxicity
    if not tox:
        return None
    return float((tox.get("threshold_per_language") or {}).get(language, tox.get("threshold", 0.9)))


def _band(report: AuditReport) -> tuple[float, float] | None:
    tox = report.toxicity
    if tox.get("cascade_model"):
        return float(tox.get("cascade_low", 0.3)), float(tox.get("cascade_high", 0.97))
    return None


def _score_chart(report: AuditReport, title: str, hist: list[int], language: str | None, width: int) -> str:
    threshold = _threshold_of(report, language or "")
    markers = [(threshold, f"threshold {fmt_score(threshold)}")] if threshold is not None else []
    band = _band(report)
    return histogram(title, hist, markers=markers, band=band, width=width,
                     band_label=("cascade band (fast score): " + " – ".join(fmt_score(b) for b in band)) if band else "",
                     x_label="toxicity score (stored, max over chunks)")


def _top_languages(report: AuditReport, n: int, key: Any) -> list[str]:
    return [name for name, _ in sorted(report.languages.items(), key=lambda kv: (-key(kv[1]), kv[0]))[:n]]


def render_html(report: AuditReport) -> str:
    s = report.stats
    run_id = s.get("run_id") or report.manifest.get("run_id")
    sections: list[tuple[str, str, list[str]]] = []  # (anchor, title, parts)

    funnel = s.get("funnel") or []
    if funnel:
        sections.append(("funnel", "Funnel", [
            funnel_chart(funnel),
            _table(["stage", "in", "removed", "out", "removed share"],
                   [[esc(f.get("stage")), fmt_int(f.get("in")), fmt_int(f.get("removed")), fmt_int(f.get("out")),
                     fmt_share(f.get("removed") or 0, f.get("in") or 0)] for f in funnel], {1, 2, 3, 4}),
        ]))

    if report.removed_by_stage_language:
        langs = _top_languages(report, TOP_LANGUAGES, lambda f: f.removed)
        values: dict[tuple[str, str], int] = {}
        for (st, lang), n in report.removed_by_stage_language.items():
            col = lang if lang in langs else "other"
            values[(st, col)] = values.get((st, col), 0) + n
        cols = [lang for lang in langs if any(values.get((st, lang)) for st, _ in values)]
        if any(c == "other" for _, c in values):
            cols.append("other")
        stage_order = [f.get("stage") for f in funnel] or sorted({st for st, _ in values})
        rows = [st for st in stage_order if any(values.get((st, c)) for c in cols)]
        rows += sorted({st for st, _ in values} - set(rows))
        sections.append(("stage-language", "Removals by stage and language", [
            heatmap("Documents removed, by stage (rows) and language (columns)", rows, cols, values),
            '<p class="note">Languages with the most removals; the rest are summed under "other". '
            "Documents removed before language identification have language (none).</p>",
        ]))

    if report.toxicity_scored or report.toxicity:
        parts = []
        tox = report.toxicity
        if tox:
            per_lang = tox.get("threshold_per_language") or {}
            parts.append(f"<p>Model <code>{esc(tox.get('model'))}</code>, mode <code>{esc(tox.get('mode'))}</code>, "
                         f"threshold {fmt_score(tox.get('threshold'))}"
                         + ("" if not per_lang else ", per language: " + ", ".join(
                             f"{esc(k)} {fmt_score(v)}" for k, v in sorted(per_lang.items())))
                         + (f"; cascade to <code>{esc(tox.get('cascade_model'))}</code> for fast scores in "
                            f"[{fmt_score(tox.get('cascade_low'))}, {fmt_score(tox.get('cascade_high'))}] "
                            f"(shaded), decided at {fmt_score(tox.get('cascade_threshold'))}"
                            if tox.get("cascade_model") else "") + ".</p>")
        unsupported = sum(f.unsupported for f in report.languages.values())
        parts.append(f"<p>{fmt_int(report.toxicity_scored)} documents scored"
                     + (f"; {fmt_int(unsupported)} not scored because the model does not support their language"
                        if unsupported else "") + ". Documents at or above a threshold (stored scores, no model run):</p>")
        parts.append(_table(["threshold", "documents", "share of scored"],
                            [[fmt_score(t), fmt_int(report.toxicity_at.get(t, 0)),
                              fmt_share(report.toxicity_at.get(t, 0), report.toxicity_scored)] for t in THRESHOLDS],
                            {1, 2}))
        total = [sum(f.score_hist[b] for f in report.languages.values()) for b in range(SCORE_BINS)]
        parts.append(_score_chart(report, "Toxicity scores, all languages", total, None, 640))
        parts.append('<p class="note">Per-language histograms, with each language\'s threshold: '
                     '<a href="#languages">Languages</a>.</p>')
        sections.append(("toxicity", "Toxicity scores", parts))

    if report.languages:
        sections.append(("languages", "Languages", _language_section(report)))

    if report.cluster_sizes:
        docs, clusters, labels = [], [], []
        for lo, hi in CLUSTER_BUCKETS:
            sizes = [k for k in report.cluster_sizes if k >= lo and (hi is None or k <= hi)]
            labels.append(str(lo) if lo == hi else (f"{lo}–{hi}" if hi else f"{fmt_int(lo)}+"))
            docs.append(sum(report.cluster_sizes[k] for k in sizes))
            clusters.append(sum(report.cluster_sizes[k] // max(k, 1) for k in sizes))
        first = 1 if any(docs[1:]) else 0  # size 1 (no duplicate) would flatten every other bar: in the table only
        sections.append(("near-dup", "Near-duplicate clusters", [
            column_chart("Near-duplicate cluster sizes: documents and clusters per size"
                         + (" (2 and more)" if first else ""), labels[first:],
                         [("documents", KEPT, docs[first:]), ("clusters", READ, clusters[first:])],
                         x_label="cluster size"),
            _table(["cluster size", "documents", "clusters"],
                   [[esc(lab), fmt_int(d), fmt_int(c)] for lab, d, c in zip(labels, docs, clusters, strict=True) if d],
                   {1, 2}),
            '<p class="note">Size 1: a document with no near duplicate. A cluster keeps one document '
            "(the smallest doc_id); the others are removed as near_duplicate.</p>",
        ]))

    if report.length_hist:
        labels = length_bin_labels()
        kept, removed = report.length_hist.get("kept", [0] * len(labels)), report.length_hist.get("removed", [0] * len(labels))
        used = [i for i in range(len(labels)) if kept[i] or removed[i]]
        if used:
            lo, hi = used[0], used[-1] + 1
            sections.append(("lengths", "Document lengths", [
                column_chart("Document length in characters (log bins), kept vs removed", labels[lo:hi],
                             [("kept", KEPT, kept[lo:hi]), ("removed", REMOVED, removed[lo:hi])],
                             x_label="characters after extraction (bin start)"),
                '<p class="note">Documents removed before text extraction have no length and are not shown.</p>',
            ]))

    block_parts = []
    if report.blocklist_terms:
        top = report.blocklist_terms.most_common(TOP_TERMS)
        block_parts.append("<h3>Top matched word-blocklist terms</h3>")
        block_parts.append(hbar_chart("Top matched word-blocklist terms (documents containing the term)",
                                      [(t, (n,)) for t, n in top], [("documents", REMOVED)]))
    if report.url_categories:
        top = report.url_categories.most_common(TOP_TERMS)
        block_parts.append("<h3>URL blocklist categories</h3>")
        block_parts.append(hbar_chart("URL blocklist categories (documents)", [(t, (n,)) for t, n in top],
                                      [("documents", REMOVED)]))
    if not block_parts:
        block_parts.append("<p>No document matched a word or URL blocklist.</p>")
    sections.append(("blocklists", "Blocklists", block_parts))

    models = report.manifest.get("models") or []
    if models:
        sections.append(("models", "Models", [_table(
            ["role", "name", "sha256"],
            [[esc(m.get("role")), esc(m.get("name")), f"<code>{esc(m.get('sha256'))}</code>"] for m in models])]))

    sections.append(("removed", "Removed, by stage and reason", _removals(report)))
    if report.flags:
        sections.append(("flagged", "Flagged, not removed (annotate mode)", _flags(report)))

    if report.dead_letters:
        sections.append(("dead-letters", "Dead letters (first ones)", [_table(
            ["source", "error", "excerpt"],
            [[f"<code>{esc(d['source_path'])}@{esc(d['source_offset'])}</code>",
              f"{esc(d['error_type'])}: {esc(d['error'])}", f'<div class="excerpt">{esc(d.get("record_excerpt"))}</div>']
             for d in report.dead_letters])]))

    head = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>toxsieve audit: {esc(run_id or report.output)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>toxsieve audit</h1><p>Output <code>{esc(report.output)}</code>, run <code>{esc(run_id)}</code>"
        + (f", finished {esc(report.manifest.get('finished_at'))}" if report.manifest.get("finished_at") else "")
        + ".</p>",
    ]
    if not report.complete:
        head.append('<p class="warn">No manifest.json: the run did not finish or its checks failed.</p>')
    head.append('<div class="cards">' + "".join(
        f'<div class="card">{label}<b>{fmt_int(s.get(key))}</b>'
        + (f"{fmt_share(s.get(key) or 0, s.get('read') or 0)} of read" if key != "read" else "documents and records")
        + "</div>" for key, label in (("read", "read"), ("kept", "kept"), ("removed", "removed"),
                                       ("dead_lettered", "dead-lettered"))) + "</div>")
    head.append("<nav>" + "".join(f'<a href="#{a}">{esc(t)}</a>' for a, t, _ in sections) + "</nav>")
    body = [f'<section id="{a}"><h2>{esc(t)}</h2>' + "\n".join(parts) + "</section>" for a, t, parts in sections]
    return "\n".join([*head, *body, "</main></body></html>"]) + "\n"


def _language_section(report: AuditReport) -> list[str]:
    langs = sorted(report.languages.items(), key=lambda kv: (-kv[1].read, kv[0]))
    mix = langs[:TOP_LANGUAGES]
    rest = langs[TOP_LANGUAGES:]
    rows = [(name, (f.read, f.kept)) for name, f in mix]
    if rest:
        rows.append((f"other ({len(rest)})", (sum(f.read for _, f in rest), sum(f.kept for _, f in rest))))
    parts = [hbar_chart("Language mix: documents read vs kept", rows, [("read", READ), ("kept", KEPT)])]
    has_unsupported = any(f.unsupported for _, f in langs)
    headers = ["language", "read", "kept", "removed", "removed share", "scored",
               *(["not scored: unsupported"] if has_unsupported else []), "flagged", "threshold"]
    table_rows = []
    for name, f in langs:
        threshold = _threshold_of(report, name)
        table_rows.append([f'<a id="lang-{esc(_slug(name))}"></a>{esc(name)}', fmt_int(f.read), fmt_int(f.kept),
                           fmt_int(f.removed), fmt_share(f.removed, f.read), fmt_int(f.scored),
                           *([fmt_int(f.unsupported)] if has_unsupported else []), fmt_int(f.flagged),
                           fmt_score(threshold) if threshold is not None and f.scored else "–"])
    parts.append(_table(headers, table_rows, set(range(1, len(headers)))))
    parts.append('<p class="note">flagged: documents whose stored score reached the threshold the run applied to '
                 "them (removed in filter mode, annotated in annotate mode). Scores are null for documents removed "
                 "before the toxicity stage and for languages the model does not support.</p>")
    scored = [(name, f) for name, f in langs if f.scored][:HISTOGRAM_LANGUAGES]
    if scored:
        parts.append("<h3>Toxicity scores per language</h3><div class=\"grid\">")
        parts.extend(f"<figure>{_score_chart(report, f'Toxicity scores, {name}', f.score_hist, name, 310)}"
                     f"<figcaption>{esc(name)}: {fmt_int(f.scored)} scored, {fmt_int(f.flagged)} flagged"
                     "</figcaption></figure>" for name, f in scored)
        parts.append("</div>")
    return parts


def _removals(report: AuditReport) -> list[str]:
    ordered = sorted(report.counts.items(), key=lambda kv: (-kv[1], kv[0]))
    parts = [_table(["stage", "reason", "documents"],
                    [[esc(st), f'<a href="#{esc(_slug(st))}-{esc(_slug(rs))}">{esc(rs)}</a>', fmt_int(n)]
                     for (st, rs), n in ordered], {2})]
    index = 0
    for (st, rs), n in ordered:
        shown = report.examples.get((st, rs), [])
        parts.append(f'<h3 id="{esc(_slug(st))}-{esc(_slug(rs))}">{esc(st)} / {esc(rs)} ({fmt_int(n)})</h3>')
        if shown:
            parts.append(f'<p class="note">The {fmt_int(len(shown))} smallest doc_ids.</p>')
        for ex in shown:
            index += 1
            command = f"toxsieve audit {shlex.quote(report.output)} --doc-id {shlex.quote(str(ex['doc_id']))}"
            fields: list[tuple[str, Any]] = [("url", esc(ex.get("url"))), ("evidence", esc(evidence(ex)))]
            if ex.get("detail"):
                fields.append(("detail", esc(ex.get("detail"))))
            lang = ex.get("language")
            if lang:
                fields.append(("language", f'<a href="#lang-{esc(_slug(lang))}">{esc(lang)}</a>'
                                           + (f", {fmt_int(ex['n_chars'])} characters" if ex.get("n_chars") else "")))
            fields.append(("everything", f'<a href="#ex-{index}"><code>{esc(command)}</code></a>'))
            text = ex.get("excerpt")
            parts.append(
                f'<div class="ex" id="ex-{index}"><dl><dt>doc_id</dt><dd><code>{esc(ex["doc_id"])}</code></dd>'
                + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in fields) + "</dl>"
                + (f'<div class="excerpt">{esc(text)}</div>' if text else
                   '<p class="note">No text stored (output.removed_text).</p>') + "</div>")
    return parts


def _flags(report: AuditReport) -> list[str]:
    ordered = sorted(report.flags.items(), key=lambda kv: (-kv[1], kv[0]))
    parts = ['<p class="note">What the stages in annotate mode would have removed: the documents went on. '
             "<code>toxsieve redecide</code> can switch such a stage to filter mode from these stored signals.</p>",
             _table(["stage", "reason", "documents"], [[esc(st), esc(rs), fmt_int(n)] for (st, rs), n in ordered], {2})]
    for (st, rs), n in ordered:
        shown = report.flag_examples.get((st, rs), [])
        if not shown:
            continue
        parts.append(f"<h3>{esc(st)} / {esc(rs)} ({fmt_int(n)}): the {fmt_int(len(shown))} smallest doc_ids</h3>")
        parts.append(_table(["doc_id", "url", "signals"],
                            [[f"<code>{esc(ex['doc_id'])}</code>", esc(ex.get("url")), esc(flag_evidence(ex))]
                             for ex in shown]))
    return parts


__all__ = ["render_html", "LanguageFigures"]
