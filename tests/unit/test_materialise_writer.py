"""The materialise pass's writer (``runtime/passes.py::_RollingWriter``): row groups, file bounds, order, bytes."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from toxsieve.pipelines.config import OutputConfig
from toxsieve.pipelines.document import Document
from toxsieve.pipelines.io.outputs import curated_row, row_size
from toxsieve.pipelines.runtime import passes
from toxsieve.schemas import CURATED_SCHEMA


def _rows(n: int) -> list[dict]:
    return [curated_row(Document(f"d{i:05d}", "in.jsonl", i, "jsonl", text=f"text of document {i} " * (i % 9 + 1),
                                 text_hash=f"h{i}", language="en", language_score=0.5)) for i in range(n)]


def _write(tmp_path: Path, rows: list[dict], **cfg: object) -> list[tuple[str, int]]:
    (tmp_path / "kept").mkdir(parents=True, exist_ok=True)
    writer = passes._RollingWriter(str(tmp_path), "kept", 3, 10, OutputConfig(**cfg))  # type: ignore[arg-type]
    for row in rows:
        writer.add(row)
    return writer.close()


def test_row_groups_follow_row_group_rows_across_the_conversion_batches(tmp_path: Path) -> None:
    rows = _rows(1000)  # more than one batch of _FLUSH_ROWS rows per row group
    ((path, n),) = _write(tmp_path, rows, row_group_rows=300)
    assert n == 1000 and path.endswith("kept/part-00003-of-00010-000.parquet")
    meta = pq.ParquetFile(path).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [300, 300, 300, 100]
    assert pq.read_table(path).to_pylist() == rows  # source order, every row
    assert not list((tmp_path / "kept").glob(".tmp-*"))


def test_the_same_rows_give_the_same_bytes(tmp_path: Path) -> None:
    # a row group is converted in batches of _FLUSH_ROWS rows: the file depends only on the rows
    rows = _rows(700)
    ((first, _),) = _write(tmp_path / "a", rows)
    ((second, _),) = _write(tmp_path / "b", rows)
    assert Path(first).read_bytes() == Path(second).read_bytes()
    assert pq.read_table(first).equals(pa.Table.from_pylist(rows, schema=CURATED_SCHEMA))


def test_files_end_at_the_shard_target(tmp_path: Path) -> None:
    rows = _rows(600)
    written = _write(tmp_path, rows, shard_target_bytes=5_000, row_group_rows=50)
    assert len(written) > 10 and sum(n for _, n in written) == 600
    back = []
    for path, n in written:
        table = pq.read_table(path)
        sizes = [row_size(r) for r in table.to_pylist()]
        assert table.num_rows == n and (n == 1 or sum(sizes) <= 6_250)
        back += table.to_pylist()
    assert back == rows
