"""Balance from the data: a runner that loses elements inside a stage fails the run (the silent class
of bug Beam 2.77's DaskRunner had). The reader counts what it emits per input file and the staging
writer what reaches it: any loss in the per-shard chain of stages shows as staged != read."""

from __future__ import annotations

import json
from pathlib import Path

import apache_beam as beam
import pytest

from tests.conftest import DEMO_CONFIG, run_on_sample
from toxsieve.pipelines.document import Document

pytestmark = pytest.mark.e2e


def _run(out: Path, config: Path) -> int:
    return run_on_sample(out, config, "t")


def test_every_stage_balances_on_the_sample(tmp_path: Path) -> None:
    assert _run(tmp_path / "out", DEMO_CONFIG) == 0
    checks = json.loads((tmp_path / "out" / "stats.json").read_text())["conservation"]["checks"]
    for name in ("ExtractText", "IdentifyLanguage", "DropExactDuplicates", "DropNearDuplicates", "ScoreToxicity"):
        assert checks[f"{name}: in == kept + removed"] is True
    assert checks["staged records == read records"] is True
    assert checks["every input shard materialised"] is True
    # every step of the chain reports the time it spent on its own work
    seconds = json.loads((tmp_path / "out" / "stats.json").read_text())["stage_seconds"]
    for name in ("ExtractText", "IdentifyLanguage", "ApplyWordBlocklists", "ScoreToxicity", "Sketch", "Staging",
                 "Materialise"):
        assert seconds[name] > 0, name


class _LossyBatchElements(beam.PTransform):
    """BatchElements that drops the first document of every batch: a stand-in for a runner that loses
    what a DoFn emits at the end of a bundle. Deterministic whatever sizes the adaptive batching picks
    (a CI machine made every batch a single element, so "drop the last of two or more" lost nothing)."""

    real = beam.BatchElements

    def __init__(self, **kwargs: object) -> None:
        super().__init__()
        self.kwargs = kwargs

    def expand(self, pcoll: beam.PCollection) -> beam.PCollection:
        return (pcoll | "Real" >> self.real(**self.kwargs)
                | "Lose" >> beam.Map(_drop_first_document))


def _drop_first_document(batch: list[object]) -> list[object]:
    for i, element in enumerate(batch):
        if isinstance(element, Document):
            return batch[:i] + batch[i + 1:]
    return batch


def test_a_loss_inside_near_dedup_fails_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(DEMO_CONFIG.read_text() + "\ntoxicity:\n  enabled: false\n")  # only near-dedup batches
    monkeypatch.setattr(beam, "BatchElements", _LossyBatchElements)
    assert _run(tmp_path / "out", config) == 2
    assert "lost or duplicated" in capsys.readouterr().err
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    checks = stats["conservation"]["checks"]
    # what the reader emitted never all reached the staging writer: both identities catch it
    assert checks["staged records == read records"] is False
    assert checks["read == kept + removed + dead_lettered"] is False
    assert stats["read"] != stats["kept"] + stats["removed"] + stats["dead_lettered"]
    assert not (tmp_path / "out" / "manifest.json").exists()
