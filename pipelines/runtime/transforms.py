"""The per-document Beam shell that is not a declared stage's (those run through
``pipelines/stages/apply.py``): ExtractText's DoFn (run in the signals chain of ``runtime/passes.py``)
and its ``(kept, removed)`` PTransform, the removal counters, the stats keys and the per-stage
balance checks.

A ``(kept, removed)`` pair is split with two single-output ParDos rather than a multi-output ParDo,
because Beam's DaskRunner hands every tagged output to every consumer. (The transforms of the first,
single-pass engine, which grouped whole documents by id, text hash and output shard, are gone: no
document text crosses a shuffle, ``docs/architecture.md``.)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from toxsieve.pipelines.config import (
    ExtractConfig,
    LimitsConfig,
)
from toxsieve.pipelines.document import DeadLetter, Document, stage_failure
from toxsieve.pipelines.io.outputs import Row
from toxsieve.pipelines.runtime import progress
from toxsieve.pipelines.runtime.bounds import ExtractionWorker
from toxsieve.pipelines.stages.extract import extract_document
from toxsieve.pipelines.stages.toxicity import flagged_at
from toxsieve.schemas import Stage

Split = tuple[beam.PCollection, beam.PCollection]


def count_removal(doc: Document) -> None:
    """Beam counter (stage, reason) and a progress count for a removed document; no-op if kept."""
    if doc.removal is not None:
        Metrics.counter(doc.removal.stage.value, doc.removal.reason.value).inc()
        progress.PROGRESS.add(f"removed.{doc.removal.reason.value}")


_LOGGED: set[str] = set()


def log_first_failure(kind: str, message: str, *args: Any) -> None:
    """Log (with the traceback being handled) the first failure of a ``kind`` in this worker process: a
    bug shows in the log, the rest are counted and dead-lettered."""
    if kind not in _LOGGED:
        _LOGGED.add(kind)
        logging.getLogger(__name__).warning(message, *args, exc_info=True)


def dead_letter_failure(stage: str, doc: Document, exc: Exception) -> DeadLetter:
    """A stage raised on ``doc``: log the first such failure, count it and dead-letter the document
    (call it where the exception is handled)."""
    log_first_failure(stage, "stage %s failed on %s@%d; the record is dead-lettered (first of its kind here)",
                      stage, doc.source_path, doc.source_offset)
    Metrics.counter(stage, "failed").inc()
    return stage_failure(stage, doc, exc)


class SplitRemovals(beam.PTransform):
    """(kept, not kept) from a PCollection of Documents, by ``doc.removal``; a DeadLetter a stage
    emitted (it raised on that document) goes with the removed ones."""

    def expand(self, docs: beam.PCollection) -> Split:
        kept = docs | "Kept" >> beam.FlatMap(lambda d: [d] if alive(d) else [])
        removed = docs | "Removed" >> beam.FlatMap(lambda d: [] if alive(d) else [d])
        return kept, removed


def alive(element: Any) -> bool:
    """A Document no stage has removed (not a removed one, a dead letter or a marker)."""
    return isinstance(element, Document) and element.removal is None


class PerDocumentStage(beam.PTransform):
    """A stage that decides each document on its own: ``ParDo(fn(cfg))`` then (kept, removed).

    Subclasses name the step and the DoFn class; the DoFn takes the stage's config section.
    """

    step: str
    fn: type[beam.DoFn]

    def __init__(self, cfg: Any) -> None:
        super().__init__()
        self.cfg = cfg

    def expand(self, docs: beam.PCollection) -> Split:
        return docs | self.step >> beam.ParDo(type(self).fn(self.cfg)) | SplitRemovals()


# --- stages ----------------------------------------------------------------


class _ExtractFn(beam.DoFn):
    def __init__(self, cfg: ExtractConfig, limits: LimitsConfig | None = None) -> None:
        self.cfg = cfg
        self.limits = limits or LimitsConfig()
        self._worker: ExtractionWorker | None = None

    def setup(self) -> None:
        # One time-limited extraction process per DoFn instance, started on the first complex page.
        self._worker = ExtractionWorker(self.limits.extract_timeout_s)

    def process(self, doc: Document) -> Iterator[Document | DeadLetter]:
        try:
            out = extract_document(doc, self.cfg, self.limits, self._worker.extract if self._worker else None)
        except Exception as exc:  # noqa: BLE001 - what the bounds do not name costs this page only
            yield dead_letter_failure(Stage.EXTRACT.value, doc, exc)
            return
        progress.PROGRESS.add("extracted")
        count_removal(out)
        yield out

    def teardown(self) -> None:
        if self._worker is not None:
            self._worker.close()


class ExtractText(PerDocumentStage):
    """HTML → main text, normalisation, text hash, length floor (too_short / empty_text), and the
    per-record bounds of ``limits`` (html_too_complex / extraction_failed / text_too_long)."""

    step, fn = "Extract", _ExtractFn

    def __init__(self, cfg: ExtractConfig, limits: LimitsConfig | None = None) -> None:
        super().__init__(cfg)
        self.limits = limits

    def expand(self, docs: beam.PCollection) -> Split:
        return docs | self.step >> beam.ParDo(_ExtractFn(self.cfg, self.limits)) | SplitRemovals()


# --- stats -----------------------------------------------------------------


def funnel_keys(meta: Row, fast_threshold: Callable[[str | None], float] | None = None) -> Iterator[str]:
    """Stats keys for one metadata row. ``fast_threshold(language)`` is the fast model's threshold
    (``ToxicityConfig.threshold_for``): a cascade counts agreement at it, not at the second model's."""
    yield "documents"
    yield f"decision/{meta['decision']}"
    if meta["stage"]:
        yield f"removed/{meta['stage']}/{meta['reason']}"
    lang = meta["language"] or "und"
    yield f"language/{meta['decision']}/{lang}"
    yield f"format/{meta['source_format']}"
    if meta.get("toxicity_supported") is False:
        yield f"toxicity/unsupported/{lang}"
    if meta.get("toxicity_model"):
        yield "toxicity/scored"
        yield f"toxicity/scored_language/{lang}"
        yield f"toxicity/model/{meta['toxicity_model']}"
        if meta.get("toxicity_flagged"):
            yield "toxicity/flagged"
        if meta.get("toxicity_fast_score") is not None:
            yield "toxicity/cascade/sent"
            threshold = fast_threshold(meta["language"]) if fast_threshold else meta["toxicity_threshold"]
            fast_flag = flagged_at(meta["toxicity_fast_score"], threshold)
            if fast_flag == bool(meta.get("toxicity_flagged")):
                yield "toxicity/cascade/agree"


STAGE_KEY = "stage"  # _counts.json keys stage/<Stage>/in|kept|removed|inner/<what>


def inner_tally(pcoll: beam.PCollection, stage: str, what: str, label: str) -> beam.PCollection:
    """(key, n) per batch inside a stage: ``stage/<Stage>/inner/<what>`` must equal the stage's input.
    Counted from what reached that step (a batch's length), so a runner that loses elements between
    the stage's input and that step fails the run."""
    key = f"{STAGE_KEY}/{stage}/inner/{what}"
    return pcoll | label >> beam.Map(lambda batch: (key, len(batch)))


def stage_balance_checks(counts: dict[str, int]) -> dict[str, bool]:
    """Per stage, from the data: in == kept + removed, and every inner count == in."""
    checks: dict[str, bool] = {}
    names = sorted({k.split("/")[1] for k in counts if k.startswith(STAGE_KEY + "/")})
    for name in names:
        n_in = counts.get(f"{STAGE_KEY}/{name}/in", 0)
        kept, removed = counts.get(f"{STAGE_KEY}/{name}/kept", 0), counts.get(f"{STAGE_KEY}/{name}/removed", 0)
        checks[f"{name}: in == kept + removed"] = n_in == kept + removed
        for key in sorted(k for k in counts if k.startswith(f"{STAGE_KEY}/{name}/inner/")):
            checks[f"{name}: {key.rsplit('/', 1)[1]} == in"] = counts[key] == n_in
    return checks


def _write_json(path: str, obj: dict[str, Any]) -> str:
    with FileSystems.create(path) as fh:
        fh.write(json.dumps(obj, indent=1, sort_keys=True).encode())
    return path
