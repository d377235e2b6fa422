"""A multilingual run (issue 14): per-language toxicity models where shipped, `toxicity_supported = false`
elsewhere, never removed for toxicity, counted per language in stats.json and the summary."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from toxsieve.classifiers.registry import load_classifier
from toxsieve.pipelines.cli.main import main
from toxsieve.pipelines.config import ToxicityConfig, route_of

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "multilingual" / "docs.jsonl.gz"
CONFIG = """
extract: {min_chars: 20}
blocklists:
  words: {mode: annotate}
near_dedup: {enabled: false}
toxicity: {mode: filter, threshold: 0.9}
# social-media-length texts: the web-page quality rules (issue 13) would remove most before toxicity
quality: {length: {enabled: false}, gopher_quality: {enabled: false}}
"""


@pytest.fixture(scope="module")
def multilingual_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    tmp = tmp_path_factory.mktemp("multilingual")
    (tmp / "cfg.yaml").write_text(CONFIG)
    out = tmp / "out"
    capture = pytest.MonkeyPatch()
    import io
    import sys

    buf = io.StringIO()
    capture.setattr(sys, "stdout", buf)
    try:
        assert main(["run", "--input", str(FIXTURE), "--output", str(out), "--config", str(tmp / "cfg.yaml"),
                     "--quiet", "--run-id", "ml"]) == 0
    finally:
        capture.undo()
    return out, buf.getvalue()


def _gold() -> dict[str, dict]:
    import gzip

    with gzip.open(FIXTURE, "rt", encoding="utf-8") as fh:
        return {d["id"]: d for d in map(json.loads, fh)}


def test_each_language_is_scored_by_its_own_model_or_marked_unsupported(multilingual_run: tuple[Path, str]) -> None:
    out, _ = multilingual_run
    gold = _gold()
    meta = {m["doc_id"]: m for m in pq.read_table(out / "metadata").to_pylist()}
    assert meta.keys() == gold.keys()
    routes = ToxicityConfig().routes()
    names = {model: load_classifier(model).identity().name for model, _ in routes.values()}
    by_model: Counter[str] = Counter()
    for doc_id, m in meta.items():
        assert m["language"] == gold[doc_id]["lang"], doc_id  # LID agrees with the fixture
        route = route_of(routes, m["language"])
        if route is None:
            assert m["toxicity_supported"] is False and m["toxicity_score"] is None and m["toxicity_model"] is None
            assert m["decision"] == "kept"  # never removed for toxicity, even in filter mode
        else:
            assert m["toxicity_supported"] is True and m["toxicity_model"] == names[route[0]]
            assert (m["stage"] == "toxicity") == (m["toxicity_score"] >= 0.9)
            by_model[m["toxicity_model"]] += 1
    assert len(by_model) >= 2, "at least one per-language model besides English ran"
    assert {"es", "sw"} <= {m["language"] for m in meta.values() if m["toxicity_supported"] is False}


def test_per_language_models_rank_toxic_documents_above_clean_ones(multilingual_run: tuple[Path, str]) -> None:
    out, _ = multilingual_run
    gold = _gold()
    scored = [m for m in pq.read_table(out / "metadata").to_pylist()
              if m["toxicity_score"] is not None and m["language"] != "en"]
    toxic = [m["toxicity_score"] for m in scored if gold[m["doc_id"]]["label"] == 1]
    clean = [m["toxicity_score"] for m in scored if gold[m["doc_id"]]["label"] == 0]
    assert toxic and clean and sum(toxic) / len(toxic) > sum(clean) / len(clean) + 0.2


def test_stats_and_summary_count_unsupported_languages(multilingual_run: tuple[Path, str]) -> None:
    out, summary = multilingual_run
    stats = json.loads((out / "stats.json").read_text())
    meta = pq.read_table(out / "metadata").to_pylist()
    unsupported = Counter(m["language"] for m in meta if m["toxicity_supported"] is False)
    tox = stats["toxicity"]
    assert tox["unsupported_by_language"] == dict(unsupported) and tox["unsupported"] == sum(unsupported.values())
    assert tox["scored"] == sum(tox["by_language"].values()) == sum(1 for m in meta if m["toxicity_supported"])
    ranked = sorted(unsupported.items(), key=lambda kv: (-kv[1], kv[0]))
    assert (f"{sum(unsupported.values())} in languages without a model (no score, never removed): "
            + ", ".join(f"{k} {v}" for k, v in ranked)) in summary
    assert stats["conservation"]["ok"]
    manifest = json.loads((out / "manifest.json").read_text())
    langs = {m["name"]: m["languages"] for m in manifest["models"] if m["role"] == "toxicity"}
    assert langs["toxsieve-fasttext-toxicity-v1"] == ["de", "en"]  # the English model also read German best
    assert langs["toxsieve-fasttext-toxicity-zh-v1"] == ["zh"] and "toxsieve-fasttext-toxicity-ar-v1" not in langs


def test_rethreshold_and_audit_leave_unsupported_languages_alone(multilingual_run: tuple[Path, str],
                                                                 tmp_path: Path) -> None:
    out, _ = multilingual_run
    new = tmp_path / "strict"
    assert main(["rethreshold", str(out), "--output", str(new), "--threshold", "0.0", "--mode", "filter"]) == 0
    meta = pq.read_table(new / "metadata").to_pylist()
    supported = [m for m in meta if m["toxicity_supported"]]
    unsupported = [m for m in meta if m["toxicity_supported"] is False]
    assert supported and all(m["decision"] == "removed" and m["stage"] == "toxicity" for m in supported)
    assert unsupported and all(m["decision"] == "kept" and m["toxicity_score"] is None for m in unsupported)
    stats = json.loads((new / "stats.json").read_text())
    assert stats["toxicity"]["unsupported"] == len(unsupported) and stats["conservation"]["ok"]
    assert stats["kept"] == len(unsupported)

    from toxsieve.pipelines.cli.audit import load_report, report_json

    report = report_json(load_report(out))
    assert report["toxicity"]["unsupported_by_language"] == dict(sorted(
        Counter(m["language"] for m in unsupported).items()))
    assert report["toxicity"]["scored"] == len(supported)


def test_evaluate_routes_each_record_to_its_languages_model(capsys: pytest.CaptureFixture[str]) -> None:
    gold = _gold()
    assert main(["evaluate", "--input", str(FIXTURE), "--label-field", "label", "--group-field", "lang",
                 "--route-field", "lang", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    routes = ToxicityConfig().routes()
    langs = Counter(d["lang"] for d in gold.values())
    assert report["unsupported_by_group"] == {k: v for k, v in langs.items() if route_of(routes, k) is None}
    assert report["models_by_group"]["zh"] == ["toxsieve-fasttext-toxicity-zh-v1"]
    assert report["models_by_group"]["de"] == ["toxsieve-fasttext-toxicity-v1"]
    assert report["metrics"]["all"]["n"] == sum(v for k, v in langs.items() if route_of(routes, k))
    assert main(["evaluate", "--input", str(FIXTURE), "--label-field", "label", "--route-field", "lang",
                 "--model", "fasttext"]) == 2
