"""`toxsieve rethreshold` gives what a re-run at the new threshold gives, without running a model."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import DEMO_CONFIG, run_on_sample
from toxsieve.pipelines.cli.main import main

pytestmark = pytest.mark.e2e


def _run(out: Path, config: Path) -> None:
    assert run_on_sample(out, config) == 0


def _config(tmp: Path, name: str, toxicity: str) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(DEMO_CONFIG.read_text() + "toxicity:\n" + toxicity)
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("rethreshold")
    annotate, filtered = tmp / "annotate", tmp / "filter"
    _run(annotate, DEMO_CONFIG)  # the default: annotate at 0.9
    _run(filtered, _config(tmp, "filter", "  mode: filter\n  threshold: 0.95\n  threshold_per_language: {zh: 0.5}\n"))
    return {"annotate": annotate, "filter": filtered, "tmp": tmp}


def _table(out: Path, name: str) -> list[dict]:
    return sorted(pq.read_table(out / name).to_pylist(), key=lambda r: (r["doc_id"], r["source_path"], r["source_offset"]))


def test_rethreshold_equals_a_rerun_in_filter_mode(runs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    new = runs["tmp"] / "new"
    assert main(["rethreshold", str(runs["annotate"]), "--output", str(new), "--threshold", "0.95",
                 "--threshold-per-language", "zh=0.5", "--run-id", "filter"]) == 0
    assert "without running a model" in capsys.readouterr().out
    rerun = runs["filter"]
    assert _table(new, "kept") == _table(rerun, "kept")
    assert _table(new, "metadata") == _table(rerun, "metadata")
    ignore = {"detail", "run_id"}  # the audit line names the source run and says no model ran
    strip = [{k: v for k, v in r.items() if k not in ignore} for r in _table(new, "removed")]
    assert strip == [{k: v for k, v in r.items() if k not in ignore} for r in _table(rerun, "removed")]
    removed = [r for r in _table(new, "removed") if r["stage"] == "toxicity"]
    assert removed and all("no model run" in r["detail"] for r in removed)
    stats_new, stats_rerun = (json.loads((d / "stats.json").read_text()) for d in (new, rerun))
    for key in ("read", "kept", "removed", "dead_lettered", "removed_by_stage", "languages", "funnel"):
        assert stats_new[key] == stats_rerun[key], key
    assert stats_new["conservation"]["ok"] and stats_new["rethreshold"]["newly_removed"] == len(removed)
    manifest = json.loads((new / "manifest.json").read_text())
    assert manifest["derived_from"]["run_id"] == "annotate" and manifest["derived_from"]["models_run"] is False
    assert manifest["config"]["toxicity"]["threshold"] == 0.95 and manifest["config"]["toxicity"]["mode"] == "filter"


def test_a_filtered_run_cannot_restore_what_it_removed(runs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = runs["tmp"] / "looser"
    assert main(["rethreshold", str(runs["filter"]), "--output", str(out), "--threshold", "0.999",
                 "--threshold-per-language", "zh=0.999"]) == 2
    assert "would be kept at the new threshold" in capsys.readouterr().err and not out.exists()
    stricter = runs["tmp"] / "stricter"  # removing more from a filtered run is fine
    assert main(["rethreshold", str(runs["filter"]), "--output", str(stricter), "--threshold", "0.5"]) == 0
    kept_before = {r["doc_id"] for r in _table(runs["filter"], "kept")}
    kept_after = {r["doc_id"] for r in _table(stricter, "kept")}
    assert kept_after < kept_before


@pytest.mark.parametrize(("extra", "message"), [
    (["--threshold-per-language", "de"], "LANG=VALUE"),
    (["--threshold", "1.5"], "toxicity.threshold"),
])
def test_bad_arguments(runs: dict[str, Path], extra: list[str], message: str,
                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rethreshold", str(runs["annotate"]), "--output", str(runs["tmp"] / "bad"), *extra]) == 2
    assert message in capsys.readouterr().err
    assert main(["rethreshold", str(runs["annotate"]), "--output", str(runs["annotate"])]) == 2


def test_remote_paths_are_refused_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rethreshold", "gs://bucket/run", "--output", str(tmp_path / "x")]) == 2
    assert "local directories only" in capsys.readouterr().err


def test_an_output_held_by_another_run_is_refused(runs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    from toxsieve.pipelines.runtime.lock import output_lock

    held = runs["tmp"] / "held"
    with output_lock(str(held), "other-run"):  # issue #10: one run per output directory
        assert main(["rethreshold", str(runs["annotate"]), "--output", str(held), "--threshold", "0.95"]) == 2
        assert "in use by toxsieve run other-run" in capsys.readouterr().err
        assert sorted(p.name for p in held.iterdir()) == ["_toxsieve.lock"]
