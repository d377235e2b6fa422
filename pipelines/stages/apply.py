"""Running a declared stage: the pure ``run_stage`` and the one generic Beam step for all of them.

Per document: ``score`` → signals (checked against the declared columns) → ``decide`` → in filter
mode a ``Removal``, in annotate mode only the ``<stage>_flag`` column; a kept document may be
rewritten (line cleaning). The Beam step is a ParDo and the two single-output FlatMaps of
``SplitRemovals``: fused with its neighbours, no shuffle, no side input.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.utils import shared

from toxsieve.pipelines.document import DeadLetter, Document
from toxsieve.pipelines.runtime import progress
from toxsieve.pipelines.runtime.transforms import Split, SplitRemovals, count_removal, dead_letter_failure
from toxsieve.pipelines.stages import BY_NAME, STAGES, DeclaredStage
from toxsieve.pipelines.stages.extract import text_hash


def check_signals(stage: DeclaredStage, signals: dict[str, Any]) -> None:
    """``score`` must return exactly the declared signals, each of its declared type (or null)."""
    declared = stage.signal_checks
    if signals.keys() != declared.keys():
        raise TypeError(f"stage {stage.name}: score() returned {sorted(signals)}, declared {sorted(declared)}")
    for name, value in signals.items():
        sig, types, numeric = declared[name]
        if value is None:
            if not sig.nullable:
                raise TypeError(f"stage {stage.name}: signal {name} is null but declared non-nullable")
            continue
        if not isinstance(value, types) or (numeric and isinstance(value, bool)):
            raise TypeError(f"stage {stage.name}: signal {name}={value!r} is not {sig.type}")


def run_stage(stage: DeclaredStage, doc: Document, cfg: Any, loaded: Any = None) -> Document:
    """One declared stage on one document (pure); ``loaded`` is what the stage's ``load`` returned."""
    signals = stage.measure_signals(doc, cfg, loaded)
    check_signals(stage, signals)
    removal = stage.decide(stage.decision_inputs(signals, doc.language), cfg)
    fields = {stage.column(k): v for k, v in signals.items() if k in stage.field_signals}
    columns = tuple((stage.column(k), v) for k, v in signals.items() if k not in stage.field_signals)
    columns += ((stage.flag_column, removal.reason.value if removal else None),)
    doc = dataclasses.replace(doc, signals=doc.signals + columns, **fields)
    if removal is None or cfg.mode == "annotate":
        if cfg.mode == "filter" and stage.rewrite is not None:
            text = stage.rewrite(doc, cfg)
            if text != doc.text:
                doc = dataclasses.replace(doc, text=text, text_hash=text_hash(text) if text else None)
        return doc
    return doc.removed(removal)


class _Loaded:
    """What a stage's ``load`` returned, in a weak-referenceable box (``shared.Shared`` needs one)."""

    def __init__(self, value: Any) -> None:
        self.value = value


class _DeclaredStageFn(beam.DoFn):
    def __init__(self, name: str, cfg: Any) -> None:
        self.name = name
        self.cfg = cfg
        self._shared = shared.Shared()  # a stage's loaded resources: once per worker process

    def setup(self) -> None:
        self._stage = BY_NAME[self.name]
        self._flagged: dict[str, Any] = {}
        self._loaded: Any = None
        load, cfg = self._stage.load, self.cfg
        if load is not None:
            # the box is held here: Shared keeps only a weak reference, shared while any thread holds it
            self._box = self._shared.acquire(lambda: _Loaded(load(cfg)))
            self._loaded = self._box.value

    def process(self, doc: Document) -> Iterator[Document | DeadLetter]:
        try:
            out = run_stage(self._stage, doc, self.cfg, self._loaded)
        except Exception as exc:  # noqa: BLE001 - a document a stage cannot handle costs that document only
            yield dead_letter_failure(self.name, doc, exc)
            return
        flag = out.signals[-1][1]
        if flag is not None and out.removal is None:  # annotate mode: what it would have removed
            counter = self._flagged.get(flag)
            if counter is None:
                counter = self._flagged[flag] = Metrics.counter(self.name, f"flagged.{flag}")
            counter.inc()
        progress.PROGRESS.add(f"{self.name}_checked")
        count_removal(out)
        yield out


class ApplyDeclaredStage(beam.PTransform):
    """Any declared stage: ``ParDo(score, decide)`` then (kept, removed). Each stage gets a subclass
    named after its declared ``transform`` (labels in the pipeline graph are class names)."""

    stage_name: str

    def __init__(self, cfg: Any) -> None:
        super().__init__()
        self.cfg = cfg

    def expand(self, docs: beam.PCollection) -> Split:
        return docs | "Decide" >> beam.ParDo(_DeclaredStageFn(self.stage_name, self.cfg)) | SplitRemovals()


TRANSFORMS: dict[str, type[ApplyDeclaredStage]] = {}
for _stage in STAGES:
    TRANSFORMS[_stage.name] = globals()[_stage.transform] = type(
        _stage.transform, (ApplyDeclaredStage,), {"stage_name": _stage.name, "__module__": __name__,
                                                   "__doc__": _stage.doc.split("\n", 1)[0]})
