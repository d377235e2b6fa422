"""``toxsieve audit``: why documents were removed, read from a run's outputs alone.

No model runs and nothing is recomputed: the counts come from ``stats.json`` and ``removed/``
(the audit trail), the distributions from ``metadata/`` and the run's identity from
``manifest.json``. Every table is read column-projected in record batches and aggregated with
pyarrow/numpy (a 1M-row ``metadata/`` takes seconds, memory bounded by a batch); the examples are
the smallest ``doc_id`` s per reason (the same report every time), fetched in a second pass with a
``doc_id`` filter pushed down to the Parquet row groups.

The HTML report (``pipelines/cli/audit_html.py``) is one self-contained file: no script, no external
resource (a CSP forbids both), and every string that came from a document or a URL is escaped.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from toxsieve.pipelines.cli.charts import fmt_int, fmt_score, fmt_share

EXCERPT_CHARS = 300
EXAMPLE_COLUMNS = ["doc_id", "stage", "reason", "url", "score", "threshold", "duplicate_of", "matched", "detail",
                   "language", "n_chars", "text", "text_truncated"]
THRESHOLDS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.99)
SCORE_BINS = 50  # toxicity histograms: bins of 0.02 over [0, 1]
LENGTH_BINS_PER_DECADE = 4  # document lengths: log-spaced bins, 1 to 10^7 characters
LENGTH_DECADES = 7
FLAG_ROW_COLUMNS = ("doc_id", "url", "language", "decision")  # a flag example's fixed columns, then its signals
NO_LANGUAGE = "(none)"  # documents removed before language identification
BATCH_ROWS = 65_536
METADATA_COLUMNS = ["language", "decision", "stage", "n_chars", "toxicity_score", "toxicity_flagged",
                    "toxicity_supported", "near_dup_cluster_size", "blocklist_terms", "url_blocklist_category"]


# examples to read: (stage, reason) -> (doc_id, file index, row) of the smallest doc_ids, smallest first
Candidates = dict[tuple[str, str], list[tuple[str, int, int]]]


class AuditError(ValueError):
    """The directory is not a toxsieve output (exit status 2)."""


@dataclass
class LanguageFigures:
    read: int = 0
    kept: int = 0
    scored: int = 0  # documents with a toxicity score
    unsupported: int = 0  # toxicity_supported == false (no score: the model does not cover the language)
    flagged: int = 0  # toxicity_flagged: at or above the run's threshold for the document
    score_hist: list[int] = field(default_factory=lambda: [0] * SCORE_BINS)

    @property
    def removed(self) -> int:
        return self.read - self.kept


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
    # distributions from metadata/ (the whole run, whatever --stage/--reason say)
    languages: dict[str, LanguageFigures] = field(default_factory=dict)
    removed_by_stage_language: dict[tuple[str, str], int] = field(default_factory=dict)
    length_hist: dict[str, list[int]] = field(default_factory=dict)  # kept / removed
    cluster_sizes: dict[int, int] = field(default_factory=dict)  # near-dup cluster size -> documents
    blocklist_terms: Counter[str] = field(default_factory=Counter)  # term -> documents matching it
    url_categories: Counter[str] = field(default_factory=Counter)  # UT1 category -> documents
    # declared stages in annotate mode: (stage, reason) -> documents flagged and not removed by it, and
    # the rows of the smallest doc_ids (doc_id, url, language, decision, the stage's signal columns)
    flags: dict[tuple[str, str], int] = field(default_factory=dict)
    flag_examples: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def toxicity_unsupported(self) -> dict[str, int]:
        """Documents whose language had no toxicity model (score null, never removed), per language."""
        return {name: f.unsupported for name, f in sorted(self.languages.items()) if f.unsupported}

    @property
    def toxicity(self) -> dict[str, Any]:
        return (self.manifest.get("config") or {}).get("toxicity") or {}


def _local(output: str | Path) -> Path:
    if "://" in str(output):
        raise AuditError(f"{output}: audit reads local directories only (copy the run's outputs first)")
    return Path(output)


def _parquet_files(output: Path, name: str) -> list[Path]:
    return sorted(p for p in (output / name).glob("*.parquet") if not p.name.startswith("."))


def record_batches(files: list[Path], columns: list[str], batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """The columns that exist (a missing optional column is simply absent), file by file, batch by batch."""
    for path in files:
        try:
            pf = pq.ParquetFile(path)
            present = [c for c in columns if c in pf.schema_arrow.names]
            yield from pf.iter_batches(columns=present, batch_size=batch_rows)
        except pa.ArrowException as exc:
            raise AuditError(f"{path}: not a readable Parquet file: {exc}") from exc


def _batches(files: list[Path], columns: list[str]) -> Iterator[list[dict[str, Any]]]:
    for batch in record_batches(files, columns, 4096):
        yield batch.to_pylist()


def _codes(column: pa.Array, fill: str) -> tuple[np.ndarray, list[str]]:
    """Dictionary codes and names of a string column (nulls as ``fill``)."""
    encoded = pc.fill_null(column, fill).dictionary_encode()
    return encoded.indices.to_numpy(zero_copy_only=False), encoded.dictionary.to_pylist()


def _floats(column: pa.Array) -> np.ndarray:
    return pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)  # nulls -> NaN


def _bools(column: pa.Array, null: bool = False) -> np.ndarray:
    return pc.fill_null(column, null).to_numpy(zero_copy_only=False).astype(bool)


def score_bins(scores: np.ndarray, bins: int = SCORE_BINS) -> np.ndarray:
    return np.clip(np.floor(scores * bins), 0, bins - 1).astype(np.int64)


def length_bins(n_chars: np.ndarray) -> np.ndarray:
    n_bins = LENGTH_BINS_PER_DECADE * LENGTH_DECADES
    return np.clip(np.floor(np.log10(np.maximum(n_chars, 1)) * LENGTH_BINS_PER_DECADE), 0, n_bins - 1).astype(np.int64)


def length_bin_labels() -> list[str]:
    labels = []
    for i in range(LENGTH_BINS_PER_DECADE * LENGTH_DECADES):
        lo = 10 ** (i / LENGTH_BINS_PER_DECADE)
        labels.append(fmt_int(round(lo)) if lo < 1000 else f"{lo / 1000:.3g}k")
    return labels


def _add_metadata(report: AuditReport, batch: pa.RecordBatch) -> None:
    names = batch.schema.names
    lang, lang_names = _codes(batch.column("language"), NO_LANGUAGE)
    removed = pc.equal(batch.column("decision"), "removed").to_numpy(zero_copy_only=False)
    k = len(lang_names)
    read = np.bincount(lang, minlength=k)
    kept = np.bincount(lang[~removed], minlength=k)
    figures = [report.languages.setdefault(name, LanguageFigures()) for name in lang_names]
    scored = np.zeros(k, np.int64)
    hist = np.zeros((k, SCORE_BINS), np.int64)
    flagged = np.zeros(k, np.int64)
    unsupported = np.zeros(k, np.int64)
    if "toxicity_score" in names:
        score = _floats(batch.column("toxicity_score"))
        valid = ~np.isnan(score)
        report.toxicity_scored += int(valid.sum())
        for t in THRESHOLDS:
            report.toxicity_at[t] = report.toxicity_at.get(t, 0) + int((score[valid] >= t).sum())
        scored = np.bincount(lang[valid], minlength=k)
        hist = np.bincount(lang[valid] * SCORE_BINS + score_bins(score[valid]),
                           minlength=k * SCORE_BINS).reshape(k, SCORE_BINS)
    if "toxicity_flagged" in names:
        flagged = np.bincount(lang[_bools(batch.column("toxicity_flagged"))], minlength=k)
    if "toxicity_supported" in names:  # nullable: null = not asked (removed before the toxicity stage)
        unsupported = np.bincount(lang[~_bools(batch.column("toxicity_supported"), null=True)], minlength=k)
    for i, fig in enumerate(figures):
        fig.read += int(read[i])
        fig.kept += int(kept[i])
        fig.scored += int(scored[i])
        fig.flagged += int(flagged[i])
        fig.unsupported += int(unsupported[i])
        for b in np.flatnonzero(hist[i]):
            fig.score_hist[b] += int(hist[i, b])
    if removed.any():
        stage, stage_names = _codes(batch.column("stage"), "?")
        pairs = np.bincount(stage[removed] * k + lang[removed], minlength=len(stage_names) * k)
        for idx in np.flatnonzero(pairs):
            key = (stage_names[idx // k], lang_names[idx % k])
            report.removed_by_stage_language[key] = report.removed_by_stage_language.get(key, 0) + int(pairs[idx])
    if "n_chars" in names:
        chars = _floats(batch.column("n_chars"))
        has = ~np.isnan(chars)
        n_bins = LENGTH_BINS_PER_DECADE * LENGTH_DECADES
        for name, mask in (("kept", has & ~removed), ("removed", has & removed)):
            counts = np.bincount(length_bins(chars[mask]), minlength=n_bins)
            acc = report.length_hist.setdefault(name, [0] * n_bins)
            for b in np.flatnonzero(counts):
                acc[b] += int(counts[b])
    if "near_dup_cluster_size" in names:
        sizes = batch.column("near_dup_cluster_size").drop_null().to_numpy(zero_copy_only=False)
        values, counts = np.unique(sizes, return_counts=True)
        for v, c in zip(values.tolist(), counts.tolist(), strict=True):
            report.cluster_sizes[v] = report.cluster_sizes.get(v, 0) + c
    if "blocklist_terms" in names:
        _count_values(report.blocklist_terms, pc.list_flatten(batch.column("blocklist_terms")))
    if "url_blocklist_category" in names:
        _count_values(report.url_categories, batch.column("url_blocklist_category"))


def _count_values(counter: Counter[str], values: pa.Array) -> None:
    values = values.drop_null()
    if len(values):
        vc = pc.value_counts(values)
        counter.update(dict(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True)))
def _partial_run(out: Path) -> list[str]:
    """What an interrupted run left behind (outputs written so far, its lock, its counts)."""
    from toxsieve.pipelines.runtime.lock import LOCK_FILE, describe, lock_is_stale, read_lock

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
    _load_removals(report, _parquet_files(out, "removed"), examples, stage, reason)
    if not stage and not reason:
        for rows in _batches(_parquet_files(out, "dead_letter"), ["source_path", "source_offset", "error_type",
                                                                    "error", "record_excerpt"]):
            report.dead_letters.extend(rows[: max(0, examples - len(report.dead_letters))])
            if len(report.dead_letters) >= examples:
                break
    annotating = [st for st in annotate_stages(report.manifest.get("config") or {})
                  if (not stage or st.name == stage)]
    # flags: pass 1 reads doc_id and the flag columns and remembers where the examples are; pass 2
    # reads their url and signals from those row groups only
    flag_columns = ["doc_id", *(st.flag_column for st in annotating)] if annotating else []
    columns = list(dict.fromkeys([*METADATA_COLUMNS, *flag_columns]))
    files = _parquet_files(out, "metadata")
    candidates: Candidates = {}
    for file_index, path in enumerate(files):
        offset = 0
        for batch in record_batches([path], columns):
            _add_metadata(report, batch)
            for st in annotating:
                _add_flags(report, batch, st, examples, reason, candidates, (file_index, offset))
            offset += batch.num_rows
    _flag_examples(report, files, annotating, candidates)
    return report


def annotate_stages(config: dict[str, Any]) -> list[Any]:
    """The declared stages a run's config (manifest.json) enabled in annotate mode: what they flag stays."""
    from toxsieve.pipelines.stages import STAGES

    out = []
    for st in STAGES:
        section: Any = config
        for part in st.config_key.split("."):
            section = section.get(part) if isinstance(section, dict) else None
        if isinstance(section, dict) and section.get("enabled") and section.get("mode") == "annotate":
            out.append(st)
    return out


def _add_flags(report: AuditReport, batch: pa.RecordBatch, stage: Any, examples: int, reason: str | None,
               candidates: Candidates, where: tuple[int, int]) -> None:
    """Counts per reason of one annotate-mode stage's flag column, and the (doc_id, file, row) of the
    smallest doc_ids so far (``where``: this batch's file index and first row)."""
    if stage.flag_column not in batch.schema.names:
        return
    flags = batch.column(stage.flag_column)
    if reason:
        flags = pc.if_else(pc.equal(flags, reason), flags, pa.scalar(None, pa.string()))
    if not pc.any(pc.is_valid(flags)).as_py():
        return
    counts = pc.value_counts(flags.drop_null())
    for flag, n in zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True):
        key = (stage.name, flag)
        report.flags[key] = report.flags.get(key, 0) + n
        if examples <= 0:
            continue
        rows = np.flatnonzero(pc.fill_null(pc.equal(flags, flag), False).to_numpy(zero_copy_only=False))
        _keep_smallest(candidates, key, batch.column("doc_id"), rows, examples, where)


def _flag_examples(report: AuditReport, files: list[Path], stages: list[Any], candidates: Candidates) -> None:
    """The example rows of every flag: doc_id, url, language, decision and the stage's stored signals."""
    fixed = list(FLAG_ROW_COLUMNS)
    signals = {st.name: [c for c in dict.fromkeys(st.column(sig.name) for sig in st.signals) if c not in fixed]
               for st in stages}
    rows_at = _rows_at(files, candidates, list(dict.fromkeys([*fixed, *(c for cols in signals.values() for c in cols)])))
    for (name, flag), bucket in candidates.items():
        keep = [*fixed, *signals[name]]
        report.flag_examples[(name, flag)] = [{c: rows_at[(fi, row)].get(c) for c in keep} for _, fi, row in bucket]


def _load_removals(report: AuditReport, files: list[Path], examples: int, stage: str | None,
                   reason: str | None) -> None:
    """Counts per (stage, reason), then the rows of the smallest doc_ids per reason: pass 1 reads three
    columns and remembers where the candidates are (file, row); pass 2 reads only their row groups."""
    keep = 2 * examples  # a few spare candidates, for rows that share a doc_id (ordered by url, detail)
    candidates: Candidates = {}
    for file_index, path in enumerate(files):
        offset = 0
        for batch in record_batches([path], ["stage", "reason", "doc_id"]):
            start, offset = offset, offset + batch.num_rows
            selected = np.ones(batch.num_rows, bool)
            if stage:
                selected &= pc.equal(batch.column("stage"), stage).to_numpy(zero_copy_only=False)
            if reason:
                selected &= pc.equal(batch.column("reason"), reason).to_numpy(zero_copy_only=False)
            if not selected.any():
                continue
            key_codes, key_names = _codes(pc.binary_join_element_wise(
                batch.column("stage"), batch.column("reason"), "\x1f"), "?")
            for code in np.unique(key_codes[selected]).tolist():
                st, _, rs = key_names[code].partition("\x1f")
                rows = np.flatnonzero(selected & (key_codes == code))
                report.counts[(st, rs)] = report.counts.get((st, rs), 0) + len(rows)
                if examples > 0:
                    _keep_smallest(candidates, (st, rs), batch.column("doc_id"), rows, keep, (file_index, start))
    rows_at = _rows_at(files, candidates, EXAMPLE_COLUMNS)
    for key, bucket in candidates.items():
        found = [rows_at[(file_index, row)] for _, file_index, row in bucket]
        report.examples[key] = [_excerpt(r) for r in sorted(found, key=_order)[:examples]]


def _keep_smallest(candidates: Candidates, key: tuple[str, str], doc_ids: pa.Array, rows: np.ndarray, keep: int,
                   where: tuple[int, int]) -> None:
    """Merge the ``keep`` smallest doc_ids among ``rows`` of a batch (``where``: its file index and first
    row) into ``candidates[key]``."""
    ids = doc_ids.take(pa.array(rows))
    best = pc.bottom_k_unstable(ids, min(keep, len(rows))).to_numpy(zero_copy_only=False)
    found = [(doc_id, where[0], where[1] + int(rows[i]))
             for doc_id, i in zip(ids.take(pa.array(best)).to_pylist(), best.tolist(), strict=True)]
    candidates[key] = sorted(candidates.get(key, []) + found)[:keep]


def _rows_at(files: list[Path], candidates: Candidates, columns: list[str]) -> dict[tuple[int, int], dict[str, Any]]:
    """The rows every candidate points at, by (file index, row), reading only the row groups that hold them."""
    wanted: dict[int, set[int]] = {}
    for bucket in candidates.values():
        for _, file_index, row in bucket:
            wanted.setdefault(file_index, set()).add(row)
    out: dict[tuple[int, int], dict[str, Any]] = {}
    for file_index, rows in sorted(wanted.items()):
        ordered = sorted(rows)
        for row, found in zip(ordered, _read_rows(files[file_index], ordered, columns), strict=True):
            out[(file_index, row)] = found
    return out


def _read_rows(path: Path, rows: list[int], columns: list[str]) -> list[dict[str, Any]]:
    """Rows by position, reading only the row groups that hold them."""
    pf = pq.ParquetFile(path)
    present = [c for c in columns if c in pf.schema_arrow.names]
    out: list[dict[str, Any]] = []
    first = 0
    for group in range(pf.metadata.num_row_groups):
        n = pf.metadata.row_group(group).num_rows
        inside = [r - first for r in rows if first <= r < first + n]
        if inside:
            out.extend(pf.read_row_group(group, columns=present).take(pa.array(inside)).to_pylist())
        first += n
    return out


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


# --- text and JSON ---------------------------------------------------------------------------------

def evidence(row: dict[str, Any]) -> str:
    parts = []
    if row.get("score") is not None:
        parts.append(f"score {fmt_score(row['score'])}")
    if row.get("threshold") is not None:
        parts.append(f"threshold {fmt_score(row['threshold'])}")
    if row.get("duplicate_of"):
        parts.append(f"duplicate of {row['duplicate_of']}")
    if row.get("matched"):
        parts.append("matched " + ", ".join(row["matched"][:10]))
    return "; ".join(parts)


_evidence = evidence


def flag_evidence(row: dict[str, Any]) -> str:
    """The stored signals of a flagged document, one line (what ``decide`` saw)."""
    parts = [f"{k}={_fmt_signal(v)}" for k, v in row.items() if k not in FLAG_ROW_COLUMNS and v is not None]
    return f"{row.get('language') or NO_LANGUAGE}, {row.get('decision')}: " + "; ".join(parts)


def _fmt_signal(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ",".join(str(v) for v in value[:10]) + ("…" if len(value) > 10 else "")
    return str(value)


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def render_text(report: AuditReport) -> str:
    lines = [f"toxsieve audit of {report.output}"]
    s = report.stats
    run = s.get("run_id") or report.manifest.get("run_id")
    if run:
        lines.append(f"  run {run}: read {fmt_int(s.get('read'))}, kept {fmt_int(s.get('kept'))}, "
                     f"removed {fmt_int(s.get('removed'))}, dead-lettered {fmt_int(s.get('dead_lettered'))}")
    if not report.complete:
        lines.append("  WARNING: no manifest.json: the run did not finish or its checks failed")
    lines.append("")
    lines.append("removed, by stage and reason (from removed/):")
    if not report.counts:
        lines.append("  none")
    for (stage, reason), n in sorted(report.counts.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"  {stage:<16} {reason:<28} {fmt_int(n):>10}")
        for ex in report.examples.get((stage, reason), []):
            lines.append(f"    - {ex['doc_id']}  {_one_line(ex.get('url'))[:100]}")
            ev = evidence(ex)
            if ev:
                lines.append(f"      {ev}")
            if ex.get("detail"):
                lines.append(f"      {_one_line(ex['detail'])[:200]}")
            if ex.get("excerpt"):
                lines.append(f"      \"{_one_line(ex['excerpt'])[:200]}\"")
    if report.flags:
        lines.append("")
        lines.append("flagged, not removed (stages in annotate mode; from metadata/):")
        for (stage, reason), n in sorted(report.flags.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"  {stage:<16} {reason:<28} {fmt_int(n):>10}")
            for ex in report.flag_examples.get((stage, reason), []):
                lines.append(f"    - {ex['doc_id']}  {_one_line(ex.get('url'))[:100]}")
                lines.append(f"      {_one_line(flag_evidence(ex))[:200]}")
    if report.dead_letters:
        lines.append("")
        lines.append("dead letters (first ones):")
        for d in report.dead_letters:
            lines.append(f"  - {d['source_path']}@{d['source_offset']}: {d['error_type']}: {_one_line(d['error'])[:160]}")
    if report.languages:
        lines.append("")
        lines.append("by language (from metadata/):")
        lines.append(f"  {'language':<10} {'read':>10} {'kept':>10} {'removed':>10} {'scored':>10} {'flagged':>10}")
        for name, fig in sorted(report.languages.items(), key=lambda kv: (-kv[1].read, kv[0]))[:20]:
            lines.append(f"  {name:<10} {fmt_int(fig.read):>10} {fmt_int(fig.kept):>10} {fmt_int(fig.removed):>10} "
                         f"{fmt_int(fig.scored):>10} {fmt_int(fig.flagged):>10}")
    if report.toxicity_scored:
        lines.append("")
        lines.append(f"toxicity scores stored for {fmt_int(report.toxicity_scored)} documents; "
                     "at or above a threshold:")
        for t in THRESHOLDS:
            n = report.toxicity_at.get(t, 0)
            lines.append(f"  >= {t:<5} {fmt_int(n):>10}  ({fmt_share(n, report.toxicity_scored)})")
    unsupported = report.toxicity_unsupported
    if unsupported:
        ranked = sorted(unsupported.items(), key=lambda kv: (-kv[1], kv[0]))
        lines.append("")
        lines.append(f"toxicity: {fmt_int(sum(unsupported.values()))} documents in languages without a model "
                     f"(no score, never removed): {', '.join(f'{lang} {fmt_int(n)}' for lang, n in ranked)}")
    return "\n".join(lines) + "\n"


def render_html(report: AuditReport) -> str:
    from toxsieve.pipelines.cli.audit_html import render_html as render

    return render(report)


def report_json(report: AuditReport) -> dict[str, Any]:
    return {
        "output": report.output, "complete": report.complete, "run_id": report.stats.get("run_id"),
        "removed": [{"stage": st, "reason": rs, "documents": n, "examples": report.examples.get((st, rs), [])}
                    for (st, rs), n in sorted(report.counts.items(), key=lambda kv: (-kv[1], kv[0]))],
        "flagged": [{"stage": st, "reason": rs, "documents": n, "examples": report.flag_examples.get((st, rs), [])}
                    for (st, rs), n in sorted(report.flags.items(), key=lambda kv: (-kv[1], kv[0]))],
        "dead_letters": report.dead_letters,
        "toxicity": {"scored": report.toxicity_scored,
                     "at_or_above": {str(t): report.toxicity_at.get(t, 0) for t in THRESHOLDS},
                     "unsupported_by_language": report.toxicity_unsupported},
        "languages": {name: {"read": f.read, "kept": f.kept, "removed": f.removed, "scored": f.scored,
                             "unsupported": f.unsupported, "flagged": f.flagged, "score_histogram": f.score_hist}
                      for name, f in sorted(report.languages.items())},
        "removed_by_stage_language": [{"stage": st, "language": lang, "documents": n}
                                      for (st, lang), n in sorted(report.removed_by_stage_language.items())],
        "length_histogram": {"bins_per_decade": LENGTH_BINS_PER_DECADE, **report.length_hist},
        "near_dup_cluster_sizes": {str(k): v for k, v in sorted(report.cluster_sizes.items())},
        "blocklist_terms": dict(report.blocklist_terms.most_common(50)),
        "url_categories": dict(report.url_categories.most_common(50)),
    }
