"""The thin Beam shell: one labelled PTransform per stage, each wrapping a pure core function.

Every filtering stage returns two PCollections, ``(kept, removed)``. They are split with two
single-output ParDos rather than a multi-output ParDo, because Beam's DaskRunner hands every
tagged output to every consumer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import apache_beam as beam
import pyarrow as pa
import xxhash
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.utils import shared

from toxsieve.pipelines.config import (
    ExactDedupConfig,
    ExtractConfig,
    InputConfig,
    LanguageConfig,
    LimitsConfig,
    OutputConfig,
    UrlBlocklistConfig,
)
from toxsieve.pipelines.document import DeadLetter, Document
from toxsieve.pipelines.io.outputs import Row, row_sort_key, write_parquet_shards
from toxsieve.pipelines.io.readers import detect_format, read_shard
from toxsieve.pipelines.runtime import progress
from toxsieve.pipelines.runtime.bounds import ExtractionWorker
from toxsieve.pipelines.runtime.doc_ids import id_key, make_ids_unique
from toxsieve.pipelines.stages.blocklists import UrlBlocklist, apply_url_blocklist
from toxsieve.pipelines.stages.dedup_exact import resolve_exact_duplicates
from toxsieve.pipelines.stages.extract import extract_document
from toxsieve.pipelines.stages.language import apply_language

Split = tuple[beam.PCollection, beam.PCollection]


def count_removal(doc: Document) -> None:
    """Beam counter (stage, reason) and a progress count for a removed document; no-op if kept."""
    if doc.removal is not None:
        Metrics.counter(doc.removal.stage.value, doc.removal.reason.value).inc()
        progress.PROGRESS.add(f"removed.{doc.removal.reason.value}")


class SplitRemovals(beam.PTransform):
    """(kept, removed) from a PCollection of Documents, by ``doc.removal``."""

    def expand(self, docs: beam.PCollection) -> Split:
        kept = docs | "Kept" >> beam.FlatMap(lambda d: [d] if d.removal is None else [])
        removed = docs | "Removed" >> beam.FlatMap(lambda d: [d] if d.removal is not None else [])
        return kept, removed


class PerDocumentStage(beam.PTransform):
    """A stage that decides each document on its own: ``ParDo(fn(cfg))`` then (kept, removed).

    Subclasses name the step and the DoFn class; the DoFn takes the stage's config section.
    """

    step: str
    fn: type[beam.DoFn]

    def __init__(self, cfg: Any) -> None:
        super().__init__()
        self.cfg = cfg

    def expand(self, docs: beam.PCollection) -> Split:
        return docs | self.step >> beam.ParDo(type(self).fn(self.cfg)) | SplitRemovals()


# --- reading ---------------------------------------------------------------


class _ReadShardFn(beam.DoFn):
    def __init__(self, cfg: InputConfig, progress_dir: str | None = None) -> None:
        self.cfg = cfg
        self.progress_dir = progress_dir  # where a finished file is marked for the run-wide progress line

    def process(self, readable: fileio.ReadableFile) -> Iterator[Document | DeadLetter]:
        path = readable.metadata.path
        fmt = detect_format(path, self.cfg.format)
        try:
            stream = readable.open(compression_type="uncompressed")
        except Exception as exc:  # noqa: BLE001 - an unreadable file is a dead letter, not a crash
            yield DeadLetter(path, 0, fmt, type(exc).__name__, f"cannot open shard: {exc}")
            self._mark_done(path)
            return
        with stream:
            for record in read_shard(stream, path, fmt, self.cfg):
                progress.PROGRESS.add("read")
                if isinstance(record, DeadLetter):
                    Metrics.counter("read", "dead_letter").inc()
                else:
                    Metrics.counter("read", "documents").inc()
                yield record
        self._mark_done(path)

    def _mark_done(self, path: str) -> None:
        if self.progress_dir is not None:
            progress.mark_file_done(self.progress_dir, path)


class ReadCrawlShards(beam.PTransform):
    """Every record of every matched shard as a Document or a DeadLetter (then split)."""

    def __init__(self, patterns: list[str], cfg: InputConfig, progress_dir: str | None = None) -> None:
        super().__init__()
        self.patterns = patterns
        self.cfg = cfg
        self.progress_dir = progress_dir

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        return (
            pbegin
            | "Patterns" >> beam.Create(sorted(set(self.patterns)))
            | "MatchFiles" >> fileio.MatchAll()
            | "ReadMatches" >> fileio.ReadMatches()
            | "ReadShards" >> beam.ParDo(_ReadShardFn(self.cfg, self.progress_dir))
            # One shard is read by one worker; spread its records before the heavy stages. The
            # shuffle is keyed by doc_id (not at random) so that documents sharing an id meet and
            # all but the first in source order are renamed (pipelines/runtime/doc_ids.py): no extra shuffle.
            | "KeyByDocId" >> beam.Map(lambda r: (id_key(r), r))
            | "Rebalance" >> beam.GroupByKey()
            | "UniqueDocIds" >> beam.FlatMap(lambda kv: make_ids_unique(kv[1]))
        )


class SplitDeadLetters(beam.PTransform):
    """(documents, dead letters) from the reader's output."""

    def expand(self, records: beam.PCollection) -> Split:
        docs = records | "Documents" >> beam.FlatMap(lambda r: [r] if isinstance(r, Document) else [])
        dead = records | "DeadLetters" >> beam.FlatMap(lambda r: [r] if isinstance(r, DeadLetter) else [])
        return docs, dead


# --- stages ----------------------------------------------------------------


class _ExtractFn(beam.DoFn):
    def __init__(self, cfg: ExtractConfig, limits: LimitsConfig | None = None) -> None:
        self.cfg = cfg
        self.limits = limits or LimitsConfig()
        self._worker: ExtractionWorker | None = None

    def setup(self) -> None:
        # One time-limited extraction process per DoFn instance, started on the first complex page.
        self._worker = ExtractionWorker(self.limits.extract_timeout_s)

    def process(self, doc: Document) -> Iterator[Document]:
        out = extract_document(doc, self.cfg, self.limits, self._worker.extract if self._worker else None)
        progress.PROGRESS.add("extracted")
        count_removal(out)
        yield out

    def teardown(self) -> None:
        if self._worker is not None:
            self._worker.close()


class ExtractText(PerDocumentStage):
    """HTML → main text, normalisation, text hash, length floor (too_short / empty_text), and the
    per-record bounds of ``limits`` (html_too_complex / extraction_failed / text_too_long)."""

    step, fn = "Extract", _ExtractFn

    def __init__(self, cfg: ExtractConfig, limits: LimitsConfig | None = None) -> None:
        super().__init__(cfg)
        self.limits = limits

    def expand(self, docs: beam.PCollection) -> Split:
        return docs | self.step >> beam.ParDo(_ExtractFn(self.cfg, self.limits)) | SplitRemovals()


class _LanguageFn(beam.DoFn):
    def __init__(self, cfg: LanguageConfig) -> None:
        self.cfg = cfg
        self._lid: Any = None

    def setup(self) -> None:
        from toxsieve.classifiers.langid import FastTextLanguageIdentifier

        self._lid = FastTextLanguageIdentifier(self.cfg.model_path, self.cfg.max_chars)
        self._counters: dict[str, Any] = {}

    def process(self, doc: Document) -> Iterator[Document]:
        ((language, score),) = self._lid.predict([doc.text or ""])
        out = apply_language(doc, language, score, self.cfg)
        counter = self._counters.get(language)
        if counter is None:
            counter = self._counters[language] = Metrics.counter("language", f"detected.{language}")
        counter.inc()
        progress.PROGRESS.add("language")
        count_removal(out)
        yield out


class IdentifyLanguage(PerDocumentStage):
    """fastText LID-176: language + score on every document; allowed list and confidence floors."""

    step, fn = "Identify", _LanguageFn


def _resolve_group(item: tuple[str, Iterable[Document]]) -> Iterator[Document]:
    for doc in resolve_exact_duplicates(item[1]):
        count_removal(doc)
        yield doc


class DropExactDuplicates(beam.PTransform):
    """Group by the hash of the normalised text across the whole run; keep the smallest doc_id."""

    def __init__(self, cfg: ExactDedupConfig) -> None:
        super().__init__()
        self.cfg = cfg

    def expand(self, docs: beam.PCollection) -> Split:
        return (
            docs
            | "KeyByTextHash" >> beam.Map(lambda d: (d.text_hash, d))
            | "GroupByTextHash" >> beam.GroupByKey()
            | "KeepOnePerHash" >> beam.FlatMap(_resolve_group)
            | SplitRemovals()
        )


# --- writing ---------------------------------------------------------------


def shard_of(row: Row, n_shards: int) -> int:
    key = "\x00".join(str(k) for k in row_sort_key(row))
    return xxhash.xxh3_64_intdigest(key.encode("utf-8", "surrogatepass")) % n_shards


class _WriteShardFn(beam.DoFn):
    def __init__(self, directory: str, schema: pa.Schema, cfg: OutputConfig) -> None:
        self.directory = directory
        self.schema = schema
        self.cfg = cfg

    def process(self, item: tuple[int, Iterable[Row]], n_shards: int) -> Iterator[tuple[str, int]]:
        shard, rows = item
        directory = self.directory

        def make_path(seq: int) -> str:
            return FileSystems.join(directory, f"part-{shard:05d}-of-{n_shards:05d}-{seq:03d}.parquet")

        def rename(src: str, dst: str) -> None:
            if FileSystems.exists(dst):
                FileSystems.delete([dst])  # a retried bundle replaces its own earlier output
            FileSystems.rename([src], [dst])

        yield from write_parquet_shards(rows, self.schema, make_path, FileSystems.create, rename, self.cfg)


class WriteParquetShards(beam.PTransform):
    """Rows → zstd Parquet shards under ``directory``, sized from the data, sorted inside each file.

    Returns a PCollection of (file path, rows written). Written from ParDos after a GroupByKey
    (not ``WriteToParquet``), which every runner executes the same way.
    """

    def __init__(self, directory: str, schema: pa.Schema, to_row: Callable[[Any], Row], cfg: OutputConfig,
                 n_shards: int = 1, write_empty: bool = True) -> None:
        super().__init__()
        self.directory = directory
        self.schema = schema
        self.to_row = to_row
        self.cfg = cfg
        self.n_shards = max(1, n_shards)
        self.write_empty = write_empty

    def expand(self, items: beam.PCollection) -> beam.PCollection:
        # The shard count is fixed up front (from the input size, on the driver), not from a side
        # input: a side input would make the runner hold every row before assigning shards.
        # Files stay size-bounded by rolling over inside a shard.
        n_shards = self.n_shards
        rows = items | "ToRow" >> beam.Map(self.to_row)
        written = (
            rows
            | "AssignShard" >> beam.Map(lambda r: (shard_of(r, n_shards), r))
            | "GroupByShard" >> beam.GroupByKey()
            | "WriteShard" >> beam.ParDo(_WriteShardFn(self.directory, self.schema, self.cfg), n_shards=n_shards)
        )
        if not self.write_empty:
            return written
        # An empty output still gets one (empty) file with the schema, so readers never fail on it.
        empty = (
            rows
            | "Count" >> beam.combiners.Count.Globally()
            | "IfEmpty" >> beam.FlatMap(lambda n: [(0, [])] if n == 0 else [])
            | "WriteEmpty" >> beam.ParDo(_WriteShardFn(self.directory, self.schema, self.cfg), n_shards=n_shards)
        )
        return (written, empty) | "AllFiles" >> beam.Flatten()


# --- stats -----------------------------------------------------------------


def funnel_keys(meta: Row, fast_threshold: Callable[[str | None], float] | None = None) -> Iterator[str]:
    """Stats keys for one metadata row. ``fast_threshold(language)`` is the fast model's threshold
    (``ToxicityConfig.threshold_for``): a cascade counts agreement at it, not at the second model's."""
    yield "documents"
    yield f"decision/{meta['decision']}"
    if meta["stage"]:
        yield f"removed/{meta['stage']}/{meta['reason']}"
    lang = meta["language"] or "und"
    yield f"language/{meta['decision']}/{lang}"
    yield f"format/{meta['source_format']}"
    if meta.get("toxicity_supported") is False:
        yield f"toxicity/unsupported/{lang}"
    if meta.get("toxicity_model"):
        yield "toxicity/scored"
        yield f"toxicity/scored_language/{lang}"
        yield f"toxicity/model/{meta['toxicity_model']}"
        if meta.get("toxicity_flagged"):
            yield "toxicity/flagged"
        if meta.get("toxicity_fast_score") is not None:
            yield "toxicity/cascade/sent"
            threshold = fast_threshold(meta["language"]) if fast_threshold else meta["toxicity_threshold"]
            fast_flag = meta["toxicity_fast_score"] >= threshold
            if fast_flag == bool(meta.get("toxicity_flagged")):
                yield "toxicity/cascade/agree"


STAGE_KEY = "stage"  # _counts.json keys stage/<Stage>/in|kept|removed|inner/<what>


def inner_tally(pcoll: beam.PCollection, stage: str, what: str, label: str) -> beam.PCollection:
    """(key, n) per batch inside a stage: ``stage/<Stage>/inner/<what>`` must equal the stage's input.
    Counted from what reached that step (a batch's length), so a runner that loses elements between
    the stage's input and that step fails the run."""
    key = f"{STAGE_KEY}/{stage}/inner/{what}"
    return pcoll | label >> beam.Map(lambda batch: (key, len(batch)))


def stage_balance_checks(counts: dict[str, int]) -> dict[str, bool]:
    """Per stage, from the data: in == kept + removed, and every inner count == in."""
    checks: dict[str, bool] = {}
    names = sorted({k.split("/")[1] for k in counts if k.startswith(STAGE_KEY + "/")})
    for name in names:
        n_in = counts.get(f"{STAGE_KEY}/{name}/in", 0)
        kept, removed = counts.get(f"{STAGE_KEY}/{name}/kept", 0), counts.get(f"{STAGE_KEY}/{name}/removed", 0)
        checks[f"{name}: in == kept + removed"] = n_in == kept + removed
        for key in sorted(k for k in counts if k.startswith(f"{STAGE_KEY}/{name}/inner/")):
            checks[f"{name}: {key.rsplit('/', 1)[1]} == in"] = counts[key] == n_in
    return checks


def _write_json(path: str, obj: dict[str, Any]) -> str:
    with FileSystems.create(path) as fh:
        fh.write(json.dumps(obj, indent=1, sort_keys=True).encode())
    return path


# --- blocklists ------------------------------------------------------------


class _UrlBlocklistFn(beam.DoFn):
    def __init__(self, cfg: UrlBlocklistConfig) -> None:
        self.cfg = cfg
        self._shared = shared.Shared()  # one list per worker process, shared by its threads
        self._blocklist: Any = None

    def setup(self) -> None:
        cfg = self.cfg

        def load() -> UrlBlocklist:
            return UrlBlocklist.load(cfg.lists, cfg.categories, cfg.allowlist,
                                     cfg.url_words_dir if cfg.banned_url_words else None, cfg.soft_word_threshold)

        self._blocklist = self._shared.acquire(load)

    def process(self, doc: Document) -> Iterator[Document]:
        out = apply_url_blocklist(doc, self._blocklist)
        progress.PROGRESS.add("url_checked")
        count_removal(out)
        yield out


class ApplyUrlBlocklists(PerDocumentStage):
    """UT1 domain/URL lists (host and every parent domain), allowlist first, banned URL words.

    Runs before ExtractText: a blocked page is never parsed.
    """

    step, fn = "MatchUrl", _UrlBlocklistFn
