"""The one interface every toxicity model implements, and long-document scoring on top of it.

A classifier takes a batch of texts and returns per-label probabilities; ``toxic_labels`` say
which labels count as toxic. A document's ``toxicity_score`` is the maximum toxic-label
probability over its chunks (documents longer than a model's window are split, scored, and
aggregated; the aggregation is recorded in the metadata).
"""

from __future__ import annotations

import functools
import hashlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class ModelIdentity:
    name: str  # e.g. "toxsieve-fasttext-toxicity-v1" or a checkpoint directory name
    path: str
    sha256: str  # of the weights file, or of the sorted per-file digests of a model directory


def sha256_path(path: str | Path) -> str:
    """sha256 of a file, or of a directory's files (name + digest, sorted) for model directories.

    A file's digest is remembered for its (path, size, mtime, inode), so the driver's checks and the
    stages built after them hash a multi-GB checkpoint once, and a changed file is hashed again. As
    in git's "racy" rule, a file modified in the last seconds is always re-hashed: a rewrite within
    one timestamp tick would keep its mtime."""
    p = Path(path)
    if p.is_file():
        st = p.stat()
        if time.time_ns() - st.st_mtime_ns < _RACY_NS:
            return _sha256_file.__wrapped__(str(p), 0, 0, 0)
        return _sha256_file(str(p.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
    combined = hashlib.sha256()
    for child in sorted(q for q in p.rglob("*") if q.is_file()):
        combined.update(f"{child.relative_to(p)}:{sha256_path(child)}\n".encode())
    return combined.hexdigest()


_RACY_NS = 3_000_000_000


@functools.lru_cache(maxsize=256)
def _sha256_file(path: str, size: int, mtime_ns: int, inode: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@runtime_checkable
class TextClassifier(Protocol):
    """A batch of texts in, an (n, len(labels)) array of probabilities out."""

    labels: tuple[str, ...]
    toxic_labels: tuple[str, ...]

    def predict(self, texts: Sequence[str]) -> np.ndarray: ...

    def identity(self) -> ModelIdentity: ...


@dataclass(frozen=True)
class DocumentScores:
    toxicity_score: float  # max over chunks of the max toxic-label probability
    label_scores: dict[str, float]  # per label, max over chunks
    n_chunks: int


_PARAGRAPH = re.compile(r"\n\s*\n")
DEFAULT_CHUNK_WORDS = 64  # the fastText model's window (its card: 64 words was the best trade-off)


def chunk_text(text: str, max_words: int) -> list[str]:
    """Split a document into chunks of at most ``max_words`` words, on paragraph boundaries where
    possible; a paragraph longer than the window is cut by words. Empty text gives one empty chunk."""
    chunks: list[str] = []
    current: list[str] = []
    for paragraph in _PARAGRAPH.split(text):
        words = paragraph.split()
        while len(words) > max_words:
            if current:
                chunks.append(" ".join(current))
                current = []
            chunks.append(" ".join(words[:max_words]))
            words = words[max_words:]
        if len(current) + len(words) > max_words and current:
            chunks.append(" ".join(current))
            current = []
        current.extend(words)
    if current or not chunks:
        chunks.append(" ".join(current))
    return chunks


def score_documents(classifier: TextClassifier, texts: Sequence[str], max_words: int | None) -> list[DocumentScores]:
    """Chunk, score every chunk in one batch, aggregate per document with max.

    ``max_words=None`` chunks as the pipeline does for this kind of model: a transformer by its own
    token window (``score_chunked``), any other model by 64-word chunks."""
    if _by_token_window(classifier, max_words):
        probs, counts = classifier.score_chunked(texts)  # type: ignore[attr-defined]
        return [_aggregate(classifier, probs[i:i + 1], n) for i, n in enumerate(counts)]
    words = max_words or DEFAULT_CHUNK_WORDS
    spans: list[tuple[int, int]] = []
    flat: list[str] = []
    prepare = getattr(classifier, "prepare_for_chunking", None)  # e.g. CJK characters as words
    for text in texts:
        chunks = chunk_text(prepare(text) if prepare else text, words)
        spans.append((len(flat), len(flat) + len(chunks)))
        flat.extend(chunks)
    probs = classifier.predict(flat) if flat else np.zeros((0, len(classifier.labels)), dtype=np.float32)
    return [_aggregate(classifier, probs[start:end], end - start) for start, end in spans]


def _aggregate(classifier: TextClassifier, block: np.ndarray, n_chunks: int) -> DocumentScores:
    """Max per label over a document's chunk rows (``block``), and the max over the toxic labels."""
    toxic_idx = [classifier.labels.index(label) for label in classifier.toxic_labels]
    per_label = block.max(axis=0)
    toxic = float(per_label[toxic_idx].max()) if toxic_idx else 0.0
    return DocumentScores(toxic, {label: float(v) for label, v in zip(classifier.labels, per_label, strict=True)},
                          n_chunks)


def _by_token_window(classifier: TextClassifier, max_words: int | None) -> bool:
    """No word count asked for, and a model (a transformer) that chunks by its own token window."""
    return max_words is None and hasattr(classifier, "score_chunked")


def chunking_description(classifier: TextClassifier, max_words: int | None) -> str:
    if _by_token_window(classifier, max_words):
        return f"windows of at most {classifier.max_length} tokens, max over windows"  # type: ignore[attr-defined]
    return f"chunks of at most {max_words or DEFAULT_CHUNK_WORDS} words, max over chunks"
