"""Version 1 of the output schemas: curated documents, per-document metadata, audit trail, dead letters."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from toxsieve.pipelines.stages import signal_fields

# 2: metadata toxicity_supported (#14), input_doc_id (#10), declared stages' signal columns (#13); kept n_tokens (#13)
# 3: metadata blocklist_* move to the declared stages' columns (word_blocklist is declared) + word_blocklist_flag
# 4: metadata url_blocklist_flag (the URL lists are a declared stage; annotate mode)
# 5: metadata language_flag (language ID is a declared stage; annotate mode)
SCHEMA_VERSION = 5


def _list(item: pa.DataType) -> pa.DataType:
    # "element" is the Parquet-compliant item name pyarrow reads back, so written and read schemas
    # compare equal (with the default "item", they differ in field metadata).
    return pa.list_(pa.field("element", item))


def _versioned(name: str, fields: list[pa.Field]) -> pa.Schema:
    return pa.schema(
        fields,
        metadata={"toxsieve.schema": name, "toxsieve.schema_version": str(SCHEMA_VERSION)},
    )


_SOURCE_FIELDS = [
    pa.field("source_path", pa.string(), nullable=False),  # the shard the record came from
    pa.field("source_offset", pa.int64(), nullable=False),  # byte offset (WARC) or line/row number
    pa.field("source_format", pa.string(), nullable=False),  # warc | wet | jsonl | parquet
]

LABEL_SCORES = _list(pa.struct([pa.field("label", pa.string()), pa.field("score", pa.float32())]))

_TOXICITY_FIELDS = [
    pa.field("toxicity_score", pa.float32()),  # the score the decision used (max over chunks)
    pa.field("toxicity_label_scores", LABEL_SCORES),  # per label, max over chunks
    pa.field("toxicity_model", pa.string()),  # the model that produced toxicity_score
    pa.field("toxicity_model_sha256", pa.string()),
    pa.field("toxicity_fast_score", pa.float32()),  # the fast model's score, when a cascade re-scored
    pa.field("toxicity_threshold", pa.float32()),
    pa.field("toxicity_n_chunks", pa.int32()),
    pa.field("toxicity_flagged", pa.bool_()),
    pa.field("toxicity_supported", pa.bool_()),  # false: no model for the language, score null, never removed
]

# kept/: the training set.
CURATED_SCHEMA = _versioned(
    "curated_document",
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("text", pa.large_string(), nullable=False),
        pa.field("url", pa.string()),
        pa.field("crawl_date", pa.string()),  # as given by the source (ISO 8601 for WARC)
        pa.field("language", pa.string()),
        pa.field("language_score", pa.float32()),
        pa.field("text_hash", pa.string(), nullable=False),
        pa.field("n_chars", pa.int64(), nullable=False),
        pa.field("toxicity_score", pa.float32()),  # annotate mode: the signal for detox / conditioning
        pa.field("toxicity_label_scores", LABEL_SCORES),
        pa.field("n_tokens", pa.int64()),  # estimated tokens (quality.length; pipelines/stages/text.py)
        *_SOURCE_FIELDS,
    ],
)

# metadata/: one row per document read (not per dead letter), kept or removed.
METADATA_SCHEMA = _versioned(
    "document_metadata",
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("url", pa.string()),
        pa.field("crawl_date", pa.string()),
        *_SOURCE_FIELDS,
        pa.field("http_status", pa.int32()),
        pa.field("content_type", pa.string()),
        pa.field("n_bytes_raw", pa.int64(), nullable=False),  # size of the record's payload
        pa.field("n_chars", pa.int64()),  # after extraction and normalisation
        pa.field("text_hash", pa.string()),
        pa.field("language", pa.string()),
        pa.field("language_score", pa.float32()),
        # declared stages of phase url (pipelines/stages/; the URL lists): url_blocklist_* + url_banned_words
        *signal_fields("url"),
        # near-duplicates
        pa.field("near_dup_cluster", pa.string()),
        pa.field("near_dup_cluster_size", pa.int32()),
        pa.field("near_dup_similarity", pa.float32()),
        # toxicity
        *_TOXICITY_FIELDS,
        # the id the input gave, when an earlier document (source order) had it; doc_id is then
        # "<input_doc_id>#dup-<hash of source position>" (pipelines/runtime/doc_ids.py)
        pa.field("input_doc_id", pa.string()),
        # declared stages of phase text (pipelines/stages/): <stage>_<signal> and <stage>_flag
        *signal_fields("text"),
        pa.field("decision", pa.string(), nullable=False),  # Decision
        pa.field("stage", pa.string()),  # Stage that removed it
        pa.field("reason", pa.string()),  # Reason
        pa.field("duplicate_of", pa.string()),
    ],
)

# removed/: the audit trail, one row per removed document with its evidence.
AUDIT_SCHEMA = _versioned(
    "audit_record",
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("url", pa.string()),
        *_SOURCE_FIELDS,
        # evidence: what the decision was based on
        pa.field("score", pa.float64()),  # the measured value (language score, length, status ...)
        pa.field("threshold", pa.float64()),  # the bound it was compared with
        pa.field("duplicate_of", pa.string()),
        pa.field("matched", _list(pa.string())),  # matched terms / list entries
        pa.field("detail", pa.string()),  # one human-readable line
        pa.field("language", pa.string()),
        pa.field("language_score", pa.float32()),
        pa.field("n_chars", pa.int64()),
        pa.field("text", pa.large_string()),  # full, truncated or null (output.removed_text)
        pa.field("text_truncated", pa.bool_(), nullable=False),
    ],
)

# dead_letter/: input that could not be read or decoded.
DEAD_LETTER_SCHEMA = _versioned(
    "dead_letter",
    [
        pa.field("run_id", pa.string(), nullable=False),
        *_SOURCE_FIELDS,
        pa.field("error_type", pa.string(), nullable=False),
        pa.field("error", pa.string(), nullable=False),
        pa.field("record_excerpt", pa.string()),  # first bytes of the bad record, repr-escaped
    ],
)

SCHEMAS: dict[str, pa.Schema] = {
    "kept": CURATED_SCHEMA,
    "metadata": METADATA_SCHEMA,
    "removed": AUDIT_SCHEMA,
    "dead_letter": DEAD_LETTER_SCHEMA,
}


def schema_to_dict(schema: pa.Schema) -> dict[str, Any]:
    """A JSON-able description of a schema, for golden snapshots and docs."""
    meta = {k.decode(): v.decode() for k, v in (schema.metadata or {}).items()}
    return {
        "metadata": meta,
        "fields": [
            {"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema
        ],
    }
