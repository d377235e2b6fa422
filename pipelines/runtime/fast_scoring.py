"""In-process toxicity scoring (the shipped fastText models): a batched DoFn and the decision, without
importing ``apache_beam.ml`` (and so torch), which only the Hugging Face path (``inference.py``) needs."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.utils import shared

from toxsieve.classifiers.base import score_documents
from toxsieve.pipelines.config import ToxicityConfig, route_of
from toxsieve.pipelines.document import Document
from toxsieve.pipelines.runtime import progress
from toxsieve.pipelines.runtime.transforms import count_removal
from toxsieve.pipelines.stages.toxicity import apply_toxicity, mark_unsupported, toxic_score


def is_hf_model_dir(spec: str | None) -> bool:
    return bool(spec) and Path(str(spec)).is_dir() and (Path(str(spec)) / "config.json").is_file()


def doc_key(doc: Document) -> str:
    """A key unique per input record (doc_ids can repeat across inputs)."""
    return f"{doc.doc_id}\x00{doc.source_path}\x00{doc.source_offset}"


def _count(doc: Document) -> None:
    progress.PROGRESS.add("toxicity_scored")
    if doc.toxicity_flagged:
        Metrics.counter("toxicity", "flagged").inc()
    count_removal(doc)


# --- fast, in-process models -------------------------------------------------------


@dataclass(frozen=True)
class FastScored:
    """A document with the fast model's scores; the decision comes after (a cascade may re-score)."""

    doc: Document
    label_scores: dict[str, float] | None  # None: no model for the document's language
    toxic_labels: tuple[str, ...]
    n_chunks: int
    model: str
    model_sha256: str

    @property
    def score(self) -> float:
        return toxic_score(self.label_scores or {}, self.toxic_labels)


class _FastScoreFn(beam.DoFn):
    """Scores a batch of documents with in-process classifiers (the shipped fastText by default), each
    document with its language's model (``ToxicityConfig.routes``); a document whose language has no
    model comes out with ``label_scores = None``. The fast model in front of a checkpoint is fastText."""

    def __init__(self, cfg: ToxicityConfig) -> None:
        self.cfg = cfg
        self._shared = shared.Shared()
        self._models: dict[str, Any] = {}

    def setup(self) -> None:
        from toxsieve.classifiers.registry import load_classifier

        self._routes = self.cfg.routes()
        self._spec = {lang: model if not is_hf_model_dir(model) else "fasttext"
                      for lang, (model, _) in self._routes.items()}
        self._toxic: dict[str, tuple[str, ...]] = {}
        for spec in sorted(set(self._spec.values())):

            def load(spec: str = spec) -> _Holder:
                classifier = load_classifier(spec)
                ident = classifier.identity()
                return _Holder(classifier, ident.name, ident.sha256)

            holder = self._shared.acquire(load, tag=spec)
            toxic = tuple(self.cfg.toxic_labels) or tuple(holder.classifier.toxic_labels)
            unknown = set(toxic) - set(holder.classifier.labels)
            if unknown:
                raise ValueError(f"toxicity.toxic_labels {sorted(unknown)} are not labels of {spec}")
            self._models[spec] = holder
            self._toxic[spec] = toxic

    def process(self, batch: Sequence[Document]) -> Iterator[FastScored]:
        by_spec: dict[str | None, list[Document]] = {}
        for doc in batch:
            by_spec.setdefault(route_of(self._spec, doc.language), []).append(doc)
        for spec, docs in by_spec.items():
            if spec is None:
                yield from (FastScored(doc, None, (), 0, "", "") for doc in docs)
                continue
            holder = self._models[spec]
            scores = score_documents(holder.classifier, [d.text or "" for d in docs], self.cfg.max_words)
            for doc, result in zip(docs, scores, strict=True):
                yield FastScored(doc, result.label_scores, self._toxic[spec], result.n_chunks, holder.name,
                                 holder.sha256)


class _Holder:
    """A weak-referenceable holder for ``shared.Shared``."""

    def __init__(self, classifier: Any, name: str, sha256: str) -> None:
        self.classifier = classifier
        self.name = name
        self.sha256 = sha256


def _decide_fast(item: FastScored, cfg: ToxicityConfig) -> Document:
    if item.label_scores is None:
        return _mark_unsupported(item.doc)
    out = apply_toxicity(item.doc, item.label_scores, item.toxic_labels, item.model, item.model_sha256,
                         item.n_chunks, cfg)
    _count(out)
    return out


def _mark_unsupported(doc: Document) -> Document:
    Metrics.counter("toxicity", f"unsupported_{doc.language or 'und'}").inc()
    return mark_unsupported(doc)
