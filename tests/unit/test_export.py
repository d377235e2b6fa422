"""`export`'s decisions on a small synthetic run: the cascade's own threshold, bins, option checks."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from toxsieve.pipelines.cli.export import ExportError, ExportOptions, export, parse_bins
from toxsieve.schemas import AUDIT_SCHEMA, CURATED_SCHEMA, METADATA_SCHEMA

# (doc_id, language, score, fast score: set when the cascade's second model decided the document)
DOCS = [("a", "en", 0.2, None), ("b", "en", 0.6, 0.5), ("c", "en", 0.95, None), ("d", "en", 0.45, 0.8),
        ("e", "de", 0.7, None), ("f", "en", 0.6, None)]


def _run(root: Path) -> Path:
    for name in ("kept", "metadata", "removed"):
        (root / name).mkdir(parents=True)
    base = {"source_path": "in.jsonl", "source_format": "jsonl"}
    kept = [{f.name: None for f in CURATED_SCHEMA} | base | {
        "doc_id": d, "text": f"text of {d} " * 10, "language": lang, "toxicity_score": s, "text_hash": "h",
        "n_chars": 100, "source_offset": i} for i, (d, lang, s, _) in enumerate(DOCS)]
    meta = [{f.name: None for f in METADATA_SCHEMA} | base | {
        "doc_id": d, "language": lang, "toxicity_score": s, "toxicity_fast_score": fast, "decision": "kept",
        "n_bytes_raw": 1, "source_offset": i} for i, (d, lang, s, fast) in enumerate(DOCS)]
    pq.write_table(pa.Table.from_pylist(kept, schema=CURATED_SCHEMA), root / "kept" / "part-0.parquet")
    pq.write_table(pa.Table.from_pylist(meta, schema=METADATA_SCHEMA), root / "metadata" / "part-0.parquet")
    pq.write_table(AUDIT_SCHEMA.empty_table(), root / "removed" / "part-0.parquet")
    tox = {"enabled": True, "mode": "annotate", "threshold": 0.9, "threshold_per_language": {"de": 0.5},
           "cascade_model": "minilm", "cascade_low": 0.3, "cascade_high": 0.97, "cascade_threshold": 0.5}
    (root / "manifest.json").write_text(json.dumps({"run_id": "syn", "config": {"toxicity": tox}}))
    return root


def _ids(out: Path) -> list[str]:
    return sorted(pq.read_table(out / "data").column("doc_id").to_pylist())


def test_cascade_documents_are_judged_at_the_cascade_threshold(tmp_path: Path) -> None:
    src = _run(tmp_path / "run")
    export(src, tmp_path / "dapt", ExportOptions(view="dapt"))
    export(src, tmp_path / "toxic", ExportOptions(view="toxic"))
    # b (0.6, decided by the second model at 0.5) and e (de: 0.5) are toxic; f (0.6, fastText at 0.9) is not
    assert _ids(tmp_path / "toxic") == ["b", "c", "e"]
    assert _ids(tmp_path / "dapt") == ["a", "d", "f"]
    thresholds = dict(zip(*pq.read_table(tmp_path / "toxic" / "data").select(["doc_id", "toxicity_threshold"])
                          .to_pydict().values(), strict=True))
    assert thresholds == pytest.approx({"b": 0.5, "c": 0.9, "e": 0.5})


def test_explicit_bins_and_language_filter(tmp_path: Path) -> None:
    src = _run(tmp_path / "run")
    export(src, tmp_path / "c", ExportOptions(view="conditioned", bins=parse_bins("low:0.5,mid:0.9,high"),
                                              languages=("en",)))
    table = pq.read_table(tmp_path / "c" / "data").to_pydict()
    assert dict(zip(table["doc_id"], table["toxicity_bin"], strict=True)) == {
        "a": "low", "b": "mid", "c": "high", "d": "low", "f": "mid"}
    summary = json.loads((tmp_path / "c" / "export.json").read_text())
    assert summary["excluded"] == {"language not asked for (--language)": 1}
    assert {(r["bin"], r["language"]): r["documents"] for r in summary["per_bin_language"]} == {
        ("high", "en"): 1, ("low", "en"): 2, ("mid", "en"): 2}


def test_bad_thresholds_are_refused_before_writing(tmp_path: Path) -> None:
    src = _run(tmp_path / "run")
    with pytest.raises(ExportError, match="--threshold"):
        export(src, tmp_path / "x", ExportOptions(view="dapt", threshold=1.5))
    with pytest.raises(ExportError, match="--view"):
        export(src, tmp_path / "x", ExportOptions(view="nope"))
    assert not (tmp_path / "x").exists()
    assert parse_bins("low:0.5,high").edges == (0.5,) and parse_bins(None).names == ("low", "high")
