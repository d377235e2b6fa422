"""A stage that raises on one document costs that document only: it is dead-lettered with the stage and
the error, every other document is decided as usual, and the run's conservation proof holds."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import DEMO_CONFIG, run_on_sample
from toxsieve.pipelines.cli.main import main
from toxsieve.pipelines.stages import BY_NAME

pytestmark = pytest.mark.e2e

MARKER = "zqxjv-poison-record"
PROSE = ("The library committee met on Tuesday to discuss the budget for the reading room and the new opening "
         "hours that many residents had asked for during the winter months. ")


def _inputs(tmp_path: Path) -> Path:
    src = tmp_path / "docs.jsonl"
    docs = [{"id": f"ok-{i}", "text": f"{PROSE * 4} Number {i}."} for i in range(4)]
    docs.insert(2, {"id": "poison", "text": f"{MARKER}. {PROSE * 4}"})
    src.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return src


def _run(out: Path, src: Path) -> int:
    return main(["run", "--output", str(out), "--quiet", "--run-id", "r", "--input", str(src),
                 "--set", "near_dedup.enabled=false"])


def _check(out: Path, stage: str) -> None:
    stats = json.loads((out / "stats.json").read_text())
    assert stats["conservation"]["ok"] and stats["read"] == 5 and stats["dead_lettered"] == 1
    dead = pq.read_table(out / "dead_letter").to_pylist()
    assert [(d["source_offset"], d["error_type"]) for d in dead] == [(2, "StageError")]  # the poison line
    assert dead[0]["error"].startswith(f"stage {stage} raised RuntimeError: cannot handle")
    assert MARKER in dead[0]["record_excerpt"]
    kept = pq.read_table(out / "kept").column("doc_id").to_pylist()
    assert sorted(kept) == ["ok-0", "ok-1", "ok-2", "ok-3"]
    assert (out / "manifest.json").is_file()


def test_a_declared_stage_raising_on_one_document_dead_letters_it(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    stage = BY_NAME["gopher_quality"]

    def score(doc, cfg):  # type: ignore[no-untyped-def]
        if MARKER in (doc.text or ""):
            raise RuntimeError("cannot handle this page")
        return stage.score(doc, cfg)

    monkeypatch.setitem(BY_NAME, "gopher_quality", dataclasses.replace(stage, score=score))
    out = tmp_path / "out"
    assert _run(out, _inputs(tmp_path)) == 0
    _check(out, "gopher_quality")


def test_a_toxicity_model_raising_on_one_document_dead_letters_it(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from toxsieve.pipelines.runtime import fast_scoring

    real = fast_scoring.score_documents

    def score_documents(classifier, texts, max_words):  # type: ignore[no-untyped-def]
        if any(MARKER in t for t in texts):  # the whole batch fails while the poison page is in it
            raise RuntimeError("cannot handle this batch")
        return real(classifier, texts, max_words)

    monkeypatch.setattr(fast_scoring, "score_documents", score_documents)
    out = tmp_path / "out"
    assert _run(out, _inputs(tmp_path)) == 0
    _check(out, "toxicity")
    meta = pq.read_table(out / "metadata").to_pylist()
    assert all(m["toxicity_score"] is not None for m in meta)  # the rest of its batch was scored one by one


def test_extraction_raising_outside_its_bounds_dead_letters_the_page(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from toxsieve.pipelines.stages import extract

    real = extract.normalize_text

    def normalize_text(text):  # type: ignore[no-untyped-def]
        if MARKER in text:
            raise RuntimeError("cannot handle this page")  # not one of the errors extraction's bounds name
        return real(text)

    monkeypatch.setattr(extract, "normalize_text", normalize_text)
    out = tmp_path / "out"
    assert _run(out, _inputs(tmp_path)) == 0
    _check(out, "extract")


def test_the_sample_without_failures_has_no_stage_errors(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run_on_sample(out, DEMO_CONFIG) == 0
    dead = pq.read_table(out / "dead_letter").to_pylist()
    assert not [d for d in dead if d["error_type"] == "StageError"]
