"""``toxsieve rethreshold``: a new run directory at other toxicity thresholds, from stored scores.

No model runs: every document's ``toxicity_score`` is in ``metadata/`` and ``kept/``. The new run
has the same four outputs, its own ``stats.json`` (computed from the new metadata and checked by
the same conservation checks as ``toxsieve run``) and a ``manifest.json`` that names the source run.

- Documents kept by the source run and at or above the new threshold are removed (``filter``
  mode) with reason ``toxicity_above_threshold``; ``annotate`` mode only updates the flags.
- Documents the source run removed for toxicity stay removed when still above the threshold. A
  document that would now be *kept* cannot be restored when the source stored only a truncated
  text: that is an error naming the count (run the source in ``annotate`` mode, the default, to
  re-threshold freely).
- In a cascade the documents decided by the second model are re-decided at ``cascade_threshold``.

Files are processed one at a time (a run's shards are bounded in size); local paths only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from toxsieve.pipelines.config import Config, ConfigError, ToxicityConfig, config_from_dict
from toxsieve.pipelines.outputs import audit_text, row_sort_key
from toxsieve.pipelines.pipeline import COUNTS_FILE
from toxsieve.pipelines.run import (
    MANIFEST_FILE,
    STATS_FILE,
    RunError,
    finalize_stats,
    hold_output,
    new_run_id,
    prepare_output,
)
from toxsieve.pipelines.toxicity import SCORE_DECIMALS, top_toxic_label
from toxsieve.pipelines.transforms import funnel_keys
from toxsieve.schemas import AUDIT_SCHEMA, CURATED_SCHEMA, DEAD_LETTER_SCHEMA, METADATA_SCHEMA, Reason, Stage

Key = tuple[str, str, int]
TOXICITY = Stage.TOXICITY.value
ABOVE = Reason.TOXICITY_ABOVE_THRESHOLD.value


def _key(row: dict[str, Any]) -> Key:
    return row["doc_id"], row["source_path"], row["source_offset"]


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.parquet") if not p.name.startswith("."))


def _rows(path: Path) -> list[dict[str, Any]]:
    return pq.read_table(path).to_pylist()


def _write(rows: list[dict[str, Any]], schema: pa.Schema, path: Path, cfg: Config) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    compression = None if cfg.output.compression == "none" else cfg.output.compression
    pq.write_table(pa.Table.from_pylist(sorted(rows, key=row_sort_key), schema=schema), tmp,
                   compression=compression, row_group_size=cfg.output.row_group_rows)
    os.replace(tmp, path)


def new_toxicity_config(source: ToxicityConfig, threshold: float | None, per_language: dict[str, float] | None,
                        cascade_threshold: float | None, mode: str) -> ToxicityConfig:
    tox = dataclasses.replace(
        source, mode=mode,
        threshold=source.threshold if threshold is None else threshold,
        threshold_per_language=source.threshold_per_language if per_language is None else per_language,
        cascade_threshold=source.cascade_threshold if cascade_threshold is None else cascade_threshold,
    )
    tox.validate()
    return tox


def _score(row: dict[str, Any]) -> float:
    """The score as ScoreToxicity compared it: rounded to 6 decimals (float32 storage keeps them)."""
    return round(float(row["toxicity_score"]), SCORE_DECIMALS)


def _threshold(row: dict[str, Any], tox: ToxicityConfig) -> float:
    """Documents the cascade's second model decided carry the fast score beside their own."""
    if (tox.cascade_model or tox.cascade_models) and row.get("toxicity_fast_score") is not None:
        return tox.cascade_threshold
    return tox.threshold_for(row.get("language"))


def rethreshold(source: str | Path, output: str | Path, threshold: float | None = None,
                per_language: dict[str, float] | None = None, cascade_threshold: float | None = None,
                mode: str = "filter", overwrite: bool = False, run_id: str | None = None) -> dict[str, Any]:
    started = time.time()
    if "://" in f"{source}{output}":
        raise RunError("rethreshold reads and writes local directories only (copy the run's outputs first)")
    src, dst = Path(source), Path(output)
    if src.resolve() == dst.resolve():
        raise RunError("rethreshold writes a new run: --output must differ from the source directory")
    manifest_path = src / MANIFEST_FILE
    if not manifest_path.is_file():
        raise RunError(f"{src} has no {MANIFEST_FILE}: not a complete toxsieve run")
    manifest = json.loads(manifest_path.read_text())
    cfg = config_from_dict(manifest["config"])
    if not cfg.toxicity.enabled:
        raise RunError(f"{src} was run with toxicity disabled: there are no stored scores")
    try:
        tox = new_toxicity_config(cfg.toxicity, threshold, per_language, cascade_threshold, mode)
    except ConfigError as exc:
        raise RunError(str(exc)) from exc
    new_cfg = dataclasses.replace(cfg, toxicity=tox)
    run_id = run_id or new_run_id()

    # Pass 1 (before writing anything): decisions, and documents that cannot be restored.
    newly_removed: dict[Key, dict[str, Any]] = {}
    still_removed: dict[Key, float] = {}  # source toxicity removals, with their new threshold
    unrestorable = 0
    for path in _files(src / "metadata"):
        for row in _rows(path):
            if row["toxicity_score"] is None:
                continue
            flagged = _score(row) >= _threshold(row, tox)
            if row["decision"] == "removed" and row["stage"] == TOXICITY:
                if flagged and mode == "filter":
                    still_removed[_key(row)] = _threshold(row, tox)
                else:
                    unrestorable += 1
            elif row["decision"] == "kept" and flagged and mode == "filter":
                newly_removed[_key(row)] = row
    if unrestorable:
        raise RunError(f"{unrestorable} document(s) that {src} removed for toxicity would be kept at the new "
                       "threshold, but removed/ does not hold their full curated record; re-run the source with "
                       "toxicity.mode: annotate (the default) to re-threshold freely")

    with hold_output(str(dst), run_id):  # one run per output directory (issue #10)
        prepare_output(str(dst), overwrite)
        counts: Counter[str] = Counter()
        fast = tox.threshold_for if tox.cascade_model or tox.cascade_models else None
        for path in _files(src / "metadata"):
            rows = [_updated_metadata(row, tox, newly_removed) for row in _rows(path)]
            for row in rows:
                counts.update(funnel_keys(row, fast))
            _write(rows, METADATA_SCHEMA, dst / "metadata" / path.name, new_cfg)
        new_audit: list[dict[str, Any]] = []
        for path in _files(src / "kept"):
            kept = []
            for row in _rows(path):
                meta = newly_removed.get(_key(row))
                if meta is None:
                    kept.append(row)
                else:
                    new_audit.append(_audit_record(row, meta, run_id, _threshold(meta, tox), new_cfg, manifest))
            _write(kept, CURATED_SCHEMA, dst / "kept" / path.name, new_cfg)
        for path in _files(src / "removed"):
            _write([_updated_audit(row, still_removed) for row in _rows(path)], AUDIT_SCHEMA,
                   dst / "removed" / path.name, new_cfg)
        if new_audit:
            _write(new_audit, AUDIT_SCHEMA, dst / "removed" / f"part-rethreshold-{run_id}.parquet", new_cfg)
        for path in _files(src / "dead_letter"):
            dead = _rows(path)
            counts.update(["dead_letter"] * len(dead))
            counts.update(f"dead_letter/{d['error_type']}" for d in dead)
            _write(dead, DEAD_LETTER_SCHEMA, dst / "dead_letter" / path.name, new_cfg)
        counts["read"] = counts["documents"] + counts["dead_letter"]
        (dst / COUNTS_FILE).write_text(json.dumps(dict(sorted(counts.items()))))
        stats = finalize_stats(str(dst), run_id, time.time() - started)
        stats["rethreshold"] = {"source_run_id": manifest.get("run_id"), "newly_removed": len(newly_removed)}
        new_manifest = {
            **manifest, "run_id": run_id, "config": new_cfg.to_dict(),
            "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "derived_from": {"run_id": manifest.get("run_id"), "output": str(src), "command": "rethreshold",
                             "models_run": False},
        }
        (dst / STATS_FILE).write_text(json.dumps(stats, indent=2) + "\n")
        (dst / MANIFEST_FILE).write_text(json.dumps(new_manifest, indent=2) + "\n")  # last: the run is complete
    return stats


def _updated_metadata(row: dict[str, Any], tox: ToxicityConfig, newly_removed: dict[Key, dict[str, Any]]) -> dict[str, Any]:
    if row["toxicity_score"] is None:
        return row
    threshold = _threshold(row, tox)
    row = {**row, "toxicity_threshold": threshold, "toxicity_flagged": _score(row) >= threshold}
    if _key(row) in newly_removed:
        row.update(decision="removed", stage=TOXICITY, reason=ABOVE)
    return row


def _updated_audit(row: dict[str, Any], still_removed: dict[Key, float]) -> dict[str, Any]:
    """A toxicity removal of the source run, with the new threshold that it still reaches."""
    threshold = still_removed.get(_key(row)) if row["stage"] == TOXICITY else None
    return row if threshold is None else {**row, "threshold": threshold}


def _audit_record(kept: dict[str, Any], meta: dict[str, Any], run_id: str, threshold: float, cfg: Config,
                  manifest: dict[str, Any]) -> dict[str, Any]:
    text, truncated = audit_text(kept["text"], cfg.output)
    from toxsieve.classifiers.transformer import default_toxic_labels

    labels = {entry["label"]: entry["score"] for entry in kept.get("toxicity_label_scores") or []}
    top = top_toxic_label(labels, cfg.toxicity.toxic_labels or default_toxic_labels(list(labels)))
    return {
        "doc_id": kept["doc_id"], "run_id": run_id, "stage": TOXICITY, "reason": ABOVE, "url": kept["url"],
        "source_path": kept["source_path"], "source_offset": kept["source_offset"],
        "source_format": kept["source_format"],
        "score": _score(kept), "threshold": threshold, "duplicate_of": None, "matched": [top],
        "detail": (f"{meta.get('toxicity_model')}: stored score {_score(kept):.3f} >= {threshold:.3f} "
                   f"(rethreshold of run {manifest.get('run_id')}; no model run)"),
        "language": kept["language"], "language_score": kept["language_score"], "n_chars": kept["n_chars"],
        "text": text, "text_truncated": truncated,
    }

