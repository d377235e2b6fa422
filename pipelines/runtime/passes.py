"""The three passes of a run: signals (per input shard), decide (small keys only), materialise (per shard).

No document text crosses a shuffle, a side input or a Flatten (Beam's local runner holds every
PCollection that crosses a fusion break in memory; a cluster would ship it over the network):

1. **Signals** — per input shard, one fused chain of ParDos: read, every per-document stage
   (URL and word blocklists, extraction, language ID, the declared quality stages, toxicity
   scoring) and the MinHash sketch. A document a stage removed flows on untouched (each stage
   runs on documents still kept), so the chain stays linear: no branch, no Flatten. The end of
   the chain writes each shard's records (Documents and DeadLetters, pickled, with their small
   signals in their own columns) to ``_staging/<shard>/`` and emits only small rows.
2. **Decide** — over the small rows: ids made unique (GroupByKey by doc_id), exact duplicates
   (by text hash), near duplicates (MinHash-LSH graph of ``near_dedup_beam``). Decisions are
   grouped by input shard.
3. **Materialise** — per input shard: its staged records in source order, its decisions applied,
   written to ``kept/``, ``removed/``, ``metadata/`` and ``dead_letter/`` as files named after the
   input shard, with the shard's counts for ``stats.json``.

Toxicity is scored in pass 1 but, as in the stage order, decided after deduplication: a duplicate
is removed as a duplicate and carries no toxicity signals (the model ran on it, its score is
dropped). A shard whose records all reached the staging writer in one bundle (every fused
configuration) is marked complete at once (``<shard>.done``); ``toxsieve run --resume`` re-uses it.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import struct
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindows

from toxsieve.pipelines.config import Config, NearDedupConfig, OutputConfig
from toxsieve.pipelines.document import DeadLetter, Document
from toxsieve.pipelines.io.outputs import Row, audit_row, curated_row, dead_letter_row, metadata_row, row_size
from toxsieve.pipelines.io.readers import detect_format, read_shard
from toxsieve.pipelines.runtime import progress
from toxsieve.pipelines.runtime.doc_ids import renamed_id
from toxsieve.pipelines.runtime.fast_scoring import FastScored, _decide_fast, _FastScoreFn, is_hf_model_dir
from toxsieve.pipelines.runtime.shuffle_meter import MeteredGroupByKey, Meters
from toxsieve.pipelines.runtime.transforms import (
    STAGE_KEY,
    _ExtractFn,
    alive,
    count_removal,
    dead_letter_failure,
    funnel_keys,
)
from toxsieve.pipelines.stages import in_phase, stat_keys
from toxsieve.pipelines.stages.apply import _DeclaredStageFn
from toxsieve.pipelines.stages.dedup_exact import exact_duplicate_removal
from toxsieve.pipelines.stages.minhash import keeper_rank
from toxsieve.pipelines.stages.near_dedup import ClusterDecision, apply_decision, make_hasher, node_id, sketch_batch
from toxsieve.pipelines.stages.near_dedup_beam import ClusterCandidates, _link_bucket
from toxsieve.schemas import AUDIT_SCHEMA, CURATED_SCHEMA, DEAD_LETTER_SCHEMA, METADATA_SCHEMA, Stage

STAGING_DIR = "_staging"
OUTPUT_DIRS = ("kept", "metadata", "removed", "dead_letter")
_SCHEMAS = {"kept": CURATED_SCHEMA, "metadata": METADATA_SCHEMA, "removed": AUDIT_SCHEMA,
            "dead_letter": DEAD_LETTER_SCHEMA}

# One staged record: the pickled Document / DeadLetter and the small signals pass 2 needs.
STAGED_SCHEMA = pa.schema([
    ("offset", pa.int64()),
    ("seq", pa.int64()),  # arrival order inside the reader's output for this shard (ties of offset)
    ("doc_id", pa.string()),  # null for a dead letter
    ("alive", pa.bool_()),  # still a candidate for deduplication (kept, or removed only for toxicity)
    ("text_hash", pa.string()),
    ("text_len", pa.int64()),
    ("signature", pa.binary()),  # MinHash signature (uint32 LE), null without shingles or near-dedup
    ("shingles", pa.binary()),  # exact shingle set (near_dedup.verify = exact)
    ("bands", pa.list_(pa.binary())),
    ("record", pa.binary()),  # pickle of the Document / DeadLetter (no raw HTML)
])
_FLUSH_ROWS = 256
_READ_ROWS = 4096  # rows of small columns read back from staging at a time (whole records: _FLUSH_ROWS)
_ROW_GROUP_BYTES = 16 << 20  # an output row group is written at output.row_group_rows or this much payload

# The chain's per-document stages in pipeline order, by the Stage their removals carry; the
# decide-pass stages after them. Names are the classes of the stage transforms (stats keys).
_DEDUP_ORDER = (("DropExactDuplicates", Stage.EXACT_DEDUP.value), ("DropNearDuplicates", Stage.NEAR_DEDUP.value),
                ("ScoreToxicity", Stage.TOXICITY.value))


SECONDS_KEY = "stage_us"  # counts key: microseconds a stage spent on its own work, summed over shards


@dataclass(frozen=True)
class ShardEnd:
    """Follows the last record of an input shard down the chain: how many records the reader emitted."""

    source_path: str
    n_records: int
    # seconds each stage of the chain spent on this shard (perf_counter, the stage's own work only)
    seconds: tuple[tuple[str, float], ...] = ()


class _Clock:
    """Time a stage spends on its own work, handed to the next ShardEnd that passes (so per shard; the
    time of a batch that spans two shards goes to the first shard's ShardEnd). Outputs are collected before they go
    on, so the time of the stages downstream (called inside a fused chain's ``yield``) is not counted."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.spent = 0.0

    def stamp(self, end: ShardEnd) -> ShardEnd:
        spent, self.spent = self.spent, 0.0
        return dataclasses.replace(end, seconds=(*end.seconds, (self.name, spent)))

    def run(self, work: Iterable[Any]) -> list[Any]:
        started = time.perf_counter()
        out = list(work)
        self.spent += time.perf_counter() - started
        return out

    def batch(self, work: Iterable[Any]) -> list[Any]:
        """A batch step's outputs, timed; a ShardEnd among them takes the time so far."""
        return [self.stamp(e) if isinstance(e, ShardEnd) else e for e in self.run(work)]


@dataclass(frozen=True)
class Sketched:
    """A document with its MinHash sketch parts (the chain's last stage adds them)."""

    doc: Document
    signature: bytes
    shingles: bytes | None
    bands: list[bytes]


def stage_order(cfg: Config) -> list[tuple[str, str]]:
    """(stats name, Stage value) of every enabled stage, in pipeline order."""
    order = [(s.transform, s.name) for s in in_phase("url", cfg)]
    order += [("ExtractText", Stage.EXTRACT.value)]
    order += [(s.transform, s.name) for s in in_phase("text", cfg)]
    enabled = {"DropExactDuplicates": cfg.exact_dedup.enabled, "DropNearDuplicates": cfg.near_dedup.enabled,
               "ScoreToxicity": cfg.toxicity.enabled}
    return order + [(name, stage) for name, stage in _DEDUP_ORDER if enabled[name]]


def _dedup_candidate(doc: Document) -> bool:
    return doc.removal is None or doc.removal.stage == Stage.TOXICITY


def _global(value: Any) -> Any:
    return GlobalWindows.windowed_value(value)


# --- pass 1: signals ---------------------------------------------------------------------------


class _ReadShardFn(beam.DoFn):
    def __init__(self, cfg: Config, progress_dir: str | None) -> None:
        self.cfg = cfg
        self.progress_dir = progress_dir

    def process(self, path: str) -> Iterator[Any]:
        fmt = detect_format(path, self.cfg.input.format)
        n = 0
        try:
            stream = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
        except Exception as exc:  # noqa: BLE001 - an unreadable file is a dead letter, not a crash
            yield DeadLetter(path, 0, fmt, type(exc).__name__, f"cannot open shard: {exc}")
            n = 1
        else:
            with stream:
                for record in read_shard(stream, path, fmt, self.cfg.input):
                    n += 1
                    progress.PROGRESS.add("read")
                    Metrics.counter("read", "dead_letter" if isinstance(record, DeadLetter) else "documents").inc()
                    yield record
        yield ShardEnd(path, n)
        if self.progress_dir is not None:
            progress.mark_file_done(self.progress_dir, path)


class _OnKept(beam.DoFn):
    """A per-document stage's DoFn, run on documents still kept; everything else passes through."""

    def __init__(self, inner: beam.DoFn, name: str) -> None:
        self.inner = inner
        self.name = name

    def setup(self) -> None:
        self.inner.setup()
        self._clock = _Clock(self.name)

    def process(self, element: Any) -> Iterator[Any]:
        if alive(element):
            yield from self._clock.run(self.inner.process(element))
        elif isinstance(element, ShardEnd):
            yield self._clock.stamp(element)
        else:
            yield element

    def teardown(self) -> None:
        self.inner.teardown()


class _ScoreKeptBatches(beam.DoFn):
    """In-process toxicity models on the kept documents of a batch; the batch comes out in order."""

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        self.inner = _FastScoreFn(cfg)

    def setup(self) -> None:
        self.inner.setup()
        self._clock = _Clock("ScoreToxicity")

    def process(self, batch: Sequence[Any]) -> Iterator[Any]:
        return iter(self._clock.batch(self._process(batch)))

    def _process(self, batch: Sequence[Any]) -> Iterator[Any]:
        kept = [e for e in batch if alive(e)]
        scored: dict[tuple[str, int], Any] = {}  # (path, offset): one input record
        for item in self._scored(kept):
            if isinstance(item, FastScored):
                scored[(item.doc.source_path, item.doc.source_offset)] = _decide_fast(item, self.cfg)
            else:  # the dead letter of a document the model raised on
                scored[(item.source_path, item.source_offset)] = item
        for e in batch:
            yield scored[(e.source_path, e.source_offset)] if alive(e) else e

    def _scored(self, docs: list[Document]) -> list[Any]:
        """The batch's scores; when the model raises on a batch, each document alone, and a document it
        raises on alone becomes a dead letter (one bad record costs one record, not the run)."""
        if not docs:
            return []
        try:
            return list(self.inner.process(docs))
        except Exception as exc:  # noqa: BLE001
            if len(docs) == 1:
                return [dead_letter_failure(Stage.TOXICITY.value, docs[0], exc)]
        return [item for doc in docs for item in self._scored([doc])]


class _SketchKeptBatches(beam.DoFn):
    """MinHash signature and band keys of every deduplication candidate with a shingle."""

    def __init__(self, cfg: NearDedupConfig) -> None:
        self.cfg = cfg

    def setup(self) -> None:
        self._hasher = make_hasher(self.cfg)
        self._clock = _Clock("Sketch")

    def process(self, batch: Sequence[Any]) -> Iterator[Any]:
        return iter(self._clock.batch(self._process(batch)))

    def _process(self, batch: Sequence[Any]) -> Iterator[Any]:
        docs = [e for e in batch if isinstance(e, Document) and _dedup_candidate(e)]
        found: dict[bytes, tuple[Any, list[bytes]]] = {}
        if docs:
            found = {node: (sketch, bands) for node, sketch, bands in sketch_batch(docs, self.cfg, self._hasher)}
        for e in batch:
            if isinstance(e, Document) and _dedup_candidate(e):
                hit = found.get(node_id(e))
                if hit is not None:
                    sketch, bands = hit
                    yield Sketched(e, sketch[2], sketch[3], bands)
                    continue
            yield e


class _ShardSink:
    """One shard's staged records in this bundle: a Parquet file written a row group at a time."""

    def __init__(self, directory: str, index: int) -> None:
        self.final = FileSystems.join(directory, f"{index:05d}", f"part-{uuid.uuid4().hex[:16]}.parquet")
        self.tmp = FileSystems.join(directory, f"{index:05d}", f".tmp-{uuid.uuid4().hex[:12]}.parquet")
        self.rows: list[dict[str, Any]] = []
        self.n = 0
        self.n_read: int | None = None
        self.seconds: dict[str, float] = {}  # per stage of the chain, from the shard's ShardEnd
        self.spent = 0.0  # staging this shard's records
        self._stream: Any = None
        self._writer: pq.ParquetWriter | None = None

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        self.n += 1
        if len(self.rows) >= _FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        if self._writer is None:
            self._stream = FileSystems.create(self.tmp)
            self._writer = pq.ParquetWriter(self._stream, STAGED_SCHEMA, compression="zstd")
        self._writer.write_table(pa.Table.from_pylist(self.rows, schema=STAGED_SCHEMA))
        self.rows = []

    def close(self) -> str | None:
        """The final path, or None when no record of the shard reached this bundle."""
        if self.n == 0:
            return None
        self.flush()
        assert self._writer is not None
        self._writer.close()
        self._stream.close()
        if FileSystems.exists(self.final):
            FileSystems.delete([self.final])
        FileSystems.rename([self.tmp], [self.final])
        return self.final


def staged_row(record: Document | DeadLetter, seq: int, sketch: Sketched | None) -> dict[str, Any]:
    if isinstance(record, DeadLetter):
        return {"offset": record.source_offset, "seq": seq, "doc_id": None, "alive": False, "text_hash": None,
                "text_len": None, "signature": None, "shingles": None, "bands": None,
                "record": pickle.dumps(record, protocol=5)}
    if record.html is not None:
        record = dataclasses.replace(record, html=None)
    return {"offset": record.source_offset, "seq": seq, "doc_id": record.doc_id,
            "alive": _dedup_candidate(record), "text_hash": record.text_hash,
            "text_len": len(record.text) if record.text is not None else None,
            "signature": sketch.signature if sketch else None, "shingles": sketch.shingles if sketch else None,
            "bands": sketch.bands if sketch else None, "record": pickle.dumps(record, protocol=5)}


def small_row(index: int, row: dict[str, Any]) -> tuple[Any, ...]:
    """What pass 2 sees of a staged document: (doc_id, shard, offset, dedup candidate, text hash).
    No text, no sketch: band keys and signatures are read back from staging where they are needed."""
    return (row["doc_id"], index, row["offset"], row["alive"], row["text_hash"])


class _StageShardsFn(beam.DoFn):
    """The end of the signals chain: stages every record under ``_staging/<shard>/`` and emits
    ``("row", small row)`` per document and ``("part", shard, file, n, n_read, seconds by step)`` per file
    written."""

    def __init__(self, staging: str, shard_index: dict[str, int]) -> None:
        self.staging = staging
        self.shard_index = shard_index

    def start_bundle(self) -> None:
        self._sinks: dict[str, _ShardSink] = {}

    def _sink(self, path: str) -> _ShardSink:
        sink = self._sinks.get(path)
        if sink is None:
            sink = self._sinks[path] = _ShardSink(self.staging, self.shard_index[path])
        return sink

    def process(self, element: Any) -> Iterator[Any]:
        if isinstance(element, ShardEnd):
            sink = self._sink(element.source_path)
            sink.n_read = element.n_records
            sink.seconds = dict(element.seconds)
            if sink.n == element.n_records:  # the whole shard passed through this bundle: done now
                yield from self._close(element.source_path)
            return
        started = time.perf_counter()
        sketch = element if isinstance(element, Sketched) else None
        record = sketch.doc if sketch else element
        sink = self._sink(record.source_path)
        row = staged_row(record, sink.n, sketch)
        sink.add(row)
        sink.spent += time.perf_counter() - started
        if isinstance(record, Document):
            yield "row", small_row(self.shard_index[record.source_path], row)

    def _close(self, path: str) -> Iterator[tuple[Any, ...]]:
        sink = self._sinks.pop(path)
        index = self.shard_index[path]
        final = sink.close()
        complete = sink.n_read is not None and sink.n == sink.n_read
        if complete:
            write_done_marker(self.staging, index, [final] if final else [], sink.n_read or 0)
        yield "part", index, final, sink.n, sink.n_read, {**sink.seconds, "Staging": sink.spent}

    def finish_bundle(self) -> Iterator[Any]:
        for path in sorted(self._sinks):
            for message in self._close(path):
                yield _global(message)


def done_marker(staging: str, index: int) -> str:
    return FileSystems.join(staging, f"{index:05d}.done")


def write_done_marker(staging: str, index: int, files: list[str], n_read: int) -> None:
    with FileSystems.create(done_marker(staging, index)) as fh:
        fh.write(json.dumps({"files": [f.rsplit("/", 1)[1] for f in files], "n_read": n_read}).encode())


def read_done_marker(staging: str, index: int) -> dict[str, Any] | None:
    path = done_marker(staging, index)
    if not FileSystems.exists(path):
        return None
    with FileSystems.open(path) as fh:
        return json.loads(fh.read())


class _ResumeShardFn(beam.DoFn):
    """A shard staged by an earlier attempt of this run: its small rows and parts, from the staged files."""

    def __init__(self, staging: str) -> None:
        self.staging = staging

    def process(self, index: int) -> Iterator[tuple[Any, ...]]:
        marker = read_done_marker(self.staging, index)
        assert marker is not None
        n = 0
        files = [FileSystems.join(self.staging, f"{index:05d}", name) for name in marker["files"]]
        for path in files:
            for table in _read_staged(path, ["offset", "doc_id", "alive", "text_hash"]):
                for row in table.to_pylist():
                    n += 1
                    if row["doc_id"] is not None:
                        yield "row", small_row(index, row)
        for i, path in enumerate(files):
            yield "part", index, path, n if i == 0 else 0, marker["n_read"] if i == 0 else None, None
        if not files:
            yield "part", index, None, 0, marker["n_read"], None


def signals_chain(records: beam.PCollection, cfg: Config) -> beam.PCollection:
    """Every per-document stage on the reader's output, in order, as one linear fused chain."""
    def declared(phase: str) -> list[tuple[str, beam.DoFn]]:
        return [(stage.transform, _DeclaredStageFn(stage.name, stage.config_of(cfg))) for stage in in_phase(phase, cfg)]

    fns = declared("url")  # on the record as read: a page they remove is never parsed
    fns += [("ExtractText", _ExtractFn(cfg.extract, cfg.limits))]
    fns += declared("text")  # IdentifyLanguage first
    for name, fn in fns:
        records = records | name >> beam.ParDo(_OnKept(fn, name))
    tox = cfg.toxicity
    if tox.enabled:
        routes = tox.routes()
        if all(not is_hf_model_dir(model) and not cascade for model, cascade in routes.values()):
            records = (records | "ScoreToxicity/Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=64)
                       | "ScoreToxicity/Score" >> beam.ParDo(_ScoreKeptBatches(tox)))
        else:
            # A Hugging Face checkpoint runs through RunInference (its own, possibly GPU, workers): the
            # documents it scores leave the fused chain there and come back through a Flatten.
            from toxsieve.pipelines.runtime.inference import ScoreToxicity  # imports apache_beam.ml (torch)

            kept = records | "ScoreToxicity/Kept" >> beam.Filter(alive)
            rest = records | "ScoreToxicity/Rest" >> beam.Filter(lambda e: not alive(e))
            scored, removed = kept | "ScoreToxicity" >> ScoreToxicity(tox)
            records = (scored, removed, rest) | "ScoreToxicity/Merge" >> beam.Flatten()
    if cfg.near_dedup.enabled:
        records = (records
                   | "Sketch/Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=cfg.near_dedup.batch_size)
                   | "Sketch/Sketch" >> beam.ParDo(_SketchKeptBatches(cfg.near_dedup)))
    return records


# --- pass 2: decide ----------------------------------------------------------------------------


# Every per-document record of the decide pass is packed: fixed-size numpy records, gathered per
# bundle into a few bytes values per partition (``_to_chunks``), so a shuffle carries 10-20 bytes per
# record and no per-element overhead. A position (shard index << 40 | offset) names a document.
_POSITION_BITS = 40
_OFFSET_MASK = (1 << _POSITION_BITS) - 1
# little-endian: numpy turns a big-endian structured array into a native one when concatenating
_HASHED = np.dtype([("h1", "<u8"), ("h2", "<u8"), ("pos", "<u8")])  # a 128-bit hash and a position
_BAND = np.dtype([("khi", "<u4"), ("klo", "<u2"), ("pos", "<u8")])  # 48 bits of band key and a position
# On the wire a record drops the high 32 bits of its position, which its chunk's header carries: a
# chunk is one partition's records whose positions share them (shard index and offset >> 32), so a
# shuffled record costs 4 bytes of position (hashes 20 bytes, band keys 10) instead of 8.
_HASHED_WIRE = np.dtype([("h1", "<u8"), ("h2", "<u8"), ("plo", "<u4")])
_BAND_WIRE = np.dtype([("khi", "<u4"), ("klo", "<u2"), ("plo", "<u4")])
_CHUNK_HEADER = struct.Struct("<I")
_LOW32 = np.uint64(0xFFFFFFFF)
_BAND_MIX = np.uint64(0x9E3779B97F4A7C15)
_NODE = struct.Struct(">IQ")
_BAND_SLICES = 8  # the band-key shuffle is cut into at most this many shuffles (memory of a local runner)


def position(index: int, offset: int) -> int:
    if offset > _OFFSET_MASK or index >= 1 << (64 - _POSITION_BITS):
        raise ValueError(f"input position out of range: file #{index}, offset {offset}")
    return index << _POSITION_BITS | offset


def unposition(pos: int) -> tuple[int, int]:
    return pos >> _POSITION_BITS, pos & _OFFSET_MASK


def position_node(index: int, offset: int) -> bytes:
    """A near-dedup graph node: 12 bytes, ordered like the input."""
    return _NODE.pack(index, offset)


def node_position(node: bytes) -> tuple[int, int]:
    return _NODE.unpack(node)


def _to_chunks(records: np.ndarray, wire: np.dtype) -> Iterator[bytes]:
    """Records with a ``pos`` field -> wire chunks (a header of the positions' high 32 bits, then the
    records with only their low 32 bits)."""
    high = records["pos"] >> np.uint64(32)
    for hi in np.unique(high):
        chosen = records[high == hi]
        out = np.empty(len(chosen), dtype=wire)
        for name in wire.names:
            out[name] = chosen["pos"] & _LOW32 if name == "plo" else chosen[name]
        yield _CHUNK_HEADER.pack(int(hi)) + out.tobytes()


def _from_chunks(chunks: Iterable[bytes], dtype: np.dtype, wire: np.dtype) -> np.ndarray:
    """Wire chunks (any order) -> records of ``dtype`` with whole positions."""
    parts = []
    for chunk in chunks:
        (hi,) = _CHUNK_HEADER.unpack_from(chunk)
        got = np.frombuffer(chunk, dtype=wire, offset=_CHUNK_HEADER.size)
        records = np.empty(len(got), dtype=dtype)
        for name in wire.names:
            if name == "plo":
                records["pos"] = np.uint64(hi << 32) | got["plo"].astype(np.uint64)
            else:
                records[name] = got[name]
        parts.append(records)
    return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)


class _PackHashed(beam.DoFn):
    """Small rows -> (partition, packed records of (128-bit hash, position)), one value per partition
    per bundle. ``what``: ``doc_id`` (every document) or ``text`` (deduplication candidates)."""

    def __init__(self, what: str, n_partitions: int) -> None:
        self.what = what
        self.n_partitions = n_partitions

    def start_bundle(self) -> None:
        self._packed = bytearray()  # 24 bytes per document (20 on the wire), nothing else held

    def process(self, row: tuple[Any, ...]) -> Iterator[Any]:
        if self.what == "doc_id":
            digest = xxhash.xxh3_128_digest(row[0].encode("utf-8", "surrogatepass"))
        elif row[3] and row[4]:
            digest = bytes.fromhex(row[4])
        else:
            return iter(())
        self._packed += digest
        self._packed += position(row[1], row[2]).to_bytes(8, "little")
        return iter(())

    def finish_bundle(self) -> Iterator[Any]:
        if not self._packed:
            return
        records = np.frombuffer(bytes(self._packed), dtype=_HASHED)
        self._packed = bytearray()
        partition = records["h1"] % np.uint64(self.n_partitions)
        for p in np.unique(partition):
            for chunk in _to_chunks(records[partition == p], _HASHED_WIRE):
                yield _global((int(p), chunk))


def _runs(records: np.ndarray, keys: tuple[str, ...]) -> Iterator[np.ndarray]:
    """Groups of 2+ records with equal ``keys`` (records sorted by keys, then position)."""
    if len(records) < 2:
        return
    records = records[np.lexsort(tuple(records[k] for k in ("pos", *reversed(keys))))]
    change = np.zeros(len(records), dtype=bool)
    change[0] = True
    for k in keys:
        change[1:] |= records[k][1:] != records[k][:-1]
    starts = np.flatnonzero(change)
    ends = np.append(starts[1:], len(records))
    del change
    groups = (ends - starts) >= 2  # most keys are unique: only groups become Python objects
    for start, end in zip(starts[groups].tolist(), ends[groups].tolist(), strict=True):
        yield records[start:end]


def _renamed_positions(item: tuple[int, Iterable[bytes]], paths: list[str]) -> Iterator[tuple[int, int]]:
    """Of documents sharing an id (hash), all but the first in source order are renamed (doc_ids.py)."""
    records = _from_chunks(item[1], _HASHED, _HASHED_WIRE)
    for run in _runs(records, ("h1", "h2")):
        members = sorted((paths[i], o, i) for i, o in map(unposition, run["pos"].tolist()))
        for _, offset, index in members[1:]:
            yield position(index, offset), 1


def final_id(doc_id: str, index: int, offset: int, paths: list[str], renamed: dict[int, int]) -> str:
    return renamed_id(doc_id, paths[index], offset) if position(index, offset) in renamed else doc_id


def _exact_groups(item: tuple[int, Iterable[bytes]]) -> Iterator[tuple[int, tuple[str, int, bytes]]]:
    """Members of every text-hash group of 2+: (shard, ("dup", offset, group key)), to fetch their ids."""
    records = _from_chunks(item[1], _HASHED, _HASHED_WIRE)
    for run in _runs(records, ("h1", "h2")):
        group = run[:1].tobytes()[:16]  # the group's hash
        for pos in run["pos"].tolist():
            index, offset = unposition(pos)
            yield index, ("dup", offset, group)


def _shard_messages(messages: Iterable[tuple[Any, ...]]) -> tuple[list[str], dict[str, dict[int, Any]]]:
    """One shard's grouped messages: its staged files, and the other messages by kind and offset."""
    files: list[str] = []
    by_kind: dict[str, dict[int, Any]] = {}
    for m in messages:
        if m[0] == "part":
            if m[1] is not None:
                files.append(m[1])
        else:
            by_kind.setdefault(m[0], {})[m[1]] = m[2] if len(m) > 2 else None
    return sorted(files), by_kind


def _read_staged(path: str, columns: list[str], offsets: Iterable[int] | None = None,
                 batch_rows: int = _READ_ROWS) -> Iterator[pa.Table]:
    """A staged file's columns, a few thousand rows at a time (only rows at ``offsets`` if given)."""
    wanted = None if offsets is None else pa.array(sorted(offsets), pa.int64())
    with FileSystems.open(path) as fh:
        for batch in pq.ParquetFile(fh).iter_batches(batch_size=batch_rows, columns=columns):
            table = pa.Table.from_batches([batch])
            if wanted is not None:
                table = table.filter(pc.is_in(table.column("offset"), wanted))
            if table.num_rows:
                yield table


class _FetchIdsFn(beam.DoFn):
    """Per shard: the (final) doc ids of its members of exact-duplicate groups, keyed by group."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths

    def process(self, item: tuple[int, Iterable[tuple[Any, ...]]],
                renamed: dict[int, int]) -> Iterator[tuple[bytes, tuple[str, int, int]]]:
        index, messages = item
        files, by_kind = _shard_messages(messages)
        groups = by_kind.get("dup", {})
        if not groups:
            return
        for staged in files:
            for table in _read_staged(staged, ["offset", "doc_id"], groups):
                for row in table.to_pylist():
                    offset = row["offset"]
                    yield groups[offset], (final_id(row["doc_id"], index, offset, self.paths, renamed), index,
                                           offset)


def _exact_keeper(item: tuple[bytes, Iterable[tuple[str, int, int]]],
                  paths: list[str]) -> Iterator[tuple[int, tuple[Any, ...]]]:
    """One text-hash group: ``(shard, ("exact", offset, (keeper id, keeper shard, keeper offset)))`` for
    every member but the keeper, the smallest (doc_id, source_path, offset) as in ``dedup_exact``."""
    members = list(item[1])
    keeper_id, keeper_index, keeper_offset = min(members, key=lambda m: (m[0], paths[m[1]], m[2]))
    for doc_id, index, offset in members:
        if (doc_id, index, offset) != (keeper_id, keeper_index, keeper_offset):
            yield index, ("exact", offset, (keeper_id, keeper_index, keeper_offset))


class _ShardBandsFn(beam.DoFn):
    """Per shard: the band keys of its documents still in the running after exact dedup, packed per
    band partition (48 bits of key + the position's low 32 bits: 10 bytes per band, ``_BAND_WIRE``)."""

    def __init__(self, n_partitions: int) -> None:
        self.n_partitions = n_partitions

    def process(self, item: tuple[int, Iterable[tuple[Any, ...]]]) -> Iterator[tuple[int, bytes]]:
        index, messages = item
        files, by_kind = _shard_messages(messages)
        exact = by_kind.get("exact", {})
        exact_offsets = pa.array(sorted(exact), pa.int64()) if exact else None
        for path in files:
            for table in _read_staged(path, ["offset", "alive", "bands"]):
                yield from self._pack(index, table, exact_offsets)

    def _pack(self, index: int, table: pa.Table, exact: pa.Array | None) -> Iterator[tuple[int, bytes]]:
        keep = pc.and_(pc.fill_null(table.column("alive"), False), pc.is_valid(table.column("bands")))
        if exact is not None:
            keep = pc.and_(keep, pc.invert(pc.is_in(table.column("offset"), exact)))
        table = table.filter(keep)
        if table.num_rows == 0:
            return
        bands = table.column("bands").combine_chunks()
        flat = b"".join(pc.list_flatten(bands).to_pylist())  # 2-byte band index + 8-byte hash each
        raw = np.frombuffer(flat, dtype=[("band", ">u2"), ("hash", ">u8")])
        key = raw["hash"].astype(np.uint64) ^ (raw["band"].astype(np.uint64) * _BAND_MIX)
        offsets = np.repeat(table.column("offset").to_numpy().astype(np.uint64),
                            pc.list_value_length(bands).to_numpy(zero_copy_only=False))
        position(index, int(offsets.max()))  # in range, or a clear error
        records = np.empty(len(raw), dtype=_BAND)
        records["khi"] = (key >> np.uint64(32)).astype(np.uint32)
        records["klo"] = ((key >> np.uint64(16)) & np.uint64(0xFFFF)).astype(np.uint16)
        records["pos"] = (np.uint64(position(index, 0))) | offsets
        partition = key % np.uint64(self.n_partitions)
        for p in np.unique(partition):
            for chunk in _to_chunks(records[partition == p], _BAND_WIRE):
                yield int(p), chunk


def _link_packed(item: tuple[int, Iterable[bytes]], max_bucket_size: int) -> Iterator[tuple[bytes, bytes]]:
    """Candidate edges of one band partition: each run of 2+ equal keys is a bucket (a 48-bit key may
    join unrelated documents now and then: verification drops those candidates)."""
    records = _from_chunks(item[1], _BAND, _BAND_WIRE)
    for run in _runs(records, ("khi", "klo")):
        members = [position_node(*unposition(pos)) for pos in run["pos"].tolist()]
        yield from _link_bucket((b"", members), max_bucket_size)


class _FetchSketchesFn(beam.DoFn):
    """Per shard: the sketches of its candidate nodes, read back from staging, with final ids."""

    def __init__(self, cfg: NearDedupConfig, paths: list[str]) -> None:
        self.cfg = cfg
        self.paths = paths

    def process(self, item: tuple[int, Iterable[tuple[Any, ...]]],
                renamed: dict[int, int]) -> Iterator[tuple[bytes, tuple[Any, ...]]]:
        index, messages = item
        files, by_kind = _shard_messages(messages)
        wanted = by_kind.get("node", {})
        if not wanted:
            return
        path = self.paths[index]
        for staged in files:
            for table in _read_staged(staged, ["offset", "doc_id", "text_len", "signature", "shingles"], wanted):
                for row in table.to_pylist():
                    offset = row["offset"]
                    doc_id = final_id(row["doc_id"], index, offset, self.paths, renamed)
                    rank = keeper_rank(self.cfg.keeper, doc_id, path, offset, row["text_len"] or 0)
                    yield position_node(index, offset), (doc_id, rank, row["signature"], row["shingles"])


def _endpoints(edge: tuple[bytes, bytes]) -> Iterator[tuple[int, tuple[str, int]]]:
    for node in edge:
        index, offset = node_position(node)
        yield index, ("node", offset)


def _rename_message(kv: tuple[int, int]) -> tuple[int, tuple[str, int]]:
    index, offset = unposition(kv[0])
    return index, ("rename", offset)


def decide(messages: beam.PCollection, cfg: Config, paths: list[str],
           meters: Meters | None = None, n_partitions: int = 1) -> beam.PCollection:
    """(shard, [decision messages]) for every input shard, from packed small keys only. With
    ``meters`` (a list), the bytes entering every shuffle are counted there (``shuffle_meter``)."""
    rows = messages | "Rows" >> beam.FlatMap(lambda m: [m[1]] if m[0] == "row" else [])
    parts = messages | "Parts" >> beam.FlatMap(lambda m: [(m[1], ("part", m[2], m[3], m[4], m[5]))] if m[0] == "part"
                                               else [])
    renames = (rows
               | "PackIds" >> beam.ParDo(_PackHashed("doc_id", n_partitions))
               | "GroupByIdPartition" >> MeteredGroupByKey(meters)
               | "RenameLaterIds" >> beam.FlatMap(_renamed_positions, paths))
    renamed = beam.pvalue.AsDict(renames)
    decisions = [parts, renames | "RenameMessages" >> beam.Map(_rename_message)]
    exact = None
    if cfg.exact_dedup.enabled:
        dup_members = (rows
                       | "PackTextHashes" >> beam.ParDo(_PackHashed("text", n_partitions))
                       | "GroupByTextHashPartition" >> MeteredGroupByKey(meters)
                       | "DuplicateGroups" >> beam.FlatMap(_exact_groups))
        exact = ((parts, dup_members)
                 | "IdRequests" >> beam.Flatten()
                 | "GroupByShardForIds" >> MeteredGroupByKey(meters)
                 | "FetchIds" >> beam.ParDo(_FetchIdsFn(paths), renamed)
                 | "GroupByTextHash" >> MeteredGroupByKey(meters)
                 | "KeepOnePerHash" >> beam.FlatMap(_exact_keeper, paths))
        decisions.append(exact)
    if cfg.near_dedup.enabled:
        near_cfg = cfg.near_dedup
        per_shard = [parts] if exact is None else [
            parts, exact | "ExactOffsets" >> beam.Map(lambda kv: (kv[0], ("exact", kv[1][1])))]
        packed = (per_shard
                  | "BandInputs" >> beam.Flatten()
                  | "GroupByShardForBands" >> MeteredGroupByKey(meters)
                  | "PackBandKeys" >> beam.ParDo(_ShardBandsFn(n_partitions)))
        # The band keys are the largest shuffle (~170 bytes per document). A local runner holds a shuffle's
        # whole grouped output, in several copies, while its consumer runs: as a few shuffles (run one
        # after another) the copies are of one slice at a time. Same groups, same edges, any slicing.
        n_slices = min(_BAND_SLICES, n_partitions)
        linked = []
        for i in range(n_slices):
            label = "GroupByBandPartition" if n_slices == 1 else f"GroupByBandPartition{i}"
            linked.append(packed
                          | f"BandSlice{i}" >> beam.Filter(lambda kv, i=i: kv[0] % n_slices == i)
                          | label >> MeteredGroupByKey(meters, "GroupByBandPartition")
                          | f"LinkBuckets{i}" >> beam.FlatMap(_link_packed, near_cfg.max_bucket_size))
        edges = linked[0] if n_slices == 1 else linked | "AllCandidateEdges" >> beam.Flatten()
        sketches = ((parts, edges | "CandidateNodes" >> beam.FlatMap(_endpoints))
                    | "SketchRequests" >> beam.Flatten()
                    | "GroupByShardForSketches" >> MeteredGroupByKey(meters)
                    | "FetchSketches" >> beam.ParDo(_FetchSketchesFn(near_cfg, paths), renamed))
        decisions.append(
            (edges, sketches)
            | "NearDuplicates" >> ClusterCandidates(near_cfg, meters)
            | "NearMessages" >> beam.Map(lambda kv: (node_position(kv[0])[0],
                                                     ("near", node_position(kv[0])[1], kv[1]))))
    return decisions | "AllDecisions" >> beam.Flatten() | "GroupByShard" >> MeteredGroupByKey(meters)


# --- pass 3: materialise -----------------------------------------------------------------------

_TOXICITY_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Document) if f.name.startswith("toxicity_")}


def _without_toxicity(doc: Document) -> Document:
    """A duplicate is removed before toxicity in the stage order: it carries no toxicity signals."""
    return dataclasses.replace(doc, **_TOXICITY_DEFAULTS)


def apply_decisions(doc: Document, renamed: str | None, exact: Any, near: ClusterDecision | None,
                    cfg: Config) -> Document:
    """A staged document with the decide pass's verdicts, in stage order."""
    if renamed is not None:
        doc = dataclasses.replace(doc, doc_id=renamed, input_doc_id=doc.doc_id)
    if not _dedup_candidate(doc):
        return doc
    if exact is not None:
        return _without_toxicity(doc).removed(exact)
    if cfg.near_dedup.enabled:
        toxicity_removal = doc.removal
        out = apply_decision(dataclasses.replace(doc, removal=None), near, cfg.near_dedup)
        if out.removal is not None:
            return _without_toxicity(out)
        return dataclasses.replace(out, removal=toxicity_removal)
    return doc


class _RollingWriter:
    """Rows of one output directory for one input shard: files of about the target size.

    Rows become Arrow record batches every ``_FLUSH_ROWS`` rows (a Python dict per row costs several
    times its payload: the kept/ writer of a 6,250-document file peaked at 57 MB with dicts, 29 MB with
    batches); a row group is written at ``output.row_group_rows`` rows or ``_ROW_GROUP_BYTES`` of
    payload, and a file ends before the row that would take it past 1.25 × ``output.shard_target_bytes``.
    """

    def __init__(self, directory: str, name: str, index: int, n_shards: int, cfg: OutputConfig) -> None:
        self.directory, self.name, self.index, self.n_shards, self.cfg = directory, name, index, n_shards, cfg
        self.schema = _SCHEMAS[name]
        self.limit = int(cfg.shard_target_bytes * 1.25)
        self.compression = None if cfg.compression == "none" else cfg.compression
        self.seq = 0
        self.rows: list[Row] = []  # not yet converted
        self.batches: list[pa.RecordBatch] = []  # converted, not yet written
        self.n_pending = 0  # rows in rows + batches
        self.size = 0  # payload of the current file, written or not
        self.pending = 0  # payload of the rows not yet written
        self.n_file = 0  # rows of the current file already written
        self._open: tuple[str, str, Any, pq.ParquetWriter] | None = None
        self.written: list[tuple[str, int]] = []

    def add(self, row: Row) -> None:
        size = row_size(row)
        # past the target: end the file, whether or not a row group of it was written yet (a target
        # smaller than one row group still bounds the file)
        if self.size + size > self.limit and self.n_file + self.n_pending > 0:
            self._finish()
        self.rows.append(row)
        self.n_pending += 1
        self.size += size
        self.pending += size
        if len(self.rows) >= _FLUSH_ROWS:
            self._convert()
        if self.n_pending >= self.cfg.row_group_rows or self.pending >= _ROW_GROUP_BYTES:
            self._flush()

    def _convert(self) -> None:
        if self.rows:
            self.batches.append(pa.RecordBatch.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def _flush(self) -> None:
        """Write the pending rows as one row group."""
        self._convert()
        if not self.batches:
            return
        if self._open is None:
            final = FileSystems.join(self.directory, self.name,
                                     f"part-{self.index:05d}-of-{self.n_shards:05d}-{self.seq:03d}.parquet")
            tmp = FileSystems.join(self.directory, self.name, f".tmp-{uuid.uuid4().hex[:12]}-{self.seq:03d}.parquet")
            stream = FileSystems.create(tmp)
            self._open = (final, tmp, stream, pq.ParquetWriter(stream, self.schema, compression=self.compression))
        # written as the batches are (combining them into one chunk per column costs a copy of the row
        # group and more: 57 vs 29 MB for a 6,250-document file); the bytes depend only on the rows
        table = pa.Table.from_batches(self.batches, schema=self.schema)
        self.batches = []
        self._open[3].write_table(table, row_group_size=max(1, table.num_rows))
        self.n_file += table.num_rows
        self.n_pending = 0
        self.pending = 0

    def _finish(self) -> None:
        self._flush()
        if self._open is None:
            return
        final, tmp, stream, writer = self._open
        writer.close()
        stream.close()
        if FileSystems.exists(final):
            FileSystems.delete([final])
        FileSystems.rename([tmp], [final])
        self.written.append((final, self.n_file))
        self._open, self.n_file, self.size, self.seq = None, 0, 0, self.seq + 1

    def close(self) -> list[tuple[str, int]]:
        if self.n_pending or self._open is not None:
            self._finish()
        return self.written


def _in_source_order(path: str) -> bool:
    order = pa.concat_tables(list(_read_staged(path, ["offset", "seq"])) or [STAGED_SCHEMA.empty_table()
                                                                            .select(["offset", "seq"])])
    offsets, seqs = order.column("offset").to_numpy(), order.column("seq").to_numpy()
    step = np.diff(offsets)
    return bool(np.all((step > 0) | ((step == 0) & (np.diff(seqs) > 0))))


def _staged_records(staging: str, index: int, files: list[str]) -> Iterator[Any]:
    """The shard's staged records in source order (offset, then reader order). One file written by a
    fused chain is in that order already and is streamed; several parts (a chain that left the fused
    path, e.g. through RunInference) are loaded and sorted."""
    if len(files) == 1 and _in_source_order(files[0]):
        for table in _read_staged(files[0], ["record"], batch_rows=_FLUSH_ROWS):
            for record in table.column("record").to_pylist():
                yield pickle.loads(record)  # noqa: S301 - written by this run's own staging pass
        return
    tables = []
    for path in files:
        with FileSystems.open(path) as fh:
            tables.append(pq.read_table(fh, columns=["offset", "seq", "record"]))
    if not tables:
        return
    table = pa.concat_tables(tables)
    order = pa.compute.sort_indices(table, sort_keys=[("offset", "ascending"), ("seq", "ascending")])
    records = table.column("record")
    for start in range(0, len(order), 1024):
        for i in order[start:start + 1024].to_pylist():
            yield pickle.loads(records[i].as_py())  # noqa: S301 - written by this run's own staging pass


class _MaterialiseFn(beam.DoFn):
    def __init__(self, cfg: Config, output: str, staging: str, paths: list[str], run_id: str) -> None:
        self.cfg = cfg
        self.output = output
        self.staging = staging
        self.paths = paths
        self.run_id = run_id

    def setup(self) -> None:
        self._order = stage_order(self.cfg)
        self._fast = self.cfg.toxicity.threshold_for

    def process(self, item: tuple[int, Iterable[tuple[Any, ...]]]) -> Iterator[tuple[str, Any]]:
        started = time.perf_counter()
        index, messages = item
        files: list[str] = []
        n_read: int | None = None
        n_staged = 0
        spent_us: Counter[str] = Counter()
        renamed: set[int] = set()
        exact: dict[int, Any] = {}
        near: dict[int, ClusterDecision] = {}
        for message in messages:
            kind = message[0]
            if kind == "part":
                _, path, n, read, seconds = message
                for name, spent in (seconds or {}).items():  # resumed shards: spent by an earlier attempt
                    spent_us[f"{SECONDS_KEY}/{name}"] += round(spent * 1e6)
                if path is not None:
                    files.append(path)
                n_staged += n
                if read is not None:
                    n_read = read
            elif kind == "rename":
                renamed.add(message[1])
            elif kind == "exact":
                keeper_id, keeper_index, keeper_offset = message[2]
                exact[message[1]] = exact_duplicate_removal(keeper_id, self.paths[keeper_index], keeper_offset)
            else:
                near[message[1]] = message[2]
        counts: Counter[str] = spent_us
        counts["read"] = n_read or 0
        counts["staged"] = n_staged
        counts["shards"] = 1
        writers = {name: _RollingWriter(self.output, name, index, len(self.paths), self.cfg.output)
                   for name in OUTPUT_DIRS}
        for record in _staged_records(self.staging, index, sorted(files)):
            if isinstance(record, DeadLetter):
                counts["dead_letter"] += 1
                counts[f"dead_letter/{record.error_type}"] += 1
                writers["dead_letter"].add(dead_letter_row(record, self.run_id))
                continue
            offset = record.source_offset
            new_id = renamed_id(record.doc_id, record.source_path, offset) if offset in renamed else None
            doc = apply_decisions(record, new_id, exact.get(offset), near.get(offset), self.cfg)
            if doc.removal is not None and doc.removal.stage in (Stage.EXACT_DEDUP, Stage.NEAR_DEDUP):
                count_removal(doc)
            meta = metadata_row(doc)
            writers["metadata"].add(meta)
            if doc.removal is None:
                writers["kept"].add(curated_row(doc))
            else:
                writers["removed"].add(audit_row(doc, self.run_id, self.cfg.output))
            counts.update(funnel_keys(meta, self._fast))
            for key, n in stat_keys(meta):
                counts[key] += n
            self._tally(doc, counts)
        for name, writer in writers.items():
            for path, n in writer.close():
                counts[f"written/{name}"] += n
                counts[f"files/{name}"] += 1
                yield "file", (name, path, n)
        counts[f"{SECONDS_KEY}/Materialise"] += round((time.perf_counter() - started) * 1e6)
        progress.PROGRESS.add("materialised_shards")
        progress.mark_file_done(progress.progress_dir(self.output), self.paths[index], written=True)
        yield "counts", dict(counts)

    def _tally(self, doc: Document, counts: Counter[str]) -> None:
        """stage/<Stage>/in|kept|removed from where the document's removal happened (read removals: none)."""
        stage = doc.removal.stage.value if doc.removal is not None else None
        if stage == Stage.READ.value:
            return
        for name, value in self._order:
            counts[f"{STAGE_KEY}/{name}/in"] += 1
            if value == stage:
                counts[f"{STAGE_KEY}/{name}/removed"] += 1
                return
            counts[f"{STAGE_KEY}/{name}/kept"] += 1


def _sum_counts(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for c in counts:
        total.update(c)
    return dict(sorted(total.items()))


def materialise(decisions: beam.PCollection, cfg: Config, output: str, staging: str, paths: list[str],
                run_id: str, counts_path: str, meters: Meters | None = None) -> beam.PCollection:
    """Writes every shard's outputs; its counts, and the shuffle byte counts of ``meters``, to ``counts_path``."""
    results = decisions | "Materialise" >> beam.ParDo(_MaterialiseFn(cfg, output, staging, paths, run_id))
    counts = results | "ShardCounts" >> beam.FlatMap(lambda m: [m[1]] if m[0] == "counts" else [])
    if meters:
        counts = (counts, *meters) | "WithShuffleBytes" >> beam.Flatten()
    return (counts
            | "SumCounts" >> beam.CombineGlobally(_sum_counts).without_defaults()
            | "WriteCounts" >> beam.Map(_write_counts, counts_path))


def _write_counts(counts: dict[str, int], path: str) -> str:
    with FileSystems.create(path) as fh:
        fh.write(json.dumps(counts, indent=1, sort_keys=True).encode())
    return path


__all__ = ["OUTPUT_DIRS", "STAGING_DIR", "ShardEnd", "decide", "materialise", "signals_chain",
           "stage_order"]
