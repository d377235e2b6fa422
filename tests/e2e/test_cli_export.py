"""`toxsieve export` on real runs of the crawl sample: the three views, the card, loading, refusals."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml

from tests.conftest import DEMO_CONFIG, run_on_sample
from toxsieve.pipelines.cli.main import main

pytestmark = pytest.mark.e2e


def _run(out: Path, config: Path) -> None:
    assert run_on_sample(out, config) == 0


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("export")
    annotate, filtered = tmp / "annotate", tmp / "filter"
    # Every language scored (by the English model where no other is routed), so the views can be checked
    # against every kept document; documents without a score are made explicitly in their own test.
    every_language = "toxicity:\n  builtin_models: false\n  models: {default: fasttext}\n"
    config = tmp / "annotate.yaml"  # annotate at 0.9: every score stored, nothing removed for toxicity
    config.write_text(DEMO_CONFIG.read_text() + every_language)
    _run(annotate, config)
    config = tmp / "filter.yaml"  # removes at 0.5 and keeps the full removed text
    config.write_text(DEMO_CONFIG.read_text().replace("removed_text: truncated", "removed_text: full")
                      + every_language + "  mode: filter\n  threshold: 0.5\n")
    _run(filtered, config)
    return {"annotate": annotate, "filter": filtered, "tmp": tmp}


def _export(source: Path, out: Path, *args: str) -> int:
    return main(["export", str(source), "--output", str(out), *args])


def _rows(out: Path) -> list[dict]:
    return pq.read_table(out / "data").to_pylist()


def _kept(run: Path) -> list[dict]:
    return pq.read_table(run / "kept").to_pylist()


def test_views_partition_the_kept_documents_at_the_threshold(runs: dict[str, Path], tmp_path: Path) -> None:
    src = runs["annotate"]
    for view in ("dapt", "toxic", "conditioned"):
        assert _export(src, tmp_path / view, "--view", view, "--threshold", "0.8",
                       "--threshold-per-language", "zh=0.3") == 0
    kept = _kept(src)
    thr = {"zh": 0.3}

    def toxic(r: dict) -> bool:
        return round(r["toxicity_score"], 6) >= thr.get(r["language"], 0.8)

    dapt, tox, cond = (_rows(tmp_path / v) for v in ("dapt", "toxic", "conditioned"))
    assert sorted(r["doc_id"] for r in dapt) == sorted(r["doc_id"] for r in kept if not toxic(r))
    assert sorted(r["doc_id"] for r in tox) == sorted(r["doc_id"] for r in kept if toxic(r))
    assert dapt and tox and len(cond) == len(kept)
    by_id = {r["doc_id"]: r for r in kept}
    for r in dapt + tox + cond:
        assert r["text"] == by_id[r["doc_id"]]["text"] and r["token_estimate"] == -(-len(r["text"]) // 4)
    assert all(r["toxicity_threshold"] == pytest.approx(0.3) for r in tox if r["language"] == "zh")
    for r in cond:
        expected = "high" if toxic(by_id[r["doc_id"]]) else "low"
        assert r["toxicity_bin"] == expected and r["control_token"] == f"<|toxicity:{expected}|>"
    summary = json.loads((tmp_path / "dapt" / "export.json").read_text())
    assert summary["documents"] == len(dapt) and summary["excluded"] == {"at or above the threshold": len(tox)}


def test_card_loading_with_datasets_and_determinism(runs: dict[str, Path], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    src = runs["annotate"]
    out = tmp_path / "cond"
    args = ["--view", "conditioned", "--bins", "low:0.3,medium:0.9,high", "--prepend-token"]
    assert _export(src, out, *args) == 0
    card = (out / "README.md").read_text()
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["configs"][0]["data_files"][0]["path"] == "data/*.parquet" and "en" in front["language"]
    assert front["license"] == "other"
    manifest = src / "manifest.json"
    assert hashlib.sha256(manifest.read_bytes()).hexdigest() in card
    assert json.loads(manifest.read_text())["run_id"] in card
    assert "![Toxicity scores of the exported documents](score_histogram.svg)" in card
    assert (out / "score_histogram.svg").read_text().startswith("<svg")
    assert "ceil(characters / 4)" in card and "| medium | en |" in card
    assert "tests/fixtures/crawl/dolma_tests/LICENSE" in card  # provenance of the inputs
    rows = _rows(out)
    for r in rows:
        assert r["text"].startswith(r["control_token"]) and r["toxicity_bin"] in ("low", "medium", "high")
        s = round(r["toxicity_score"], 6)
        assert r["toxicity_bin"] == ("low" if s < 0.3 else "medium" if s < 0.9 else "high")

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    datasets = pytest.importorskip("datasets")
    loaded = datasets.load_dataset("parquet", data_files=str(out / "data" / "*.parquet"), split="train",
                                   cache_dir=str(tmp_path / "hf-cache"))
    assert loaded.num_rows == len(rows) == len(_kept(src))
    assert {"text", "control_token", "toxicity_bin", "toxicity_score"} <= set(loaded.column_names)

    again = tmp_path / "again"
    assert _export(src, again, *args) == 0
    for name in ("README.md", "export.json", "score_histogram.svg", "data/train-00000-of-00001.parquet"):
        assert (out / name).read_bytes() == (again / name).read_bytes(), name


def test_documents_removed_for_toxicity_come_from_removed_when_full(runs: dict[str, Path], tmp_path: Path) -> None:
    """A filter-mode run at 0.5 that stored full removed texts exports, at 0.9, what the annotate run does."""
    assert _export(runs["filter"], tmp_path / "f", "--view", "dapt", "--threshold", "0.9") == 0
    assert _export(runs["annotate"], tmp_path / "a", "--view", "dapt", "--threshold", "0.9") == 0
    key = lambda r: r["doc_id"]  # noqa: E731
    ignore = ("toxicity_score",)  # float32 in kept/, the rounded float64 evidence in removed/
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ignore} for r in sorted(rows, key=key)]  # noqa: E731
    from_filter, from_annotate = _rows(tmp_path / "f"), _rows(tmp_path / "a")
    assert strip(from_filter) == strip(from_annotate)
    assert json.loads((tmp_path / "f" / "export.json").read_text())["from_removed"] > 0


def test_refuses_truncated_texts_and_bad_directories(runs: dict[str, Path], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    truncated = tmp_path / "truncated"
    shutil.copytree(runs["filter"], truncated)
    removed = next((truncated / "removed").glob("*.parquet"))
    table = pq.read_table(removed)
    table = table.set_column(table.schema.get_field_index("text_truncated"), "text_truncated",
                             pc.equal(table.column("stage"), "toxicity"))
    pq.write_table(table, removed)
    out = tmp_path / "out"
    assert _export(truncated, out, "--view", "dapt", "--threshold", "0.9") == 2
    assert "truncated text" in capsys.readouterr().err and not out.exists()  # nothing written
    assert _export(truncated, out, "--view", "dapt", "--threshold", "0.5") == 0  # needs none of them
    assert _export(truncated, out, "--view", "dapt") == 2
    assert "not empty" in capsys.readouterr().err
    (out / "mine.txt").write_text("x")
    assert _export(truncated, out, "--view", "dapt", "--overwrite") == 2
    assert "not a toxsieve export" in capsys.readouterr().err and (out / "mine.txt").exists()
    assert _export(truncated, truncated, "--view", "dapt") == 2
    assert _export(tmp_path, tmp_path / "x", "--view", "dapt") == 2
    assert "no manifest.json" in capsys.readouterr().err
    for bad in ("low", "low:0.5", "low:0.9,high:0.5,x", "low:x,high", "a:0.5,a"):
        assert _export(runs["annotate"], tmp_path / "b", "--view", "conditioned", "--bins", bad) == 2
        assert "--bins" in capsys.readouterr().err


def test_documents_without_a_score_are_counted_not_mixed_in(runs: dict[str, Path], tmp_path: Path) -> None:
    """As for a language the model does not support: the score is null (and metadata may say why)."""
    run = tmp_path / "unsupported"
    shutil.copytree(runs["annotate"], run)
    for path in (run / "kept").glob("*.parquet"):
        table = pq.read_table(path)
        zh = pc.equal(pc.fill_null(table.column("language"), ""), "zh")
        scores = pc.if_else(zh, pa.scalar(None, pa.float32()), table.column("toxicity_score"))
        pq.write_table(table.set_column(table.schema.get_field_index("toxicity_score"), "toxicity_score", scores), path)
    n_zh = sum(r["language"] == "zh" for r in _kept(run))
    assert n_zh
    assert _export(run, tmp_path / "d", "--view", "dapt") == 0
    summary = json.loads((tmp_path / "d" / "export.json").read_text())
    assert summary["excluded"]["no toxicity score (language not supported by the model)"] == n_zh
    assert summary["unscored_by_language"] == {"zh": n_zh}
    assert not [r for r in _rows(tmp_path / "d") if r["language"] == "zh"]
    assert _export(run, tmp_path / "c", "--view", "conditioned") == 0
    unknown = [r for r in _rows(tmp_path / "c") if r["language"] == "zh"]
    assert len(unknown) == n_zh and all(r["control_token"] == "<|toxicity:unknown|>" and r["toxicity_score"] is None
                                        for r in unknown)
    assert _export(run, tmp_path / "e", "--view", "conditioned", "--unknown", "exclude") == 0
    assert len(_rows(tmp_path / "e")) == len(_kept(run)) - n_zh
