"""``toxsieve audit``: why documents were removed, read from a run's outputs alone.

No model runs and nothing is recomputed: the counts come from ``stats.json``, the evidence from
``removed/`` (the audit trail), per-document signals from ``metadata/`` and the run's identity
from ``manifest.json``. Files are streamed in record batches, so a report over a large run holds
only the examples it shows (the smallest ``doc_id`` s per reason: the same report every time).

The HTML report is one self-contained file: no script, no external resource (a CSP forbids both),
and every string that came from a document or a URL goes through ``html.escape``.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

EXCERPT_CHARS = 300
EXAMPLE_COLUMNS = ["doc_id", "stage", "reason", "url", "score", "threshold", "duplicate_of", "matched", "detail",
                   "language", "n_chars", "text", "text_truncated"]
THRESHOLDS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.99)


class AuditError(ValueError):
    """The directory is not a toxsieve output (exit status 2)."""


@dataclass
class AuditReport:
    output: str
    complete: bool  # manifest.json present: the run finished and its checks passed
    manifest: dict[str, Any]
    stats: dict[str, Any]
    # (stage, reason) -> count, from the audit trail itself (filtered as asked)
    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    examples: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    # toxicity scores stored in metadata/: documents at or above each threshold (re-thresholding)
    toxicity_at: dict[float, int] = field(default_factory=dict)
    toxicity_scored: int = 0


def _local(output: str | Path) -> Path:
    if "://" in str(output):
        raise AuditError(f"{output}: audit reads local directories only (copy the run's outputs first)")
    return Path(output)


def _parquet_files(output: Path, name: str) -> list[Path]:
    return sorted(p for p in (output / name).glob("*.parquet") if not p.name.startswith("."))


def _batches(files: list[Path], columns: list[str]) -> Iterator[list[dict[str, Any]]]:
    for path in files:
        try:
            pf = pq.ParquetFile(path)
            present = [c for c in columns if c in pf.schema_arrow.names]
            for batch in pf.iter_batches(columns=present, batch_size=4096):
                yield batch.to_pylist()
        except pa.ArrowException as exc:
            raise AuditError(f"{path}: not a readable Parquet file: {exc}") from exc


def _partial_run(out: Path) -> list[str]:
    """What an interrupted run left behind (outputs written so far, its lock, its counts)."""
    from toxsieve.pipelines.lock import LOCK_FILE, describe, lock_is_stale, read_lock

    found = []
    for name in ("kept", "metadata", "removed", "dead_letter"):
        if (out / name).is_dir():
            files = _parquet_files(out, name)
            partial = [p for p in (out / name).rglob("*") if p.is_file() and p not in files]
            found.append(f"{name}/ with {len(files)} Parquet file(s)"
                         + (f" and {len(partial)} temporary file(s)" if partial else ""))
    if (out / "_counts.json").is_file():
        found.append("_counts.json (the pipeline finished; the stats checks did not run)")
    holder = read_lock(str(out)) if (out / LOCK_FILE).is_file() else None
    if holder is not None:
        state = "its process is gone" if lock_is_stale(holder) else "it may still be running"
        found.append(f"the lock of {describe(holder)}: {state}")
    return found


def load_report(output: str | Path, examples: int = 5, stage: str | None = None,
                reason: str | None = None) -> AuditReport:
    out = _local(output)
    if not (out / "stats.json").is_file() and not (out / "removed").is_dir():
        found = _partial_run(out)
        if found:
            raise AuditError(f"{out} holds an incomplete toxsieve run: no manifest.json and no stats.json, so the "
                             f"run was interrupted or is still running. Found: {'; '.join(found)}. "
                             "Re-run it with --overwrite to get a complete, auditable output")
        raise AuditError(f"{out} is not a toxsieve output directory (no stats.json, no removed/)")
    manifest_path = out / "manifest.json"
    report = AuditReport(
        output=str(out), complete=manifest_path.is_file(),
        manifest=json.loads(manifest_path.read_text()) if manifest_path.is_file() else {},
        stats=json.loads((out / "stats.json").read_text()) if (out / "stats.json").is_file() else {},
    )
    kept: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for rows in _batches(_parquet_files(out, "removed"), EXAMPLE_COLUMNS):
        for row in rows:
            key = (row["stage"], row["reason"])
            if (stage and key[0] != stage) or (reason and key[1] != reason):
                continue
            report.counts[key] = report.counts.get(key, 0) + 1
            if examples > 0:
                bucket = kept.setdefault(key, [])
                bucket.append(row)
                if len(bucket) >= 4 * examples:  # keep the smallest doc_ids, in bounded memory
                    bucket.sort(key=_order)
                    del bucket[examples:]
    for key, bucket in kept.items():
        report.examples[key] = [_excerpt(r) for r in sorted(bucket, key=_order)[:examples]]
    if not stage and not reason:
        for rows in _batches(_parquet_files(out, "dead_letter"), ["source_path", "source_offset", "error_type",
                                                                    "error", "record_excerpt"]):
            report.dead_letters.extend(rows[: max(0, examples - len(report.dead_letters))])
    for rows in _batches(_parquet_files(out, "metadata"), ["toxicity_score"]):
        for row in rows:
            score = row.get("toxicity_score")
            if score is None or math.isnan(score):
                continue
            report.toxicity_scored += 1
            for t in THRESHOLDS:
                if score >= t:
                    report.toxicity_at[t] = report.toxicity_at.get(t, 0) + 1
    return report


def _order(row: dict[str, Any]) -> tuple[str, str, str]:
    return row["doc_id"], row.get("url") or "", row.get("detail") or ""


def _excerpt(row: dict[str, Any]) -> dict[str, Any]:
    text = row.get("text")
    out = {k: v for k, v in row.items() if k != "text"}
    out["excerpt"] = None if text is None else text[:EXCERPT_CHARS] + ("…" if len(text) > EXCERPT_CHARS else "")
    return out


def explain_document(output: str | Path, doc_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every metadata row and audit record of one ``doc_id`` (a doc_id can occur in several inputs)."""
    out = _local(output)
    found: dict[str, list[dict[str, Any]]] = {"metadata": [], "removed": []}
    for name in found:
        for path in _parquet_files(out, name):
            try:
                table = pq.read_table(path, filters=[("doc_id", "=", doc_id)])
            except pa.ArrowException as exc:
                raise AuditError(f"{path}: not a readable Parquet file: {exc}") from exc
            found[name].extend(_excerpt(r) if name == "removed" else r for r in table.to_pylist())
    return found


# --- rendering ---------------------------------------------------------------------------------

def _evidence(row: dict[str, Any]) -> str:
    parts = []
    if row.get("score") is not None:
        parts.append(f"score {row['score']:.4g}")
    if row.get("threshold") is not None:
        parts.append(f"threshold {row['threshold']:.4g}")
    if row.get("duplicate_of"):
        parts.append(f"duplicate of {row['duplicate_of']}")
    if row.get("matched"):
        parts.append("matched " + ", ".join(row["matched"][:10]))
    return "; ".join(parts)


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def render_text(report: AuditReport) -> str:
    lines = [f"toxsieve audit of {report.output}"]
    run = report.stats.get("run_id") or report.manifest.get("run_id")
    if run:
        lines.append(f"  run {run}: read {report.stats.get('read', '?')}, kept {report.stats.get('kept', '?')}, "
                     f"removed {report.stats.get('removed', '?')}, dead-lettered {report.stats.get('dead_lettered', '?')}")
    if not report.complete:
        lines.append("  WARNING: no manifest.json: the run did not finish or its checks failed")
    lines.append("")
    lines.append("removed, by stage and reason (from removed/):")
    if not report.counts:
        lines.append("  none")
    for (stage, reason), n in sorted(report.counts.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"  {stage:<16} {reason:<28} {n:>8,}")
        for ex in report.examples.get((stage, reason), []):
            lines.append(f"    - {ex['doc_id']}  {_one_line(ex.get('url'))[:100]}")
            evidence = _evidence(ex)
            if evidence:
                lines.append(f"      {evidence}")
            if ex.get("detail"):
                lines.append(f"      {_one_line(ex['detail'])[:200]}")
            if ex.get("excerpt"):
                lines.append(f"      \"{_one_line(ex['excerpt'])[:200]}\"")
    if report.dead_letters:
        lines.append("")
        lines.append("dead letters (first ones):")
        for d in report.dead_letters:
            lines.append(f"  - {d['source_path']}@{d['source_offset']}: {d['error_type']}: {_one_line(d['error'])[:160]}")
    if report.toxicity_scored:
        lines.append("")
        lines.append(f"toxicity scores stored for {report.toxicity_scored:,} documents; at or above a threshold:")
        for t in THRESHOLDS:
            n = report.toxicity_at.get(t, 0)
            lines.append(f"  >= {t:<5} {n:>8,}  ({n / report.toxicity_scored:.1%})")
    return "\n".join(lines) + "\n"


_CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:80em}table{border-collapse:collapse;
margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3}.num{text-align:right}.excerpt{font-family:monospace;white-space:pre-wrap;max-width:50em}
.warn{color:#a00;font-weight:bold}"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def render_html(report: AuditReport) -> str:
    """One self-contained page; every string from the data is escaped."""
    s = report.stats
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>toxsieve audit: {_e(s.get('run_id') or report.output)}</title><style>{_CSS}</style></head><body>",
        f"<h1>toxsieve audit</h1><p>Output <code>{_e(report.output)}</code>, run <code>{_e(s.get('run_id'))}</code>.</p>",
    ]
    if not report.complete:
        parts.append('<p class="warn">No manifest.json: the run did not finish or its checks failed.</p>')
    parts.append("<table><tr>" + "".join(f"<th>{h}</th>" for h in ("read", "kept", "removed", "dead-lettered"))
                 + "</tr><tr>" + "".join(f'<td class="num">{_e(s.get(k))}</td>'
                                         for k in ("read", "kept", "removed", "dead_lettered")) + "</tr></table>")
    funnel = s.get("funnel") or []
    if funnel:
        parts.append("<h2>Funnel</h2><table><tr><th>stage</th><th>in</th><th>removed</th><th>out</th></tr>")
        parts.extend(f'<tr><td>{_e(f.get("stage"))}</td><td class="num">{_e(f.get("in"))}</td>'
                     f'<td class="num">{_e(f.get("removed"))}</td><td class="num">{_e(f.get("out"))}</td></tr>'
                     for f in funnel)
        parts.append("</table>")
    models = report.manifest.get("models") or []
    if models:
        parts.append("<h2>Models</h2><table><tr><th>role</th><th>name</th><th>sha256</th></tr>")
        parts.extend(f"<tr><td>{_e(m.get('role'))}</td><td>{_e(m.get('name'))}</td><td><code>{_e(m.get('sha256'))}"
                     "</code></td></tr>" for m in models)
        parts.append("</table>")
    parts.append("<h2>Removed, by stage and reason</h2><table><tr><th>stage</th><th>reason</th><th>documents</th></tr>")
    ordered = sorted(report.counts.items(), key=lambda kv: (-kv[1], kv[0]))
    parts.extend(f'<tr><td>{_e(st)}</td><td><a href="#{_e(st)}-{_e(rs)}">{_e(rs)}</a></td>'
                 f'<td class="num">{n:,}</td></tr>' for (st, rs), n in ordered)
    parts.append("</table>")
    for (st, rs), n in ordered:
        parts.append(f'<h3 id="{_e(st)}-{_e(rs)}">{_e(st)} / {_e(rs)} ({n:,})</h3>')
        parts.append("<table><tr><th>doc_id</th><th>url</th><th>evidence</th><th>detail</th><th>text</th></tr>")
        parts.extend(
            f"<tr><td><code>{_e(ex['doc_id'])}</code></td><td>{_e(ex.get('url'))}</td><td>{_e(_evidence(ex))}</td>"
            f'<td>{_e(ex.get("detail"))}</td><td class="excerpt">{_e(ex.get("excerpt"))}</td></tr>'
            for ex in report.examples.get((st, rs), []))
        parts.append("</table>")
    if report.dead_letters:
        parts.append("<h2>Dead letters (first ones)</h2><table><tr><th>source</th><th>error</th><th>excerpt</th></tr>")
        parts.extend(f"<tr><td>{_e(d['source_path'])}@{_e(d['source_offset'])}</td><td>{_e(d['error_type'])}: "
                     f'{_e(d["error"])}</td><td class="excerpt">{_e(d.get("record_excerpt"))}</td></tr>'
                     for d in report.dead_letters)
        parts.append("</table>")
    if report.toxicity_scored:
        parts.append(f"<h2>Toxicity scores</h2><p>{report.toxicity_scored:,} documents scored. "
                     "Documents at or above a threshold (from the stored scores, no model run):</p>"
                     "<table><tr><th>threshold</th><th>documents</th><th>share</th></tr>")
        parts.extend(f'<tr><td>{t}</td><td class="num">{report.toxicity_at.get(t, 0):,}</td>'
                     f'<td class="num">{report.toxicity_at.get(t, 0) / report.toxicity_scored:.1%}</td></tr>'
                     for t in THRESHOLDS)
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def report_json(report: AuditReport) -> dict[str, Any]:
    return {
        "output": report.output, "complete": report.complete, "run_id": report.stats.get("run_id"),
        "removed": [{"stage": st, "reason": rs, "documents": n, "examples": report.examples.get((st, rs), [])}
                    for (st, rs), n in sorted(report.counts.items(), key=lambda kv: (-kv[1], kv[0]))],
        "dead_letters": report.dead_letters,
        "toxicity": {"scored": report.toxicity_scored,
                     "at_or_above": {str(t): report.toxicity_at.get(t, 0) for t in THRESHOLDS}},
    }
