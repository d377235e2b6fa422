"""Rows for each output and the Parquet shard writer. Pure: no Beam."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from toxsieve.pipelines.config import OutputConfig
from toxsieve.pipelines.document import DeadLetter, Document
from toxsieve.pipelines.stages import signal_columns
from toxsieve.schemas import Decision

Row = dict[str, Any]


def curated_row(doc: Document) -> Row:
    text = doc.text or ""
    return {
        "doc_id": doc.doc_id, "text": text, "url": doc.url, "crawl_date": doc.crawl_date,
        "language": doc.language, "language_score": doc.language_score,
        "text_hash": doc.text_hash or "", "n_chars": len(text),
        "toxicity_score": doc.toxicity_score, "toxicity_label_scores": _label_scores(doc),
        "n_tokens": dict(doc.signals).get("length_tokens"),
        "source_path": doc.source_path, "source_offset": doc.source_offset, "source_format": doc.source_format,
    }


def metadata_row(doc: Document) -> Row:
    removal = doc.removal
    return {
        "doc_id": doc.doc_id, "url": doc.url, "crawl_date": doc.crawl_date,
        "source_path": doc.source_path, "source_offset": doc.source_offset, "source_format": doc.source_format,
        "http_status": doc.http_status, "content_type": doc.content_type, "n_bytes_raw": doc.n_bytes_raw,
        "n_chars": len(doc.text) if doc.text is not None else None, "text_hash": doc.text_hash,
        "language": doc.language, "language_score": doc.language_score,
        "near_dup_cluster": doc.near_dup_cluster, "near_dup_cluster_size": doc.near_dup_cluster_size,
        "near_dup_similarity": doc.near_dup_similarity,
        "toxicity_score": doc.toxicity_score, "toxicity_label_scores": _label_scores(doc),
        "toxicity_model": doc.toxicity_model, "toxicity_model_sha256": doc.toxicity_model_sha256,
        "toxicity_fast_score": doc.toxicity_fast_score, "toxicity_threshold": doc.toxicity_threshold,
        "toxicity_n_chunks": doc.toxicity_n_chunks, "toxicity_flagged": doc.toxicity_flagged,
        "toxicity_supported": doc.toxicity_supported,
        "input_doc_id": doc.input_doc_id,
        **signal_columns(doc),
        "decision": (Decision.REMOVED if removal else Decision.KEPT).value,
        "stage": removal.stage.value if removal else None,
        "reason": removal.reason.value if removal else None,
        "duplicate_of": removal.duplicate_of if removal else None,
    }


def _label_scores(doc: Document) -> list[dict[str, Any]] | None:
    if not doc.toxicity_label_scores:
        return None
    return [{"label": label, "score": score} for label, score in doc.toxicity_label_scores]


def audit_row(doc: Document, run_id: str, cfg: OutputConfig) -> Row:
    removal = doc.removal
    if removal is None:
        raise ValueError(f"document {doc.doc_id} was not removed")
    text, truncated = audit_text(doc.text, cfg)
    return {
        "doc_id": doc.doc_id, "run_id": run_id, "stage": removal.stage.value, "reason": removal.reason.value,
        "url": doc.url,
        "source_path": doc.source_path, "source_offset": doc.source_offset, "source_format": doc.source_format,
        "score": removal.score, "threshold": removal.threshold, "duplicate_of": removal.duplicate_of,
        "matched": list(removal.matched) or None, "detail": removal.detail,
        "language": doc.language, "language_score": doc.language_score,
        "n_chars": len(doc.text) if doc.text is not None else None,
        "text": text, "text_truncated": truncated,
    }


def audit_text(text: str | None, cfg: OutputConfig) -> tuple[str | None, bool]:
    if text is None or cfg.removed_text == "none":
        return None, False
    if cfg.removed_text == "truncated" and len(text) > cfg.removed_text_chars:
        return text[: cfg.removed_text_chars], True
    return text, False


def dead_letter_row(dead: DeadLetter, run_id: str) -> Row:
    return {
        "run_id": run_id, "source_path": dead.source_path, "source_offset": dead.source_offset,
        "source_format": dead.source_format, "error_type": dead.error_type, "error": dead.error,
        "record_excerpt": dead.record_excerpt,
    }


def row_sort_key(row: Row) -> tuple[str, str, int, str]:
    """Total order of rows inside a shard, so file contents never depend on arrival order."""
    return (row.get("doc_id") or "", row["source_path"], row["source_offset"], row.get("error") or "")


def row_size(row: Row) -> int:
    """Rough uncompressed size of a row, for shard sizing."""
    text = row.get("text")
    return 200 + (len(text) if isinstance(text, str) else 0)


def write_parquet_shards(
    rows: Iterable[Row],
    schema: pa.Schema,
    make_path: Callable[[int], str],
    open_for_write: Callable[[str], IO[bytes]],
    rename: Callable[[str, str], None],
    cfg: OutputConfig,
) -> list[tuple[str, int]]:
    """Write sorted rows into one or more Parquet files of at most ~1.25× the target size.

    Files are written under a temporary name and renamed when complete, so a reader never
    sees a half-written file and a retried bundle overwrites its own output.
    Returns (final path, rows) per file.
    """
    ordered = sorted(rows, key=row_sort_key)
    limit = int(cfg.shard_target_bytes * 1.25)
    compression = None if cfg.compression == "none" else cfg.compression
    written: list[tuple[str, int]] = []
    start = 0
    seq = 0
    while start < len(ordered) or (seq == 0 and not ordered):
        end, size = start, 0
        while end < len(ordered) and (end == start or size + row_size(ordered[end]) <= limit):
            size += row_size(ordered[end])
            end += 1
        final = make_path(seq)
        tmp = _tmp_name(final)
        table = pa.Table.from_pylist(ordered[start:end], schema=schema)
        with open_for_write(tmp) as sink:
            pq.write_table(table, sink, compression=compression, row_group_size=cfg.row_group_rows)
        rename(tmp, final)
        written.append((final, end - start))
        start, seq = end, seq + 1
        if not ordered:
            break
    return written


def _tmp_name(final: str) -> str:
    head, tail = final.rsplit("/", 1) if "/" in final else ("", final)
    name = f".tmp-{uuid.uuid4().hex[:12]}-{tail}"
    return f"{head}/{name}" if head else name


def local_open_for_write(path: str) -> IO[bytes]:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    return open(path, "wb")
