"""The records that flow between stages: a typed document, a removal with its evidence, a dead letter."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from typing import Any

from toxsieve.schemas import Reason, Stage


@dataclass(frozen=True, slots=True)
class Removal:
    """Why a stage removed a document, with the evidence an auditor needs."""

    stage: Stage
    reason: Reason
    score: float | None = None  # the measured value
    threshold: float | None = None  # the bound it failed
    duplicate_of: str | None = None
    matched: tuple[str, ...] = ()
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Document:
    """One crawl record on its way through the pipeline. Stages return updated copies."""

    doc_id: str
    source_path: str
    source_offset: int
    source_format: str
    url: str | None = None
    crawl_date: str | None = None
    http_status: int | None = None
    content_type: str | None = None
    n_bytes_raw: int = 0
    html: bytes | None = None  # raw HTML awaiting ExtractText (WARC only)
    text: str | None = None  # normalised text once ExtractText ran
    text_hash: str | None = None
    language: str | None = None
    language_score: float | None = None
    # DropNearDuplicates signals (issue #4)
    near_dup_cluster: str | None = None  # cluster id = the keeper's doc_id
    near_dup_cluster_size: int | None = None
    near_dup_similarity: float | None = None  # estimated Jaccard with the keeper
    # ScoreToxicity signals (issue #6)
    toxicity_score: float | None = None  # the score the decision used (max over chunks and toxic labels)
    toxicity_label_scores: tuple[tuple[str, float], ...] = ()  # per label, max over chunks
    toxicity_model: str | None = None  # the model that produced toxicity_score
    toxicity_model_sha256: str | None = None
    toxicity_fast_score: float | None = None  # the fast model's score when a cascade re-scored
    toxicity_threshold: float | None = None
    toxicity_n_chunks: int | None = None
    toxicity_flagged: bool | None = None  # score >= threshold (removed in filter mode)
    toxicity_supported: bool | None = None  # False: no model for the document's language (issue 14)
    input_doc_id: str | None = None  # the id the input gave, when another document had it first (doc_ids.py)
    # Declared stages (pipelines/stages/): (metadata column, value) pairs, checked against each
    # stage's declared column types when scored (pipelines/stages/apply.py::check_signals)
    signals: tuple[tuple[str, Any], ...] = ()
    removal: Removal | None = None

    @property
    def kept(self) -> bool:
        return self.removal is None

    def removed(self, removal: Removal) -> Document:
        return replace(self, removal=removal, html=None)

    def sort_key(self) -> tuple[str, str, int]:
        """Total order used wherever one document must be preferred over another."""
        return (self.doc_id, self.source_path, self.source_offset)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Input that could not be read or decoded, with where it was and what went wrong."""

    source_path: str
    source_offset: int
    source_format: str
    error_type: str
    error: str
    record_excerpt: str | None = None


_SURROGATES = re.compile("[\ud800-\udfff]")


def clean_str(value: str | None) -> str | None:
    """Lone UTF-16 surrogates (e.g. from a JSON "\\ud800" escape) cannot be encoded as UTF-8: Beam's
    coders and Parquet would both fail on them, so they become U+FFFD at the reader."""
    if value is None or value.isascii():
        return value
    return _SURROGATES.sub("\ufffd", value)


def excerpt(data: bytes | str, limit: int = 200) -> str:
    """A short, printable, escaped excerpt of a bad record for the dead-letter output."""
    if isinstance(data, bytes):
        return repr(data[:limit])[2:-1]
    return repr(data[:limit])[1:-1]


def stage_failure(stage: str, doc: Document, exc: Exception) -> DeadLetter:
    """The dead letter of a document a stage raised on: where it came from, the stage and the error."""
    message = f"stage {stage} raised {type(exc).__name__}: {exc}"
    return DeadLetter(doc.source_path, doc.source_offset, doc.source_format, "StageError", message[:2000],
                      excerpt(doc.text if doc.text is not None else doc.url or ""))


def _fast_reduce(self: Any) -> tuple[Any, tuple[Any, ...]]:
    # Beam pickles these between stages; the dataclass default for frozen slots classes walks
    # dataclasses.fields() per object. A positional tuple is ~20 % cheaper per document.
    return (type(self), tuple(getattr(self, name) for name in type(self)._field_names))  # type: ignore[attr-defined]


for _cls in (Removal, Document, DeadLetter):
    _cls._field_names = tuple(f.name for f in fields(_cls))  # type: ignore[attr-defined]
    _cls.__reduce__ = _fast_reduce  # type: ignore[assignment,method-assign]
