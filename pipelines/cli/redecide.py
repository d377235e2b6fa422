"""``toxsieve redecide``: a new run at other decision settings, from a finished run's stored signals.

No model runs and no input is read: every per-document stage's signals are in ``metadata/`` and each
stage's own ``decide`` is called on them (the declared stages' ``decide``: URL and word lists,
language, length, quality rules; ``toxicity.decide_toxicity``),
the same functions the pipeline calls, so no rule exists twice. The new run has the four outputs,
its own ``stats.json`` (same conservation checks as ``toxsieve run``) and a ``manifest.json`` that
names the source run. ``toxsieve rethreshold`` is this with ``--set toxicity...``.

Every document walks the stages in pipeline order with the new settings. A stage the document
reaches decides from its stored signals; the first removal ends the walk (in annotate mode a stage
only records its flag); columns of stages it no longer reaches become null, as in a fresh run.

**What can be re-decided** (anything else: exit 2 before anything is written):

1. Only *decision* settings change: ``blocklists.url.{enabled, mode}``,
   ``language.{enabled, mode, allowed, min_score, min_score_per_language}``,
   ``blocklists.words.{enabled, mode, preset, policy, per_language}``, ``quality.<stage>.*`` except
   the fields the stage declares in ``measure`` (they change what ``score`` measures),
   ``toxicity.{enabled, mode, threshold, threshold_per_language, cascade_threshold}``, and settings
   without effect on results (``run.*``, ``toxicity`` device/batching/accelerator,
   ``output.compression``/``row_group_rows``). Never: ``input``, ``extract``, ``limits``, the URL
   and word lists and how they match, LID or toxicity models and routes, exact/near dedup settings,
   ``output``.
2. A document may reach a stage only if the source computed that stage's signals for it: the stage
   was enabled in the source and the document was not removed before it. Tightening therefore never
   lacks signals (a kept document has every stage's; rules 3 and 4 still apply); loosening or
   disabling a stage that *removed* documents is possible only when no enabled stage follows it for
   them, i.e. in practice
   for the last stage (toxicity), or when the source ran the following stages in ``annotate`` mode
   (signals computed, nothing removed). Otherwise the error names the stage and the count.
3. Dedup is global: its outcome for one document depends on the others. The stored outcomes stay
   valid when a newly removed document was neither the keeper of an exact-duplicate group whose
   other members still reach exact dedup nor in a near-duplicate cluster of two or more
   (``near_dup_cluster_size``): otherwise refused. Exact duplicates share their text, hence their
   signals and decisions, so only near-duplicates are refused in practice. (Limit: near-dedup buckets above
   ``near_dedup.max_bucket_size`` are split by their size, which stored signals do not show.)
4. A stage that rewrites the text (C4 line cleaning, in filter mode) cannot be switched on or off,
   and no document may newly stop before it or be restored past it: the text before or after the
   rewrite is not stored.
5. A restored document needs its full text: ``kept/`` has it; ``removed/`` only where the source
   stored it whole (``output.removed_text: full``, or shorter than ``removed_text_chars``).

Decisions compare the stored values: ``language_score`` and ``blocklist_match_fraction`` are
float32 in ``metadata/``, so a score within float32 precision (~1e-7) of a threshold may decide
differently than in the run that measured it. Two passes over the stored files, one file at a time:
pass 1 decides and checks (nothing written), pass 2 writes. Memory: the small evidence of each
document removed by a re-decided stage, the metadata row of each restored document and the ids of
exact duplicates (no texts); still-kept documents and fixed-stage removals need nothing. Local
paths only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from toxsieve.pipelines.config import Config, ConfigError, config_from_dict
from toxsieve.pipelines.document import Document, Removal
from toxsieve.pipelines.io.outputs import audit_row, curated_row, row_sort_key
from toxsieve.pipelines.runtime.pipeline import COUNTS_FILE
from toxsieve.pipelines.runtime.run import (
    MANIFEST_FILE,
    STATS_FILE,
    RunError,
    finalize_stats,
    hold_output,
    new_run_id,
    prepare_output,
)
from toxsieve.pipelines.runtime.transforms import funnel_keys
from toxsieve.pipelines.stages import STAGES, DeclaredStage, stat_keys
from toxsieve.pipelines.stages.toxicity import decide_toxicity, toxicity_flag
from toxsieve.schemas import AUDIT_SCHEMA, CURATED_SCHEMA, DEAD_LETTER_SCHEMA, METADATA_SCHEMA, SCHEMA_VERSION, Stage

Key = tuple[str, str, int]
BATCH_ROWS = 8192  # metadata/ rows decided at a time
ORDER: tuple[str, ...] = tuple(s.value for s in Stage)  # pipeline order (declared stages after language)
POS = {name: i for i, name in enumerate(ORDER)}
FIXED = ("read", "extract")  # settings must not change; a document they removed stays removed
GLOBAL = ("exact_dedup", "near_dedup")
EXTRACT_COLUMNS = ("n_chars", "text_hash")  # null for a document removed before extraction (a url-phase stage)
NEAR_DUP_COLUMNS = ("near_dup_cluster", "near_dup_cluster_size", "near_dup_similarity")
TOXICITY_COLUMNS = ("toxicity_score", "toxicity_label_scores", "toxicity_model", "toxicity_model_sha256",
                    "toxicity_fast_score", "toxicity_threshold", "toxicity_n_chunks", "toxicity_flagged",
                    "toxicity_supported")
# Settings that change no result (where and how fast the models would run; file encoding).
NO_EFFECT = ("run", "toxicity.device", "toxicity.token_budget", "toxicity.max_batch_size",
             "toxicity.share_model_across_processes", "toxicity.accelerator", "output.compression",
             "output.row_group_rows")


class RedecideError(RunError):
    """The new settings cannot be re-decided from the stored signals (exit 2, nothing written)."""


@dataclass(frozen=True)
class PerDocumentStage:
    """A per-document stage as redecide sees it: its config section, decision settings, stored columns
    and its own decide, applied to a metadata/ row."""

    name: str
    section: str  # dotted config key
    decision_keys: tuple[str, ...]  # under section: may change
    columns: tuple[str, ...]  # metadata/ columns it writes (null where a document did not reach it)
    enabled: Callable[[Config], bool]
    filters: Callable[[Config], bool]  # filter mode: its removal is applied
    decide: Callable[[Mapping[str, Any], Config], Removal | None]
    flags: Callable[[Mapping[str, Any], Config, Removal | None], dict[str, Any]] = lambda row, cfg, r: {}
    rewrites: bool = False


def _declared(stage: DeclaredStage) -> PerDocumentStage:
    fields = [f.name for f in dataclasses.fields(stage.config)]
    section = stage.config_of

    return PerDocumentStage(
        name=stage.name, section=stage.config_key,
        decision_keys=tuple(f for f in fields if f not in stage.measure),
        columns=(*(stage.column(s.name) for s in stage.signals), stage.flag_column),
        enabled=lambda cfg: section(cfg).enabled, filters=lambda cfg: section(cfg).mode == "filter",
        decide=lambda row, cfg: stage.decide(stage.stored_inputs(row), section(cfg)),
        flags=lambda row, cfg, removal: {stage.flag_column: removal.reason.value if removal else None},
        rewrites=stage.rewrite is not None,
    )


def _toxicity_flags(row: Mapping[str, Any], cfg: Config, _: Removal | None) -> dict[str, Any]:
    threshold, flagged = toxicity_flag(row, cfg.toxicity)
    return {"toxicity_threshold": threshold, "toxicity_flagged": flagged}


PER_DOCUMENT: dict[str, PerDocumentStage] = {s.name: s for s in (
    *(_declared(stage) for stage in STAGES),
    PerDocumentStage("toxicity", "toxicity", ("enabled", "mode", "threshold", "threshold_per_language",
                                              "cascade_threshold"), TOXICITY_COLUMNS,
                     enabled=lambda cfg: cfg.toxicity.enabled, filters=lambda cfg: cfg.toxicity.mode == "filter",
                     decide=lambda row, cfg: decide_toxicity(row, cfg.toxicity), flags=_toxicity_flags),
)}
assert set(PER_DOCUMENT) | set(FIXED) | set(GLOBAL) == set(ORDER), "every stage is fixed, global or re-decidable"


def _global_enabled(name: str, cfg: Config) -> bool:
    return cfg.exact_dedup.enabled if name == "exact_dedup" else cfg.near_dedup.enabled


# --- which settings changed ------------------------------------------------------------------


def changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two plain config dicts (leaves, or a mapping's own key)."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            out += changed_keys(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return [] if old == new else [prefix.rstrip(".")]


def _allowed(key: str) -> bool:
    prefixes = [*NO_EFFECT, *(f"{s.section}.{k}" for s in PER_DOCUMENT.values() for k in s.decision_keys)]
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def check_settings(src: Config, new: Config) -> list[str]:
    """The changed keys; a RedecideError names those that stored signals cannot re-decide."""
    changed = changed_keys(src.to_dict(), new.to_dict())
    refused = [key for key in changed if not _allowed(key)]
    if refused:
        raise RedecideError(
            f"cannot re-decide from stored signals: {', '.join(refused)} changed. Only decision settings "
            "(thresholds, allowed languages, policies, enabled/mode of filter stages) can be re-decided; "
            "models, URL and word lists, measurement settings, extraction and dedup settings change "
            "the signals themselves: run `toxsieve run` with the new config")
    for stage in PER_DOCUMENT.values():
        if stage.rewrites and _rewriting(stage, src) != _rewriting(stage, new):
            raise RedecideError(
                f"cannot re-decide: {stage.section} rewrites the text of the documents it keeps in filter mode "
                "(line cleaning); switching that on or off changes the text every later stage measured")
    return changed


def _rewriting(stage: PerDocumentStage, cfg: Config) -> bool:
    return stage.rewrites and stage.enabled(cfg) and stage.filters(cfg)


# --- one document's walk ---------------------------------------------------------------------


SOURCE = "source"  # the source run's removal stands (a fixed or dedup stage): its audit row is kept


@dataclass
class Walk:
    row: dict[str, Any]  # the new metadata/ row
    removal: Removal | str | None  # a new Removal, SOURCE, or None (kept)
    reached: set[str]
    source_removed: bool  # the source run removed it
    missing: str | None = None  # a stage it would reach whose signals the source never computed
    rewritten_text_lost: bool = False  # rule 4


@dataclass(frozen=True)
class _Step:
    name: str
    pos: int
    kind: str  # fixed | global | stage
    stage: PerDocumentStage | None
    enabled_new: bool
    enabled_src: bool
    filters_new: bool


_STEPS: list[tuple[Config, Config, tuple[_Step, ...]]] = []  # the last (src, new) pair's steps


def _steps(src: Config, new: Config) -> tuple[_Step, ...]:
    """The stages in order with their settings resolved once per (source, new) config pair."""
    if _STEPS and _STEPS[0][0] is src and _STEPS[0][1] is new:
        return _STEPS[0][2]
    steps = []
    for name in ORDER:
        if name in FIXED:
            steps.append(_Step(name, POS[name], "fixed", None, True, True, True))
        elif name in GLOBAL:
            steps.append(_Step(name, POS[name], "global", None, _global_enabled(name, new),
                               _global_enabled(name, src), True))
        else:
            stage = PER_DOCUMENT[name]
            steps.append(_Step(name, POS[name], "stage", stage, stage.enabled(new), stage.enabled(src),
                               stage.filters(new)))
    _STEPS[:] = [(src, new, tuple(steps))]
    return _STEPS[0][2]


def walk(row: Mapping[str, Any], src: Config, new: Config, note: str | None = None) -> Walk:
    """Decide one document anew from its stored metadata/ row (see the module docstring)."""
    src_stage = row["stage"]
    src_pos = POS[src_stage] if src_stage else len(ORDER)
    out = dict(row)
    reached: set[str] = set()
    removal: Removal | str | None = None
    missing = None
    for step in _steps(src, new):
        name = step.name
        if step.kind == "fixed":
            reached.add(name)
            if src_stage == name:
                removal = SOURCE
                break
            continue
        if not step.enabled_new:
            continue
        if not step.enabled_src or src_pos < step.pos:
            missing = name
            break
        reached.add(name)
        if step.stage is None:  # exact or near dedup: the stored outcome stands (rule 3)
            if src_stage == name:
                removal = SOURCE
                break
            continue
        decided = step.stage.decide(row, new)
        out.update(step.stage.flags(row, new, decided))
        if decided is not None and step.filters_new:
            removal = decided if note is None else dataclasses.replace(decided, detail=f"{decided.detail} ({note})")
            break
    for name, stage in PER_DOCUMENT.items():
        if name not in reached:
            out.update(dict.fromkeys(stage.columns))
    if "near_dedup" not in reached:
        out.update(dict.fromkeys(NEAR_DUP_COLUMNS))
    if "extract" not in reached:  # removed anew by a stage that runs on the URL: the page is never parsed
        out.update(dict.fromkeys(EXTRACT_COLUMNS))
    if isinstance(removal, Removal):
        out.update(decision="removed", stage=removal.stage.value, reason=removal.reason.value, duplicate_of=None)
    elif removal is None:
        out.update(decision="kept", stage=None, reason=None, duplicate_of=None)
    result = Walk(out, removal, reached, row["decision"] == "removed", missing)
    for name, stage in PER_DOCUMENT.items():  # rule 4: text before/after a rewrite is not stored
        if _rewriting(stage, src):
            passed_src = src_pos > POS[name]
            new_stage = out["stage"] if out["decision"] == "removed" else None
            passed_new = (POS[new_stage] if new_stage else len(ORDER)) > POS[name]
            result.rewritten_text_lost |= passed_src != passed_new
    return result


# --- the run ---------------------------------------------------------------------------------


def _key(row: Mapping[str, Any]) -> Key:
    return row["doc_id"], row["source_path"], row["source_offset"]


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.parquet") if not p.name.startswith("."))


def _batches(path: Path) -> Iterator[list[dict[str, Any]]]:
    """A metadata/ file's rows, a record batch at a time (memory per batch, not per file)."""
    for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS):
        yield batch.to_pylist()


def _rows(path: Path) -> list[dict[str, Any]]:
    return pq.read_table(path).to_pylist()


def _write(rows: list[dict[str, Any]], schema: pa.Schema, path: Path, cfg: Config) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    pq.write_table(pa.Table.from_pylist(sorted(rows, key=row_sort_key), schema=schema), tmp,
                   compression=_compression(cfg), row_group_size=cfg.output.row_group_rows)
    os.replace(tmp, path)


def load_source(source: str | Path, output: str | Path) -> tuple[Path, Path, dict[str, Any], Config]:
    if "://" in f"{source}{output}":
        raise RunError("redecide reads and writes local directories only (copy the run's outputs first)")
    src, dst = Path(source), Path(output)
    if src.resolve() == dst.resolve():
        raise RunError("redecide writes a new run: --output must differ from the source directory")
    manifest_path = src / MANIFEST_FILE
    if not manifest_path.is_file():
        raise RunError(f"{src} has no {MANIFEST_FILE}: not a complete toxsieve run")
    manifest = json.loads(manifest_path.read_text())
    versions = {str(entry.get("version")) for entry in manifest.get("schemas", {}).values()}
    if versions != {str(SCHEMA_VERSION)}:
        raise RunError(f"{src} was written with output schema version {', '.join(sorted(versions)) or '?'}; this "
                       f"toxsieve re-decides version {SCHEMA_VERSION} (its metadata/ columns differ): re-run "
                       "`toxsieve run` on the inputs")
    try:
        cfg = config_from_dict(manifest["config"])
    except ConfigError as exc:
        raise RunError(f"{src}/{MANIFEST_FILE}: its config no longer loads: {exc}") from exc
    return src, dst, manifest, cfg


@dataclass
class Plan:
    """What pass 2 needs beyond the stored rows: for each document whose kept/ or removed/ row changes,
    its new Removal (removed by a re-decidable stage) or, restored, its new metadata row. Documents
    still kept, or still removed by a fixed or dedup stage, need nothing: their rows follow from the
    stored ones."""

    changes: dict[Key, Removal | dict[str, Any]]
    changed: list[str]
    newly_removed: int = 0
    restored: int = 0


def plan(src: Path, src_cfg: Config, new_cfg: Config, note: str | None = None) -> Plan:
    """Pass 1, before anything is written: every document's new decision, and every refusal."""
    changed = check_settings(src_cfg, new_cfg)
    changes: dict[Key, Removal | dict[str, Any]] = {}
    restore: set[Key] = set()
    newly_removed = 0
    missing: Counter[tuple[str, str]] = Counter()
    lost_rewrite = 0
    left_exact: set[str] = set()  # doc_ids that reached exact dedup in the source but no longer do
    exact_dups: list[tuple[str, str]] = []  # (doc_id, keeper) of exact duplicates that still reach it
    near_split = 0
    for path in _files(src / "metadata"):
        for row in (row for batch in _batches(path) for row in batch):
            w = walk(row, src_cfg, new_cfg, note)
            if isinstance(w.removal, Removal):
                changes[_key(row)] = w.removal
                newly_removed += not w.source_removed
            elif w.removal is None and w.source_removed:
                changes[_key(row)] = w.row
                restore.add(_key(row))
            if w.missing:
                missing[(w.missing, row["stage"] or "kept")] += 1
                continue
            lost_rewrite += w.rewritten_text_lost
            src_pos = POS[row["stage"]] if row["stage"] else len(ORDER)
            for name in GLOBAL:
                reached_src = _global_enabled(name, src_cfg) and src_pos >= POS[name]
                if not reached_src or name in w.reached:
                    continue
                if name == "exact_dedup":
                    left_exact.add(row["doc_id"])
                elif (row["near_dup_cluster_size"] or 0) > 1:
                    near_split += 1
            if row["stage"] == "exact_dedup" and "exact_dedup" in w.reached:
                exact_dups.append((row["doc_id"], row["duplicate_of"]))
    if missing:
        parts = "; ".join(f"{n} would reach {stage} (source: {was})" for (stage, was), n in sorted(missing.items()))
        raise RedecideError(
            f"cannot re-decide from stored signals: {sum(missing.values())} document(s) would now reach a stage "
            f"whose signals {src} never computed for them ({parts}; 'source: X' = removed there by X). Tightening never "
            "lacks signals; to loosen or disable a stage that removed documents, run the source with the "
            "stages after it in annotate mode, or re-run `toxsieve run` with the new config")
    orphans = sum(1 for _, keeper in exact_dups if keeper in left_exact)
    if orphans or near_split:
        raise RedecideError(
            f"cannot re-decide from stored signals: the new settings remove before dedup "
            f"{'the keepers of ' + str(orphans) + ' exact duplicate(s)' if orphans else ''}"
            f"{' and ' if orphans and near_split else ''}"
            f"{str(near_split) + ' document(s) in near-duplicate clusters' if near_split else ''}; which documents "
            "dedup keeps then depends on documents it never compared. Re-run `toxsieve run` with the new config")
    if lost_rewrite:
        raise RedecideError(
            f"cannot re-decide: {lost_rewrite} document(s) would now stop before, or pass, a stage that rewrote "
            "the text (C4 line cleaning in filter mode); the text on the other side of the rewrite is not stored")
    result = Plan(changes, changed, newly_removed, len(restore))
    if restore:
        unrestorable = 0
        for path in _files(src / "removed"):
            table = pq.read_table(path, columns=["doc_id", "source_path", "source_offset", "text", "text_truncated"])
            for doc_id, sp, so, has_text, truncated in zip(
                    table["doc_id"].to_pylist(), table["source_path"].to_pylist(), table["source_offset"].to_pylist(),
                    table["text"].is_valid().to_pylist(), table["text_truncated"].to_pylist(), strict=True):
                if (doc_id, sp, so) in restore and (not has_text or truncated):
                    unrestorable += 1
        if unrestorable:
            raise RedecideError(
                f"{unrestorable} document(s) that {src} removed would be kept at the new thresholds/settings, "
                "but removed/ does not hold their full text; re-run the source with output.removed_text: full, "
                "or with the stage in annotate mode (toxicity's default), to re-decide freely")
    return result


def redecide(source: str | Path, output: str | Path, new_cfg: Config | Callable[[Config], Config],
             overwrite: bool = False, run_id: str | None = None, command: str = "redecide",
             note: Callable[[str | None], str] | None = None) -> dict[str, Any]:
    """Write a new run to ``output`` from ``source``'s stored tables, decided at ``new_cfg`` (or
    ``new_cfg(source config)``). Returns its stats; a RunError (RedecideError) before writing anything."""
    started = time.time()
    src, dst, manifest, src_cfg = load_source(source, output)
    cfg = new_cfg(src_cfg) if callable(new_cfg) else new_cfg
    try:
        cfg.validate()
    except ConfigError as exc:
        raise RunError(str(exc)) from exc
    run_id = run_id or new_run_id()
    note_text = note(manifest.get("run_id")) if note else None
    p = plan(src, src_cfg, cfg, note_text)

    with hold_output(str(dst), run_id):  # one run per output directory
        prepare_output(str(dst), overwrite)
        counts: Counter[str] = Counter()
        fast = cfg.toxicity.threshold_for if cfg.toxicity.cascade_model or cfg.toxicity.cascade_models else None
        for path in _files(src / "metadata"):  # in the source's (sorted) order, a batch at a time
            target = dst / "metadata" / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".tmp-{target.name}")
            with pq.ParquetWriter(tmp, METADATA_SCHEMA, compression=_compression(cfg)) as writer:
                for batch in _batches(path):
                    rows = [walk(row, src_cfg, cfg, note_text).row for row in batch]  # as in pass 1
                    for row in rows:
                        counts.update(funnel_keys(row, fast))
                        for key, n in stat_keys(row):
                            counts[key] += n
                    writer.write_table(pa.Table.from_pylist(rows, schema=METADATA_SCHEMA),
                                       row_group_size=cfg.output.row_group_rows)
            os.replace(tmp, target)
        # kept/ and removed/ hold the texts: rows that stay as they were are filtered in Arrow, only the
        # changed ones become Python rows.
        for path in _files(src / "kept"):
            table = pq.read_table(path)
            changed = _changed(table, p.changes)
            stay = _still_kept(table.filter(pc.invert(changed)), cfg)
            moved = [audit_row(_document(row, row["text"], _removal(p.changes[_key(row)])), run_id, cfg.output)
                     for row in table.filter(changed).to_pylist()]
            moved = [_unparsed(row) if _before_extract(p.changes[_key(row)]) else row for row in moved]
            _write_table(stay, CURATED_SCHEMA, dst / "kept" / path.name, cfg)
            if moved:
                _write(moved, AUDIT_SCHEMA, dst / "removed" / f"{command}-{path.name}", cfg)
        for path in _files(src / "removed"):
            table = pq.read_table(path)
            changed = _changed(table, p.changes)
            stay = table.filter(pc.invert(changed))  # removed by a fixed or dedup stage: its evidence stands
            stay = stay.set_column(stay.column_names.index("run_id"), "run_id",
                                   pa.array([run_id] * stay.num_rows, pa.string()))
            redecided, restored = [], []
            for row in table.filter(changed).to_pylist():
                change = p.changes[_key(row)]
                if isinstance(change, Removal):
                    row = {**row, "run_id": run_id, "stage": change.stage.value, "reason": change.reason.value,
                           "score": change.score, "threshold": change.threshold, "duplicate_of": change.duplicate_of,
                           "matched": list(change.matched) or None, "detail": change.detail}
                    redecided.append(_unparsed(row) if _before_extract(change) else row)
                else:
                    restored.append(curated_row(_document(change, row["text"])))
            if redecided:
                stay = pa.concat_tables([stay.cast(AUDIT_SCHEMA), pa.Table.from_pylist(redecided, schema=AUDIT_SCHEMA)])
            _write_table(stay, AUDIT_SCHEMA, dst / "removed" / path.name, cfg)
            if restored:
                _write(restored, CURATED_SCHEMA, dst / "kept" / f"{command}-{path.name}", cfg)
        for path in _files(src / "dead_letter"):
            dead = [{**d, "run_id": run_id} for d in _rows(path)]
            counts.update(["dead_letter"] * len(dead))
            counts.update(f"dead_letter/{d['error_type']}" for d in dead)
            _write(dead, DEAD_LETTER_SCHEMA, dst / "dead_letter" / path.name, cfg)
        counts["read"] = counts["documents"] + counts["dead_letter"]
        (dst / COUNTS_FILE).write_text(json.dumps(dict(sorted(counts.items()))))
        stats = finalize_stats(str(dst), run_id, time.time() - started)
        stats[command] = {"source_run_id": manifest.get("run_id"), "changed": p.changed,
                          "newly_removed": p.newly_removed, "restored": p.restored}
        new_manifest = {
            **manifest, "run_id": run_id, "config": cfg.to_dict(),
            "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "derived_from": {"run_id": manifest.get("run_id"), "output": str(src), "command": command,
                             "changed": p.changed, "models_run": False},
        }
        (dst / STATS_FILE).write_text(json.dumps(stats, indent=2) + "\n")
        (dst / MANIFEST_FILE).write_text(json.dumps(new_manifest, indent=2) + "\n")  # last: the run is complete
    return stats


def _changed(table: pa.Table, changes: Mapping[Key, Any]) -> pa.Array:
    keys = zip(table["doc_id"].to_pylist(), table["source_path"].to_pylist(), table["source_offset"].to_pylist(),
               strict=True)
    return pa.array([key in changes for key in keys], pa.bool_())


def _before_extract(change: Removal | dict[str, Any]) -> bool:
    """A removal by a stage that runs on the URL, before the page is extracted (phase ``url``)."""
    return isinstance(change, Removal) and POS[change.stage.value] < POS["extract"]


def _unparsed(row: dict[str, Any]) -> dict[str, Any]:
    """An audit row as a fresh run writes it for a page removed before extraction: no text, no language."""
    return {**row, "language": None, "language_score": None, "n_chars": None, "text": None, "text_truncated": False}


def _removal(change: Removal | dict[str, Any]) -> Removal:
    assert isinstance(change, Removal), "a kept document can only be removed"
    return change


def _still_kept(table: pa.Table, cfg: Config) -> pa.Table:
    """kept/ rows of documents still kept: they reached every enabled stage, so only the columns of a
    stage now disabled change (to null, as in a fresh run)."""
    nulled = [] if cfg.toxicity.enabled else ["toxicity_score", "toxicity_label_scores"]
    nulled += [] if PER_DOCUMENT["length"].enabled(cfg) else ["n_tokens"]
    for name in nulled:
        i = table.column_names.index(name)
        table = table.set_column(i, table.schema.field(i), pa.nulls(table.num_rows, table.schema.field(i).type))
    return table


def _compression(cfg: Config) -> str | None:
    return None if cfg.output.compression == "none" else cfg.output.compression


def _write_table(table: pa.Table, schema: pa.Schema, path: Path, cfg: Config) -> None:
    """Like ``_write`` for an Arrow table: sorted by (doc_id, source_path, source_offset) as every output is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    table = table.select(schema.names).cast(schema).sort_by(
        [("doc_id", "ascending"), ("source_path", "ascending"), ("source_offset", "ascending")])
    pq.write_table(table, tmp, compression=_compression(cfg), row_group_size=cfg.output.row_group_rows)
    os.replace(tmp, path)


def _document(meta: Mapping[str, Any], text: str | None, removal: Removal | None = None) -> Document:
    """The Document a fresh run would have written at this point, from a metadata/ (or kept/) row and the
    text: the outputs' own row builders then make the kept/ and removed/ rows."""
    labels = tuple((e["label"], e["score"]) for e in meta["toxicity_label_scores"] or ())
    return Document(
        meta["doc_id"], meta["source_path"], meta["source_offset"], meta["source_format"], url=meta["url"],
        crawl_date=meta["crawl_date"], text=text, text_hash=meta["text_hash"], language=meta["language"],
        language_score=meta["language_score"], toxicity_score=meta["toxicity_score"], toxicity_label_scores=labels,
        signals=(("length_tokens", meta.get("length_tokens", meta.get("n_tokens"))),), removal=removal,
    )
