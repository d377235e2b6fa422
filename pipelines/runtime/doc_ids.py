"""One doc_id per document per run, by a deterministic rule.

Input ids (WARC-Record-ID, a JSONL/Parquet id field) are not unique in practice: a shard read
twice under two names, a crawl that re-uses record ids, a dataset whose ids restart per file.
Rule: among the documents of a run that share an id, the first in source order — the smallest
``(source_path, source_offset)`` — keeps it; every other one becomes
``<id>#dup-<xxh3-64 of (source_path, source_offset)>`` and records the id it came with in
``input_doc_id`` (metadata/). The rule reads only the group's own records, so it is the same on
any runner and worker count.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace

import xxhash

from toxsieve.pipelines.document import DeadLetter, Document

DUPLICATE_ID_SEPARATOR = "#dup-"


def renamed_id(doc_id: str, source_path: str, source_offset: int) -> str:
    position = xxhash.xxh3_64_hexdigest(f"{source_path}\x00{source_offset}".encode("utf-8", "surrogatepass"))
    return f"{doc_id}{DUPLICATE_ID_SEPARATOR}{position}"


def id_key(record: Document | DeadLetter) -> str:
    """The shuffle key: the doc_id of a document; a dead letter's own location (it has no id)."""
    if isinstance(record, Document):
        return "d\x00" + record.doc_id
    return f"x\x00{record.source_path}\x00{record.source_offset}"


def make_ids_unique(records: Iterable[Document | DeadLetter]) -> Iterator[Document | DeadLetter]:
    """Every record of one id group, the later ones (in source order) renamed.

    Iterates the group twice (Beam's grouped values are re-iterable) and holds only positions,
    never the documents, in memory.
    """
    first: tuple[str, int] | None = None
    n = 0
    for record in records:
        n += 1
        position = (record.source_path, record.source_offset)
        if first is None or position < first:
            first = position
    for record in records:
        if n == 1 or not isinstance(record, Document) or (record.source_path, record.source_offset) == first:
            yield record
        else:
            yield replace(record, doc_id=renamed_id(record.doc_id, record.source_path, record.source_offset),
                          input_doc_id=record.doc_id)
