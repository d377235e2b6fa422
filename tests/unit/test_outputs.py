"""Output rows and the Parquet shard writer: schema-conformant, sorted, sized, readable by common tools."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from toxsieve.pipelines.config import OutputConfig
from toxsieve.pipelines.document import DeadLetter, Document, Removal
from toxsieve.pipelines.io.outputs import (
    Row,
    audit_row,
    curated_row,
    dead_letter_row,
    local_open_for_write,
    metadata_row,
    row_size,
    write_parquet_shards,
)
from toxsieve.schemas import (
    AUDIT_SCHEMA,
    CURATED_SCHEMA,
    DEAD_LETTER_SCHEMA,
    METADATA_SCHEMA,
    SCHEMA_VERSION,
    Reason,
    Stage,
)

RUN_ID = "run-20240101-abc"


def _kept(i: int = 0, text: str = "a kept document") -> Document:
    return Document(
        f"urn:uuid:kept-{i}", "s3://crawl/a.warc.gz", 100 * i, "warc", url=f"http://example.com/{i}",
        crawl_date="2024-01-02T03:04:05Z", http_status=200, content_type="text/html", n_bytes_raw=4321,
        text=text, text_hash=f"hash{i}", language="en", language_score=0.97,
    )


def _removed(i: int = 0, text: str | None = "removed text " * 10) -> Document:
    doc = Document(f"urn:uuid:removed-{i}", "a.jsonl", i, "jsonl", url=None, n_bytes_raw=99, text=text,
                   text_hash="h" if text else None, language="de", language_score=0.42)
    return doc.removed(Removal(Stage.LANGUAGE, Reason.LOW_LANGUAGE_CONFIDENCE, score=0.42, threshold=0.5,
                               matched=("de",), detail="de with probability 0.420 < 0.500"))


def _duplicate() -> Document:
    return _kept(5).removed(Removal(Stage.EXACT_DEDUP, Reason.EXACT_DUPLICATE, score=1.0,
                                    duplicate_of="urn:uuid:kept-1"))


def _not_html() -> Document:
    doc = Document("urn:uuid:png", "a.warc.gz", 7, "warc", http_status=200, content_type="image/png",
                   n_bytes_raw=10, html=b"\x89PNG")
    return doc.removed(Removal(Stage.READ, Reason.NOT_HTML, detail="Content-Type image/png"))


def _dead() -> DeadLetter:
    return DeadLetter("a.jsonl", 3, "jsonl", "JSONDecodeError", "Expecting value", "{not json\\n")


def _table(rows: list[Row], schema: pa.Schema) -> pa.Table:
    table = pa.Table.from_pylist(rows, schema=schema)
    table.validate(full=True)
    for field in schema:
        if not field.nullable:
            assert table.column(field.name).null_count == 0, f"null in non-nullable column {field.name}"
    return table


# --- rows -------------------------------------------------------------------


def test_curated_rows_match_the_schema() -> None:
    table = _table([curated_row(_kept(0)), curated_row(_kept(1, "ünïcode ✓"))], CURATED_SCHEMA)
    row = table.to_pylist()[1]
    assert set(row) == set(CURATED_SCHEMA.names)
    assert row["text"] == "ünïcode ✓" and row["n_chars"] == 9
    assert row["doc_id"] == "urn:uuid:kept-1" and row["url"] == "http://example.com/1"
    assert row["language"] == "en" and row["language_score"] == pytest.approx(0.97)
    assert (row["source_path"], row["source_offset"], row["source_format"]) == ("s3://crawl/a.warc.gz", 100, "warc")


def test_metadata_rows_for_kept_and_removed() -> None:
    docs = [_kept(0), _removed(1), _duplicate(), _not_html()]
    rows = _table([metadata_row(d) for d in docs], METADATA_SCHEMA).to_pylist()
    kept, low, dup, png = rows
    assert (kept["decision"], kept["stage"], kept["reason"]) == ("kept", None, None)
    assert kept["http_status"] == 200 and kept["n_chars"] == len("a kept document")
    assert (low["decision"], low["stage"], low["reason"]) == ("removed", "language", "low_language_confidence")
    assert (dup["reason"], dup["duplicate_of"]) == ("exact_duplicate", "urn:uuid:kept-1")
    assert (png["stage"], png["reason"], png["n_chars"], png["content_type"]) == ("read", "not_html", None, "image/png")


def test_audit_rows_carry_the_evidence() -> None:
    cfg = OutputConfig(removed_text="full")
    rows = _table([audit_row(d, RUN_ID, cfg) for d in (_removed(1), _duplicate(), _not_html())],
                  AUDIT_SCHEMA).to_pylist()
    low, dup, png = rows
    assert low["run_id"] == RUN_ID
    assert (low["stage"], low["reason"], low["score"], low["threshold"]) == (
        "language", "low_language_confidence", 0.42, 0.5)
    assert low["matched"] == ["de"] and low["detail"].startswith("de with probability")
    assert dup["duplicate_of"] == "urn:uuid:kept-1" and dup["matched"] is None
    assert png["text"] is None and png["n_chars"] is None and png["text_truncated"] is False


def test_audit_row_refuses_a_kept_document() -> None:
    with pytest.raises(ValueError, match="urn:uuid:kept-0"):
        audit_row(_kept(0), RUN_ID, OutputConfig())


def test_dead_letter_rows_match_the_schema() -> None:
    no_excerpt = DeadLetter("b.warc.gz", 0, "warc", "EOFError", "shard unreadable after offset 0: ...")
    rows = _table([dead_letter_row(_dead(), RUN_ID), dead_letter_row(no_excerpt, RUN_ID)],
                  DEAD_LETTER_SCHEMA).to_pylist()
    assert rows[0] == {
        "run_id": RUN_ID, "source_path": "a.jsonl", "source_offset": 3, "source_format": "jsonl",
        "error_type": "JSONDecodeError", "error": "Expecting value", "record_excerpt": "{not json\\n",
    }
    assert rows[1]["record_excerpt"] is None


@pytest.mark.parametrize(
    ("mode", "chars", "text", "expected", "truncated"),
    [
        ("full", 5, "0123456789", "0123456789", False),
        ("truncated", 5, "0123456789", "01234", True),
        ("truncated", 10, "0123456789", "0123456789", False),  # exactly at the limit: not truncated
        ("truncated", 50, "short", "short", False),
        ("none", 5, "0123456789", None, False),
        ("full", 5, None, None, False),
    ],
)
def test_removed_text_modes(mode: str, chars: int, text: str | None, expected: str | None, truncated: bool) -> None:
    cfg = OutputConfig(removed_text=mode, removed_text_chars=chars)
    row = audit_row(_removed(text=text), RUN_ID, cfg)
    assert (row["text"], row["text_truncated"]) == (expected, truncated)
    assert row["n_chars"] == (len(text) if text is not None else None)  # length of the whole text, always
    _table([row], AUDIT_SCHEMA)


# --- Parquet shards ----------------------------------------------------------


def _write(tmp_path: Path, rows: list[Row], schema: pa.Schema, **cfg: object) -> list[tuple[str, int]]:
    out = tmp_path / "out"
    return write_parquet_shards(
        rows, schema, lambda seq: str(out / f"part-{seq:05d}.parquet"), local_open_for_write, os.replace,
        OutputConfig(**cfg),  # type: ignore[arg-type]
    )


def _shuffled_rows(n: int) -> list[Row]:
    docs = [_kept(i, text=f"document number {i} " * (i % 7 + 1)) for i in range(n)]
    order = sorted(range(n), key=lambda i: (i * 7919) % n)  # a fixed non-sorted permutation
    return [curated_row(docs[i]) for i in order]


def test_shard_rows_are_sorted_and_complete(tmp_path: Path) -> None:
    rows = _shuffled_rows(40)
    ((path, n),) = _write(tmp_path, rows, CURATED_SCHEMA)
    assert path == str(tmp_path / "out" / "part-00000.parquet") and n == 40
    table = pq.read_table(path)
    ids = table.column("doc_id").to_pylist()
    assert ids == sorted(r["doc_id"] for r in rows)
    assert table.schema.equals(CURATED_SCHEMA, check_metadata=True)
    assert sorted(table.to_pylist(), key=lambda r: r["doc_id"]) == sorted(
        _table(rows, CURATED_SCHEMA).to_pylist(), key=lambda r: r["doc_id"])


def test_shard_content_does_not_depend_on_arrival_order(tmp_path: Path) -> None:
    rows = _shuffled_rows(25)
    ((first, _),) = _write(tmp_path / "a", rows, CURATED_SCHEMA)
    ((second, _),) = _write(tmp_path / "b", rows[::-1], CURATED_SCHEMA)
    assert pq.read_table(first).equals(pq.read_table(second))


def test_shards_roll_over_at_the_size_limit(tmp_path: Path) -> None:
    rows = _shuffled_rows(60)
    target = 1000
    written = _write(tmp_path, rows, CURATED_SCHEMA, shard_target_bytes=target, row_group_rows=4)
    assert len(written) > 3
    assert [Path(p).name for p, _ in written] == [f"part-{i:05d}.parquet" for i in range(len(written))]
    assert sum(n for _, n in written) == 60
    all_ids: list[str] = []
    for path, n in written:
        table = pq.read_table(path)
        assert table.num_rows == n
        payload = sum(row_size(r) for r in table.to_pylist())
        assert n == 1 or payload <= target * 1.25
        all_ids += table.column("doc_id").to_pylist()
    assert all_ids == sorted(r["doc_id"] for r in rows), "files continue one sorted sequence"


def test_a_row_larger_than_the_limit_gets_its_own_file(tmp_path: Path) -> None:
    rows = [curated_row(_kept(0, "x" * 5000)), curated_row(_kept(1, "small"))]
    written = _write(tmp_path, rows, CURATED_SCHEMA, shard_target_bytes=300)
    assert [n for _, n in written] == [1, 1]


def test_no_rows_writes_one_empty_file_with_the_schema(tmp_path: Path) -> None:
    ((path, n),) = _write(tmp_path, [], DEAD_LETTER_SCHEMA)
    assert n == 0
    table = pq.read_table(path)
    assert table.num_rows == 0
    assert table.schema.equals(DEAD_LETTER_SCHEMA, check_metadata=True)


def test_no_temporary_files_are_left_behind(tmp_path: Path) -> None:
    written = _write(tmp_path, _shuffled_rows(30), CURATED_SCHEMA, shard_target_bytes=800)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(Path(p).name for p, _ in written)


@pytest.mark.parametrize(("compression", "codec"), [("zstd", "ZSTD"), ("snappy", "SNAPPY"), ("none", "UNCOMPRESSED")])
def test_compression_setting_is_applied(tmp_path: Path, compression: str, codec: str) -> None:
    ((path, _),) = _write(tmp_path, _shuffled_rows(5), CURATED_SCHEMA, compression=compression)
    assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == codec


def test_row_groups_follow_the_setting(tmp_path: Path) -> None:
    ((path, _),) = _write(tmp_path, _shuffled_rows(25), CURATED_SCHEMA, row_group_rows=10)
    assert pq.ParquetFile(path).metadata.num_row_groups == 3


def test_shards_are_readable_by_pyarrow_duckdb_and_polars(tmp_path: Path) -> None:
    docs = [_kept(0), _removed(1), _duplicate(), _not_html()]
    rows = [metadata_row(d) for d in docs]
    written = _write(tmp_path, rows, METADATA_SCHEMA, shard_target_bytes=250)
    assert len(written) >= 2
    pattern = str(tmp_path / "out" / "*.parquet")

    assert pq.read_table(str(tmp_path / "out")).num_rows == 4  # pyarrow dataset over the directory

    con = duckdb.connect()
    counts = con.execute(
        f"SELECT decision, reason, count(*) FROM read_parquet('{pattern}') GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    assert counts == [("kept", None, 1), ("removed", "exact_duplicate", 1),
                      ("removed", "low_language_confidence", 1), ("removed", "not_html", 1)]

    frame = pl.read_parquet(pattern)
    assert frame.height == 4
    assert frame.filter(pl.col("reason") == "exact_duplicate")["duplicate_of"].to_list() == ["urn:uuid:kept-1"]
    assert frame.schema["source_offset"] == pl.Int64 and frame.schema["language_score"] == pl.Float32


def test_schema_version_travels_in_the_file(tmp_path: Path) -> None:
    ((path, _),) = _write(tmp_path, [audit_row(_removed(1), RUN_ID, OutputConfig())], AUDIT_SCHEMA)
    metadata = pq.read_schema(path).metadata
    assert metadata[b"toxsieve.schema"] == b"audit_record"
    assert metadata[b"toxsieve.schema_version"] == str(SCHEMA_VERSION).encode()
