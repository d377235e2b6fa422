"""One doc_id per document per run, by a deterministic rule.

Input ids (WARC-Record-ID, a JSONL/Parquet id field) are not unique in practice: a shard read
twice under two names, a crawl that re-uses record ids, a dataset whose ids restart per file.
Rule: among the documents of a run that share an id, the first in source order — the smallest
``(source_path, source_offset)`` — keeps it; every other one becomes
``<id>#dup-<xxh3-64 of (source_path, source_offset)>`` and records the id it came with in
``input_doc_id`` (metadata/). The decide pass applies the rule from packed (id hash, position)
records (``runtime/passes.py``: ``_renamed_positions``), so it is the same on any runner and worker
count.
"""

from __future__ import annotations

import xxhash

DUPLICATE_ID_SEPARATOR = "#dup-"


def renamed_id(doc_id: str, source_path: str, source_offset: int) -> str:
    position = xxhash.xxh3_64_hexdigest(f"{source_path}\x00{source_offset}".encode("utf-8", "surrogatepass"))
    return f"{doc_id}{DUPLICATE_ID_SEPARATOR}{position}"
