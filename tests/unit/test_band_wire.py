"""The decide pass's wire format (``runtime/passes.py``): 10 bytes per band, 20 per hash, any offset."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pyarrow as pa

from toxsieve.pipelines.runtime import passes


def _bands(*hashes: int) -> list[bytes]:
    """Band keys as the sketching step stores them (band hashes spread over 64 bits, as real ones are)."""
    return [b.to_bytes(2, "big") + (h * 0xD6E8FEB86659FD93 % 2**64).to_bytes(8, "big") for b, h in enumerate(hashes)]


def _shuffle(fn: passes._ShardBandsFn, shards: dict[int, pa.Table]) -> dict[int, list[bytes]]:
    grouped: dict[int, list[bytes]] = defaultdict(list)
    for index, table in shards.items():
        for partition, chunk in fn._pack(index, table, None):
            grouped[partition].append(chunk)
    return grouped


def test_chunks_restore_every_key_and_position_and_cost_ten_bytes_per_band() -> None:
    far = 2**32 + 7  # offsets past 4 GiB (a large uncompressed input) share a chunk with their high bits
    shards = {
        3: pa.table({"offset": pa.array([5, far, 2**39 + 11], pa.int64()), "alive": [True, True, True],
                     "bands": [_bands(1, 2), _bands(1, 9), _bands(4, 2)]}),
        1: pa.table({"offset": pa.array([0], pa.int64()), "alive": [True], "bands": [_bands(8, 2)]}),
    }
    fn = passes._ShardBandsFn(n_partitions=3)
    grouped = _shuffle(fn, shards)
    n_chunks = sum(len(c) for c in grouped.values())
    wire = sum(len(c) for chunks in grouped.values() for c in chunks)
    assert wire == 8 * 10 + n_chunks * passes._CHUNK_HEADER.size

    restored = np.concatenate([passes._from_chunks(c, passes._BAND, passes._BAND_WIRE) for c in grouped.values()])
    got = sorted((int(r["khi"]) << 16 | int(r["klo"]), passes.unposition(int(r["pos"]))) for r in restored)
    expected = []
    for index, table in shards.items():
        for offset, bands in zip(table.column("offset").to_pylist(), table.column("bands").to_pylist(), strict=True):
            for band in bands:
                key = int.from_bytes(band[2:], "big") ^ (int.from_bytes(band[:2], "big") * int(passes._BAND_MIX))
                expected.append(((key % 2**64) >> 16, (index, offset)))
    assert got == sorted(expected)


def test_documents_sharing_a_band_become_one_candidate_edge_across_shards_and_far_offsets() -> None:
    far = 2**33 + 3
    shards = {
        0: pa.table({"offset": pa.array([10, far], pa.int64()), "alive": [True, True],
                     "bands": [_bands(100, 200), _bands(300, 400)]}),
        2: pa.table({"offset": pa.array([far + 1], pa.int64()), "alive": [True], "bands": [_bands(555, 200)]}),
    }
    grouped = _shuffle(passes._ShardBandsFn(n_partitions=2), shards)
    edges = {tuple(sorted(passes.node_position(n) for n in edge))
             for partition, chunks in grouped.items()
             for edge in passes._link_packed((partition, chunks), max_bucket_size=100)}
    assert edges == {((0, 10), (2, far + 1))}  # band 1 of both hashes 200; nothing else is shared


def test_hashed_records_cost_twenty_bytes_and_find_equal_texts_across_shards_and_far_offsets() -> None:
    fn = passes._PackHashed("text", n_partitions=2)
    fn.start_bundle()
    same, other = "ab" * 16, "cd" * 16  # 128-bit text hashes, hex
    rows = [("d1", 0, 4, True, same), ("d2", 5, 2**32 + 9, True, same), ("d3", 5, 7, True, other),
            ("d4", 1, 2**38, True, same), ("d5", 2, 3, False, same)]  # d5 is no dedup candidate
    for row in rows:
        list(fn.process(row))
    grouped: dict[int, list[bytes]] = defaultdict(list)
    for windowed in fn.finish_bundle():
        partition, chunk = windowed.value
        grouped[partition].append(chunk)
    n_chunks = sum(len(c) for c in grouped.values())
    assert sum(len(c) for chunks in grouped.values() for c in chunks) == 4 * 20 + n_chunks * 4
    members = sorted((index, offset) for partition, chunks in grouped.items()
                     for index, (_, offset, _) in passes._exact_groups((partition, chunks)))
    assert members == [(0, 4), (1, 2**38), (5, 2**32 + 9)]
