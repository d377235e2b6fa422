"""Benchmark the curation pipeline (issue #3): Beam through the real CLI next to a plain-Python loop.

Usage: .venv/bin/python bench/pipeline_bench.py [--docs N] [--shards K] [--repeat R] [--corpus GLOB]
                                                [--out docs/benchmarks.md]

What it does, in one run:
  1. Builds (or reuses from out/bench/pipeline/corpus/) a seeded corpus of JSONL.gz shards. Its text is
     recombined from real sentences: the documents in tests/fixtures/crawl, read with the project's
     readers, extracted with ``html_to_text`` and normalised with ``normalize_text``, split into
     sentences and sorted into per-language pools with the shipped fastText LID model.
  2. Runs, alternating the order and repeating: a plain single-process loop over the same pure core
     functions (read_shard -> extract_document -> LID (the declared language stage's run_stage) -> exact-dedup dict ->
     Parquet), the same loop with the per-shard work split across 2 processes, and
     ``toxsieve run`` (the CLI, in a subprocess) with the in_memory 1-worker and the
     2-worker multi_processing Beam modes.
  3. Samples the resident memory of each run's whole process tree every 0.2 s from /proc.
  4. Runs the same documents laid out as a few big shards and as many small shards, to see
     whether peak memory follows the size of one shard.
  5. Rewrites its own block in the "Pipeline throughput (issue #3)" section of --out and leaves
     everything else in that file alone.

Only the project and the standard library are used (no psutil, no external bench harness).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import math
import multiprocessing
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import pyarrow as pa
import xxhash
import yaml

from toxsieve.classifiers.langid import FastTextLanguageIdentifier
from toxsieve.pipelines.config import Config, InputConfig, config_from_dict, load_config
from toxsieve.pipelines.document import DeadLetter, Document
from toxsieve.pipelines.io.outputs import (
    Row,
    audit_row,
    curated_row,
    dead_letter_row,
    local_open_for_write,
    metadata_row,
    row_size,
    row_sort_key,
    write_parquet_shards,
)
from toxsieve.pipelines.io.readers import UnknownFormatError, detect_format, read_shard
from toxsieve.pipelines.stages.apply import run_stage
from toxsieve.pipelines.stages.dedup_exact import resolve_exact_duplicates
from toxsieve.pipelines.stages.extract import extract_document, html_to_text, normalize_text
from toxsieve.pipelines.stages.language import STAGE as LANGUAGE
from toxsieve.schemas import AUDIT_SCHEMA, CURATED_SCHEMA, DEAD_LETTER_SCHEMA, METADATA_SCHEMA

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script: make `bench` importable

from bench.common import cpu_model  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "crawl"
WORK_DIR = REPO / "out" / "bench" / "pipeline"
DEFAULT_OUT = REPO / "docs" / "benchmarks.md"
TOXSIEVE = Path(sys.executable).parent / "toxsieve"

SECTION_TITLE = "## Pipeline throughput (issue #3)"
START = "<!-- bench:pipeline:start -->"
END = "<!-- bench:pipeline:end -->"
NOTES_START = "<!-- bench:pipeline:notes:start -->"
NOTES_END = "<!-- bench:pipeline:notes:end -->"
BLOCK_START = re.compile(r"<!-- bench:pipeline:run (?P<key>[^ ]+) -->")
BLOCK_END = "<!-- bench:pipeline:run:end -->"

GENERATOR_VERSION = 1  # bump when the corpus generator changes: it is part of the cache key
MB = 1_000_000
TARGET_RATIO = 0.7  # issue #3: Beam with 2 workers >= 0.7x the plain loop
MEMORY_GOAL_BYTES = 4 * 1024**3  # issue #3: < 4 GB at 100k documents
MEMORY_GOAL_DOCS = 100_000

# Language mix of the generated corpus (of the languages the fixtures have enough sentences for;
# they hold no French). Weights are renormalised over the languages actually present.
LANGUAGE_WEIGHTS = {"en": 0.80, "zh": 0.06, "ru": 0.05, "de": 0.04, "es": 0.03, "nl": 0.02}
MIN_POOL_SENTENCES = 10
MEAN_DOC_BYTES = 2_600
LENGTH_SIGMA = 1.0  # lognormal shape: median ~ 0.6 x mean, a long right tail
MAX_DOC_BYTES = 200_000
DUPLICATE_RATE = 0.03  # share of documents that repeat an earlier one (half byte-identical, half by whitespace)
CJK = {"zh", "ja"}

SAME_WORK_MODES = ("plain-1p", "plain-2p", "beam-1w", "beam-2w")
DEFAULTS_MODE = "beam-2w-defaults"  # informational: the pipeline as shipped, every default stage on
MODES = (*SAME_WORK_MODES, DEFAULTS_MODE)
MODE_LABELS = {
    "plain-1p": "plain loop, 1 process",
    "plain-2p": "plain loop, 2 processes",
    "beam-1w": "Beam in_memory, 1 worker",
    "beam-2w": "Beam multi_processing, 2 workers",
    "beam-2w-defaults": "Beam multi_processing, 2 workers, every default stage",
}
BEAM_ARGS = {
    "beam-1w": ["--direct_num_workers=1", "--direct_running_mode=in_memory"],
    "beam-2w": ["--direct_num_workers=2", "--direct_running_mode=multi_processing"],
    "beam-2w-defaults": ["--direct_num_workers=2", "--direct_running_mode=multi_processing"],
}
# The stages the plain loop implements; every other stage with an ``enabled`` switch is turned off
# in the benchmark config so that both sides do the same work.
PLAIN_STAGES = ("exact_dedup",)
STAGES = ("read", "extract", "language", "exact_dedup", "write")


# --- sentence pool ----------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|(?<=[。！？])")


def split_sentences(text: str) -> Iterator[str]:
    """Lines, then sentences; list items and headings stay whole."""
    for line in text.split("\n"):
        for piece in _SENTENCE_END.split(line):
            piece = piece.strip()
            if piece:
                yield piece


def fixture_files(root: Path = FIXTURES) -> list[Path]:
    files = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.name == "LICENSE":
            continue
        try:
            detect_format(str(path))
        except UnknownFormatError:
            continue
        files.append(path)
    return files


def build_sentence_pool(files: Sequence[Path], lid: FastTextLanguageIdentifier,
                        min_score: float = 0.6) -> dict[str, list[str]]:
    """Unique sentences of the fixtures by language, in a deterministic order."""
    cfg = InputConfig(url_field="metadata.url")  # the CCNet/dolma JSONL keeps the URL there
    texts: list[str] = []
    for path in files:
        fmt = detect_format(str(path))
        with open(path, "rb") as fh:
            for record in read_shard(fh, str(path), fmt, cfg):
                if not isinstance(record, Document):
                    continue
                if record.html is not None:
                    # both extraction modes: the full page holds most of the non-English lines
                    texts.append(normalize_text(html_to_text(record.html, main_content=True)))
                    texts.append(normalize_text(html_to_text(record.html, main_content=False)))
                elif record.text:
                    texts.append(normalize_text(record.text))
    seen: set[str] = set()
    pool: dict[str, list[str]] = defaultdict(list)
    for text in texts:
        for sentence in split_sentences(text):
            if sentence in seen:
                continue
            seen.add(sentence)
            ((lang, score),) = lid.predict([sentence])
            long_enough = len(sentence) >= (8 if lang in CJK else 20)
            if score >= min_score and long_enough and lang in LANGUAGE_WEIGHTS:
                pool[lang].append(sentence)
    return {lang: sentences for lang, sentences in sorted(pool.items()) if len(sentences) >= MIN_POOL_SENTENCES}


# --- corpus -----------------------------------------------------------------


@dataclass
class Corpus:
    glob: str
    directory: str
    description: dict[str, Any]


def fixtures_digest(files: Sequence[Path]) -> str:
    digest = xxhash.xxh3_64()
    for path in files:
        digest.update(path.relative_to(REPO).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:8]


def corpus_key(docs: int, shards: int, seed: int, fixtures: str) -> str:
    return f"docs{docs}-shards{shards}-seed{seed}-gen{GENERATOR_VERSION}-fx{fixtures}"


def _pick_sentences(rng: random.Random, sentences: list[str], sizes: list[int], target: int,
                    joiner: str) -> str:
    paragraphs: list[str] = []
    total = 0
    while total < target:
        n = rng.randint(1, 6)
        picked = [rng.randrange(len(sentences)) for _ in range(n)]
        paragraph_parts: list[str] = []
        for i in picked:
            paragraph_parts.append(sentences[i])
            total += sizes[i] + 1
            if total >= target:
                break
        paragraphs.append(joiner.join(paragraph_parts))
    text = "\n\n".join(paragraphs)
    if target < 400 and len(text.encode("utf-8")) > target:
        # short pages (teasers, stubs): cut at a word boundary so some fall under extract.min_chars
        cut = text.encode("utf-8")[:target].decode("utf-8", errors="ignore")
        text = cut.rsplit(" ", 1)[0] if " " in cut else cut
    return text


def _whitespace_variant(rng: random.Random, text: str) -> str:
    """Same text after normalize_text, different bytes: CRLF, doubled spaces, trailing blanks."""
    variant = text.replace("\n", "\r\n") if rng.random() < 0.5 else text.replace(". ", ".  ")
    return "  " + variant + " \n\n\n"


def generate_documents(pool: dict[str, list[str]], docs: int, seed: int) -> Iterator[tuple[dict[str, str], str]]:
    """(JSON object, kind) per document; kind is unique, exact_duplicate or whitespace_duplicate."""
    rng = random.Random(seed)
    langs = list(pool)
    weights = [LANGUAGE_WEIGHTS[lang] for lang in langs]
    sizes = {lang: [len(s.encode("utf-8")) for s in pool[lang]] for lang in langs}
    mu = math.log(MEAN_DOC_BYTES) - LENGTH_SIGMA**2 / 2 - 0.05  # sentences overshoot the target a little
    seen: set[int] = set()
    recent: list[str] = []  # earlier documents that later ones may duplicate
    for i in range(docs):
        doc_id = f"bench-{seed}-{i:09d}"
        url = f"https://site{rng.randrange(20_000)}.example/{rng.choice(('news', 'blog', 'wiki', 'shop', 'forum'))}/{i}"
        if recent and rng.random() < DUPLICATE_RATE:
            original = recent[rng.randrange(len(recent))]
            if rng.random() < 0.5:
                yield {"id": doc_id, "url": url, "text": original}, "exact_duplicate"
            else:
                yield {"id": doc_id, "url": url, "text": _whitespace_variant(rng, original)}, "whitespace_duplicate"
            continue
        lang = rng.choices(langs, weights)[0]
        target = min(MAX_DOC_BYTES, max(20, int(rng.lognormvariate(mu, LENGTH_SIGMA))))
        joiner = "" if lang in CJK else " "
        for _attempt in range(20):
            text = _pick_sentences(rng, pool[lang], sizes[lang], target, joiner)
            key = xxhash.xxh3_64_intdigest(text.encode("utf-8"))
            if key not in seen:
                break
            target += 20  # a collision of short texts: try a slightly longer one
        seen.add(key)
        if len(recent) < 5_000:
            recent.append(text)
        else:
            recent[rng.randrange(len(recent))] = text
        if rng.random() < 0.1:
            text = text.replace(" ", "  ", 3)  # a little irregular whitespace for normalize_text to fix
        yield {"id": doc_id, "url": url, "text": text}, f"unique:{lang}"


def ensure_corpus(docs: int, shards: int, seed: int, work_dir: Path, pool_cache: dict[str, Any]) -> Corpus:
    """The corpus for these parameters, generated once and cached under work_dir/corpus/."""
    files = fixture_files()
    key = corpus_key(docs, shards, seed, fixtures_digest(files))
    directory = work_dir / "corpus" / key
    described = directory / "corpus.json"
    if described.is_file():
        return Corpus(str(directory / "*.jsonl.gz"), str(directory), json.loads(described.read_text()))

    if "pool" not in pool_cache:
        _log("building the sentence pool from tests/fixtures/crawl ...")
        pool_cache["pool"] = build_sentence_pool(files, FastTextLanguageIdentifier())
    pool: dict[str, list[str]] = pool_cache["pool"]
    _log(f"generating {docs:,} documents in {shards} shards -> {directory}")
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    width = max(5, len(str(shards)))
    sinks = [gzip.open(tmp / f"bench-{k:0{width}d}-of-{shards:0{width}d}.jsonl.gz", "wt", encoding="utf-8",
                       compresslevel=6) for k in range(shards)]
    kinds: Counter[str] = Counter()
    lengths: list[int] = []
    try:
        for i, (obj, kind) in enumerate(generate_documents(pool, docs, seed)):
            kinds[kind] += 1
            lengths.append(len(obj["text"].encode("utf-8")))
            # round-robin: duplicates land in other shards than their originals
            sinks[i % shards].write(json.dumps(obj, ensure_ascii=False) + "\n")
    finally:
        for sink in sinks:
            sink.close()
    lengths.sort()
    description = {
        "docs": docs,
        "shards": shards,
        "seed": seed,
        "generator_version": GENERATOR_VERSION,
        "text_bytes": sum(lengths),
        "compressed_bytes": sum(p.stat().st_size for p in tmp.glob("*.jsonl.gz")),
        "doc_bytes": {"mean": round(sum(lengths) / max(1, docs)), "p10": _quantile(lengths, 0.1),
                      "median": _quantile(lengths, 0.5), "p90": _quantile(lengths, 0.9),
                      "p99": _quantile(lengths, 0.99), "max": lengths[-1] if lengths else 0},
        "kinds": dict(sorted(kinds.items())),
        "under_200_bytes": sum(1 for n in lengths if n < 200),
        "pool": {lang: {"sentences": len(s), "bytes": sum(len(x.encode("utf-8")) for x in s)}
                 for lang, s in pool.items()},
        "pool_sources": [p.relative_to(REPO).as_posix() for p in files],
    }
    (tmp / "corpus.json").write_text(json.dumps(description, indent=1) + "\n")
    shutil.rmtree(directory, ignore_errors=True)
    tmp.rename(directory)
    return Corpus(str(directory / "*.jsonl.gz"), str(directory), description)


def _display_path(path: str) -> str:
    try:
        return Path(path).resolve().relative_to(REPO).as_posix()
    except ValueError:
        return path


def _quantile(sorted_values: Sequence[int], q: float) -> int:
    if not sorted_values:
        return 0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


# --- the plain-Python loop --------------------------------------------------


@dataclass
class StageClock:
    seconds: float = 0.0
    docs: int = 0
    text_bytes: int = 0


@dataclass
class PlainResult:
    wall_s: float
    stages: dict[str, StageClock]
    counts: dict[str, int]
    processes: int


def _text_bytes(doc: Document) -> int:
    return len(doc.text.encode("utf-8")) if doc.text else 0


class _Timed:
    """Accumulates perf_counter time into a StageClock."""

    __slots__ = ("clock", "t0")

    def __init__(self, clock: StageClock) -> None:
        self.clock = clock
        self.t0 = 0.0

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.clock.seconds += time.perf_counter() - self.t0


_WORKER_LID: FastTextLanguageIdentifier | None = None
_WORKER_CFG: Config | None = None


def _init_worker(config_path: str | None) -> None:
    global _WORKER_LID, _WORKER_CFG
    _WORKER_CFG = load_config(config_path)
    _WORKER_LID = FastTextLanguageIdentifier(_WORKER_CFG.language.model_path, _WORKER_CFG.language.max_chars)


def process_shard(path: str, cfg: Config, lid: FastTextLanguageIdentifier,
                  clocks: dict[str, StageClock]) -> tuple[list[Document], list[Document], list[DeadLetter]]:
    """read_shard -> extract_document -> LID (the declared language stage's run_stage) on one shard, each stage timed.

    Returns (survivors for dedup, removed so far, dead letters).
    """
    survivors: list[Document] = []
    removed: list[Document] = []
    dead: list[DeadLetter] = []
    read, extract, language = clocks["read"], clocks["extract"], clocks["language"]
    fmt = detect_format(path, cfg.input.format)
    with open(path, "rb") as fh:
        records = read_shard(fh, path, fmt, cfg.input)
        while True:
            t0 = time.perf_counter()
            record = next(records, None)
            read.seconds += time.perf_counter() - t0
            if record is None:
                break
            if isinstance(record, DeadLetter):
                dead.append(record)
                continue
            read.docs += 1
            read.text_bytes += _text_bytes(record)
            if record.removal is not None:
                removed.append(record)
                continue
            extract.docs += 1
            extract.text_bytes += _text_bytes(record)
            with _Timed(extract):
                doc = extract_document(record, cfg.extract)
            if doc.removal is not None:
                removed.append(doc)
                continue
            language.docs += 1
            language.text_bytes += _text_bytes(doc)
            with _Timed(language):
                doc = run_stage(LANGUAGE, doc, cfg.language, lid)  # one document per call, as the DoFn does
            (removed if doc.removal is not None else survivors).append(doc)
    return survivors, removed, dead


def _process_shard_in_worker(path: str) -> tuple[list[Document], list[Document], list[DeadLetter], dict[str, Any]]:
    assert _WORKER_CFG is not None and _WORKER_LID is not None
    clocks = {name: StageClock() for name in STAGES}
    survivors, removed, dead = process_shard(path, _WORKER_CFG, _WORKER_LID, clocks)
    return survivors, removed, dead, {k: asdict(v) for k, v in clocks.items()}


def drop_exact_duplicates(docs: Iterable[Document]) -> tuple[list[Document], list[Document]]:
    """A dict from text hash to documents; resolve_exact_duplicates keeps the smallest doc_id."""
    groups: dict[str | None, list[Document]] = defaultdict(list)
    for doc in docs:
        groups[doc.text_hash].append(doc)
    kept: list[Document] = []
    removed: list[Document] = []
    for group in groups.values():
        for doc in resolve_exact_duplicates(group):
            (kept if doc.removal is None else removed).append(doc)
    return kept, removed


def _shard_of(row: Row, n_shards: int) -> int:
    # the same rule as toxsieve.pipelines.runtime.transforms.shard_of, restated here to keep Beam's import out
    key = "\x00".join(str(k) for k in row_sort_key(row))
    return xxhash.xxh3_64_intdigest(key.encode("utf-8", "surrogatepass")) % n_shards


def write_output(rows: list[Row], directory: Path, schema: pa.Schema, cfg: Config) -> list[tuple[str, int]]:
    """The pipeline's output layout: shard count from the data, rows hashed to shards, sorted files."""
    n_shards = max(1, math.ceil(sum(row_size(r) for r in rows) / cfg.output.shard_target_bytes))
    by_shard: dict[int, list[Row]] = defaultdict(list)
    for row in rows:
        by_shard[_shard_of(row, n_shards)].append(row)
    if not by_shard:
        by_shard[0] = []
    written: list[tuple[str, int]] = []
    for shard, shard_rows in sorted(by_shard.items()):
        def make_path(seq: int, shard: int = shard) -> str:
            return str(directory / f"part-{shard:05d}-of-{n_shards:05d}-{seq:03d}.parquet")

        written += write_parquet_shards(shard_rows, schema, make_path, local_open_for_write, os.replace, cfg.output)
    return written


def plain_loop(paths: Sequence[str], output: Path, cfg: Config, config_path: str | None,
               processes: int) -> PlainResult:
    """The whole curation as one plain loop (or the per-shard part on a process pool)."""
    started = time.perf_counter()
    clocks = {name: StageClock() for name in STAGES}
    survivors: list[Document] = []
    removed: list[Document] = []
    dead: list[DeadLetter] = []
    if processes == 1:
        lid = FastTextLanguageIdentifier(cfg.language.model_path, cfg.language.max_chars)
        for path in paths:
            s, r, d = process_shard(path, cfg, lid, clocks)
            survivors += s
            removed += r
            dead += d
    else:
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(processes, initializer=_init_worker, initargs=(config_path,)) as pool:
            for s, r, d, worker_clocks in pool.imap_unordered(_process_shard_in_worker, paths):
                survivors += s
                removed += r
                dead += d
                for name, clock in worker_clocks.items():  # CPU time summed over the workers
                    clocks[name].seconds += clock["seconds"]
                    clocks[name].docs += clock["docs"]
                    clocks[name].text_bytes += clock["text_bytes"]

    dedup = clocks["exact_dedup"]
    if cfg.exact_dedup.enabled:
        dedup.docs = len(survivors)
        dedup.text_bytes = sum(_text_bytes(d) for d in survivors)
        with _Timed(dedup):
            kept, duplicates = drop_exact_duplicates(survivors)
        removed += duplicates
    else:
        kept = survivors

    write = clocks["write"]
    write.docs = len(kept) + len(removed)
    write.text_bytes = sum(_text_bytes(d) for d in kept) + sum(_text_bytes(d) for d in removed)
    run_id = "bench"
    with _Timed(write):
        for name in ("kept", "metadata", "removed", "dead_letter"):
            (output / name).mkdir(parents=True, exist_ok=True)
        write_output([curated_row(d) for d in kept], output / "kept", CURATED_SCHEMA, cfg)
        write_output([metadata_row(d) for d in (*kept, *removed)], output / "metadata", METADATA_SCHEMA, cfg)
        write_output([audit_row(d, run_id, cfg.output) for d in removed], output / "removed", AUDIT_SCHEMA, cfg)
        write_output([dead_letter_row(d, run_id) for d in dead], output / "dead_letter", DEAD_LETTER_SCHEMA, cfg)

    counts: Counter[str] = Counter()
    counts["read"] = len(kept) + len(removed) + len(dead)
    counts["kept"] = len(kept)
    counts["removed"] = len(removed)
    counts["dead_lettered"] = len(dead)
    for doc in removed:
        assert doc.removal is not None
        counts[f"removed/{doc.removal.reason.value}"] += 1
    return PlainResult(time.perf_counter() - started, clocks, dict(counts), processes)


def plain_worker_main(args: argparse.Namespace) -> int:
    """Entry point of the plain-loop subprocess: runs the loop, writes its timings as JSON."""
    import glob

    cfg = load_config(args.config)
    paths = sorted(glob.glob(args.plain_input))
    output = Path(args.plain_output)
    shutil.rmtree(output, ignore_errors=True)
    result = plain_loop(paths, output, cfg, args.config, args.plain_processes)
    Path(args.plain_result).write_text(json.dumps({
        "wall_s": result.wall_s, "processes": result.processes, "counts": result.counts,
        "stages": {k: asdict(v) for k, v in result.stages.items()},
    }, indent=1))
    return 0


def switch_off_sections(raw: dict[str, Any], keep: Iterable[str]) -> list[str]:
    """Set ``enabled: false`` in every config section of ``raw`` (a config dict) that is on and not in
    ``keep`` (dotted section names); returns the sections switched off."""
    keep = set(keep)
    off: list[str] = []

    def walk(node: dict[str, Any], prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            elif key == "enabled" and value is True and prefix.rstrip(".") not in keep:
                node[key] = False
                off.append(prefix.rstrip("."))

    walk(raw, "")
    return off


def same_work_config(base: str | None, path: Path) -> tuple[str, list[str]]:
    """Write a config that runs only what the plain loop runs; returns (path, switched-off sections)."""
    raw = load_config(base).to_dict()
    switched_off = switch_off_sections(raw, PLAIN_STAGES)
    config_from_dict(raw)  # still valid
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# written by bench/pipeline_bench.py: the plain loop's stages only\n"
                    + yaml.safe_dump(raw, sort_keys=False))
    return str(path), switched_off


# --- measuring a process tree ------------------------------------------------


def _proc_cpu_s(pid: int) -> float:
    """utime + stime of one process so far, in seconds."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        # the command name may hold spaces or parentheses: parse after the last ')'
        ppid = int(stat.rsplit(b")", 1)[1].split()[1])
        children[ppid].append(int(entry.name))
    return children


def process_tree(root: int) -> list[int]:
    children = _proc_children()
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def _status_kb(pid: int, fields: tuple[str, ...]) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                name, _, value = line.partition(":")
                if name in fields:
                    out[name] = int(value.split()[0])
    except (OSError, ValueError):
        pass
    return out


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def cpu_busy_s() -> float:
    """CPU seconds spent by the whole machine since boot, all cores (from /proc/stat)."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def wait_for_quiet(max_wait_s: float, threshold_cores: float = 0.25) -> float:
    """Wait (up to max_wait_s) until other processes use less than ``threshold_cores``; returns that load."""
    deadline = time.monotonic() + max_wait_s
    announced = False
    while True:
        before = cpu_busy_s()
        time.sleep(1.0)
        load = cpu_busy_s() - before
        if load < threshold_cores or time.monotonic() >= deadline:
            return load
        if not announced:
            _log(f"  (other processes use {load:.1f} cores; waiting up to {max_wait_s:.0f}s for a quiet machine)")
            announced = True


class MemorySampler(threading.Thread):
    """Peak resident memory of a process tree, from /proc every ``interval`` seconds.

    rss: VmRSS summed over the tree (shared pages such as libraries count once per process);
    anon: RssAnon summed (the processes' own heap, no file-backed pages);
    pss: proportional set size summed (shared pages split between sharers), sampled every 5th tick.
    It also keeps the last CPU time seen per process, to split a run's CPU into driver and workers.
    """

    def __init__(self, root: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.interval = interval
        self.peak_rss_kb = 0
        self.peak_anon_kb = 0
        self.peak_pss_kb = 0
        self.peak_processes = 0
        self.samples = 0
        self.cpu_by_pid: dict[int, float] = {}
        self.peak_rss_by_pid_kb: dict[int, int] = {}
        self._stop_event = threading.Event()

    def run(self) -> None:
        tick = 0
        while not self._stop_event.is_set():
            tree = process_tree(self.root)
            rss = anon = 0
            for pid in tree:
                status = _status_kb(pid, ("VmRSS", "RssAnon"))
                rss += status.get("VmRSS", 0)
                self.peak_rss_by_pid_kb[pid] = max(self.peak_rss_by_pid_kb.get(pid, 0), status.get("VmRSS", 0))
                anon += status.get("RssAnon", 0)
            self.peak_rss_kb = max(self.peak_rss_kb, rss)
            self.peak_anon_kb = max(self.peak_anon_kb, anon)
            if tick % 5 == 0:
                self.peak_pss_kb = max(self.peak_pss_kb, sum(_pss_kb(pid) for pid in tree))
            self.peak_processes = max(self.peak_processes, len(tree))
            for pid in tree:
                self.cpu_by_pid[pid] = max(self.cpu_by_pid.get(pid, 0.0), _proc_cpu_s(pid))
            self.samples += 1
            tick += 1
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


@dataclass
class Measurement:
    mode: str
    layout: str
    rep: int
    wall_s: float
    cpu_s: float
    peak_rss_bytes: int
    peak_anon_bytes: int
    peak_pss_bytes: int
    peak_processes: int
    returncode: int
    background_cores: float  # mean CPU use of everything else on the machine during the run
    driver_cpu_s: float  # CPU of the process we started (for Beam: the runner), as last sampled
    driver_peak_rss_bytes: int  # peak RSS of that process alone
    detail: dict[str, Any] = field(default_factory=dict)


def run_measured(cmd: list[str], log_path: Path, mode: str, layout: str, rep: int) -> Measurement:
    """Run a command, sampling its process tree's memory; wall and CPU time from outside."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        busy_before = cpu_busy_s()
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        sampler = MemorySampler(proc.pid)
        sampler.start()
        # wait4: the child's rusage includes the worker processes it waited for
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        sampler.stop()
        busy = cpu_busy_s() - busy_before
    proc.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    return Measurement(mode, layout, rep, wall, cpu, sampler.peak_rss_kb * 1024,
                       sampler.peak_anon_kb * 1024, sampler.peak_pss_kb * 1024, sampler.peak_processes,
                       proc.returncode, max(0.0, busy - cpu) / wall if wall > 0 else 0.0,
                       sampler.cpu_by_pid.get(proc.pid, 0.0), sampler.peak_rss_by_pid_kb.get(proc.pid, 0) * 1024)


def run_mode(mode: str, corpus: Corpus, layout: str, rep: int, work_dir: Path, config: str | None,
             settle_s: float) -> Measurement:
    if settle_s > 0:
        wait_for_quiet(settle_s)
    run_dir = work_dir / "runs" / f"{layout}-{mode}"
    log = work_dir / "logs" / f"{layout}-{mode}-rep{rep}.log"
    if mode.startswith("plain"):
        result_path = run_dir.with_name(run_dir.name + ".json")
        cmd = [sys.executable, str(Path(__file__).resolve()), "--plain-worker",
               "--plain-input", corpus.glob, "--plain-output", str(run_dir),
               "--plain-processes", mode.removeprefix("plain-").removesuffix("p"),
               "--plain-result", str(result_path)]
        if config:
            cmd += ["--config", config]
        m = run_measured(cmd, log, mode, layout, rep)
        if m.returncode == 0:
            m.detail = json.loads(result_path.read_text())
    else:
        cmd = [str(TOXSIEVE), "run", "--input", corpus.glob, "--output", str(run_dir), "--overwrite", "--quiet",
               *BEAM_ARGS[mode]]
        if config:
            cmd += ["--config", config]
        m = run_measured(cmd, log, mode, layout, rep)
        if m.returncode == 0:
            stats = json.loads((run_dir / "stats.json").read_text())
            m.detail = {"wall_s": stats["wall_time_s"], "counts": _beam_counts(stats)}
    if m.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        if mode == DEFAULTS_MODE:  # informational only: report why, keep going
            lines = tail.strip().splitlines() or ["?"]
            errors = [line for line in lines if "error" in line.lower()]
            m.detail = {"error": (errors or lines)[-1][:300]}
            _log(f"  {mode} failed (exit {m.returncode}): {m.detail['error']} (log {log})")
            return m
        raise SystemExit(f"{mode} failed (exit {m.returncode}); log {log}:\n{tail}")
    _log(f"  {layout:<10} {mode:<9} rep {rep}: {m.wall_s:7.1f}s wall, {m.cpu_s:7.1f}s CPU, "
         f"peak RSS {_gb(m.peak_rss_bytes)} (anon {_gb(m.peak_anon_bytes)}, PSS {_gb(m.peak_pss_bytes)}), "
         f"others {m.background_cores:.2f} cores")
    return m


def _beam_counts(stats: dict[str, Any]) -> dict[str, int]:
    counts = {k: stats[k] for k in ("read", "kept", "removed", "dead_lettered")}
    for reasons in stats["removed_by_stage"].values():
        for reason, n in reasons.items():
            counts[f"removed/{reason}"] = n
    return counts


# --- the benchmark ------------------------------------------------------------


@dataclass
class Results:
    corpus: Corpus
    measurements: list[Measurement]
    layouts: dict[str, Corpus]
    command: str
    started: str
    finished: str = ""
    mismatches: list[str] = field(default_factory=list)
    switched_off: list[str] = field(default_factory=list)
    user_config: str | None = None
    settle_s: float = 0.0
    machine: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)


def save_results(results: Results, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(results), indent=1) + "\n")


def load_results(path: Path) -> Results:
    """Results saved by save_results, to render the report again without re-running."""
    raw = json.loads(path.read_text())
    raw["corpus"] = Corpus(**raw["corpus"])
    raw["layouts"] = {k: Corpus(**v) for k, v in raw.get("layouts", {}).items()}
    fields = {f for f in Measurement.__dataclass_fields__}
    raw["measurements"] = [Measurement(**{k: v for k, v in m.items() if k in fields}) for m in raw["measurements"]]
    known = set(Results.__dataclass_fields__)
    return Results(**{k: v for k, v in raw.items() if k in known})


def schedule(modes: Sequence[str], repeat: int) -> list[tuple[int, list[str]]]:
    """Alternate the order: forward on even repetitions, backward on odd ones."""
    return [(rep, list(modes) if rep % 2 == 0 else list(reversed(modes))) for rep in range(repeat)]


def run_benchmark(args: argparse.Namespace) -> Results:
    work_dir = Path(args.work_dir)
    pool_cache: dict[str, Any] = {}
    if args.corpus:
        import glob

        files = sorted(glob.glob(args.corpus))
        if not files:
            raise SystemExit(f"--corpus {args.corpus!r} matches no file")
        corpus = Corpus(args.corpus, str(Path(files[0]).parent),
                        {"docs": None, "shards": len(files), "given": args.corpus,
                         "compressed_bytes": sum(os.path.getsize(f) for f in files)})
    else:
        corpus = ensure_corpus(args.docs, args.shards, args.seed, work_dir, pool_cache)
    results = Results(corpus, [], {}, " ".join(["bench/pipeline_bench.py", *sys.argv[1:]]),
                      dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), user_config=args.config,
                      settle_s=args.settle, machine=machine(), versions=versions())
    config, results.switched_off = same_work_config(args.config, work_dir / "same-work-config.yaml")
    if results.switched_off:
        _log(f"same work on both sides: {', '.join(results.switched_off)} switched off ({config})")

    same_work = [m for m in args.modes if m != DEFAULTS_MODE]
    _log(f"throughput: {args.repeat} repetition(s) of {', '.join(same_work)} on {corpus.glob}")
    for rep, order in schedule(same_work, args.repeat):
        for mode in order:
            results.measurements.append(run_mode(mode, corpus, "main", rep, work_dir, config, args.settle))
    if DEFAULTS_MODE in args.modes:
        _log("the shipped pipeline, every default stage on (once, for information)")
        results.measurements.append(run_mode(DEFAULTS_MODE, corpus, "main", 0, work_dir, args.config, args.settle))

    if args.shard_layouts and not args.corpus:
        for n_shards in args.shard_layouts:
            results.layouts[f"shards{n_shards}"] = ensure_corpus(args.docs, n_shards, args.seed, work_dir, pool_cache)
        _log(f"memory vs shard size: {', '.join(args.memory_modes)} on {', '.join(results.layouts)}")
        for layout, layout_corpus in results.layouts.items():
            for mode in args.memory_modes:
                results.measurements.append(run_mode(mode, layout_corpus, layout, 0, work_dir, config, args.settle))

    results.mismatches = check_counts(results.measurements)
    results.finished = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return results


def check_counts(measurements: Sequence[Measurement]) -> list[str]:
    """Every run must reach the same decisions: the plain loop is only a fair baseline if it does."""
    reference: dict[str, int] | None = None
    problems = []
    for m in measurements:
        if m.mode == DEFAULTS_MODE:
            continue
        counts = m.detail.get("counts", {})
        if reference is None:
            reference = counts
        elif counts != reference:
            diff = {k: (reference.get(k), counts.get(k)) for k in sorted(set(reference) | set(counts))
                    if reference.get(k) != counts.get(k)}
            problems.append(f"{m.layout}/{m.mode} rep {m.rep}: {diff}")
    return problems


# --- report -------------------------------------------------------------------


def _gb(n: float) -> str:
    return f"{n / 1024**3:.2f} GiB"


def _fmt(n: float, digits: int = 0) -> str:
    return f"{n:,.{digits}f}"


@dataclass
class ModeSummary:
    mode: str
    walls: list[float]
    cpus: list[float]
    peak_rss: int
    peak_anon: int
    peak_pss: int
    background: list[float]
    driver_cpus: list[float]

    @property
    def median_wall(self) -> float:
        return statistics.median(self.walls)


def summarize(results: Results, layout: str = "main") -> dict[str, ModeSummary]:
    by_mode: dict[str, list[Measurement]] = defaultdict(list)
    for m in results.measurements:
        if m.layout == layout and m.returncode == 0:
            by_mode[m.mode].append(m)
    return {mode: ModeSummary(mode, [m.wall_s for m in ms], [m.cpu_s for m in ms],
                              max(m.peak_rss_bytes for m in ms), max(m.peak_anon_bytes for m in ms),
                              max(m.peak_pss_bytes for m in ms), [m.background_cores for m in ms],
                              [m.driver_cpu_s for m in ms])
            for mode, ms in sorted(by_mode.items(), key=lambda kv: MODES.index(kv[0]))}


def corpus_docs_bytes(results: Results) -> tuple[int, int]:
    desc = results.corpus.description
    if desc.get("docs") is not None:
        return int(desc["docs"]), int(desc["text_bytes"])
    for m in results.measurements:  # a given corpus: what the plain loop read
        if m.mode == "plain-1p":
            read = m.detail["stages"]["read"]
            return int(read["docs"]), int(read["text_bytes"])
    counts = results.measurements[0].detail["counts"]
    return int(counts["read"]), 0


def machine() -> dict[str, str]:
    cpu = cpu_model()
    mem = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024**2:.1f} GiB"
                break
    except OSError:
        pass
    return {"nproc": str(os.cpu_count()), "cpu": cpu, "ram": mem,
            "os": f"{platform.system()} {platform.release()}", "python": platform.python_version()}


def versions() -> dict[str, str]:
    out = {}
    for dist in ("toxsieve", "apache-beam", "pyarrow", "fasttext-numpy2", "resiliparse", "numpy", "grpcio"):
        try:
            out[dist] = importlib_metadata.version(dist)
        except importlib_metadata.PackageNotFoundError:
            out[dist] = "-"
    try:
        sha = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=False).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=False).stdout.strip()
        out["git"] = (sha + ("-dirty" if dirty else "")) or "-"
    except (OSError, subprocess.SubprocessError):
        out["git"] = "-"
    return out


def render_block(results: Results) -> str:
    docs, text_bytes = corpus_docs_bytes(results)
    summary = summarize(results)
    desc = results.corpus.description
    mach, vers = results.machine or machine(), results.versions or versions()
    reps = max((len(s.walls) for s in summary.values()), default=0)
    lines = [f"### {docs:,} documents ({text_bytes / MB:,.0f} MB of text), {desc['shards']} shards", ""]
    lines.append(f"- **Date:** {results.started} – {results.finished} (UTC)")
    lines.append(f"- **Machine:** {mach['nproc']} CPUs (`nproc`), {mach['cpu']}, {mach['ram']} RAM, {mach['os']}")
    lines.append("- **Versions:** Python " + mach["python"] + ", "
                 + ", ".join(f"{k} {v}" for k, v in vers.items()))
    lines.append(f"- **Command:** `.venv/bin/python {results.command}`" if results.command.strip() !=
                 "bench/pipeline_bench.py" else "- **Command:** `make bench` (`.venv/bin/python bench/pipeline_bench.py`)")
    lines.append(corpus_line(results))
    base = f"`{results.user_config}`" if results.user_config else "the default config"
    off = ", ".join(f"`{name}`" for name in results.switched_off) or "nothing"
    lines.append(f"- **Method:** each mode is a fresh process, run {reps}× with the order alternating "
                 "(forward, backward, ...); wall time is measured from outside, from process start to exit "
                 "(interpreter start, imports and, for Beam, building the pipeline, stats.json and "
                 "manifest.json included). CPU is user+sys of the whole process tree; \"others\" is the mean "
                 "CPU use of every other process on the machine during the run (from /proc/stat; the bench "
                 f"waits up to {results.settle_s:.0f} s for it to drop below 0.25 cores before each run). "
                 "Both sides do the same "
                 f"work: {base} with {off} switched off (stages the plain loop does not implement), and every "
                 "run must reach the same kept/removed counts per reason. Beam runs `toxsieve run` as a user "
                 "would, with `--quiet`.")
    if any(m.mode == DEFAULTS_MODE for m in results.measurements):
        lines.append(f"- The last row, \"{MODE_LABELS[DEFAULTS_MODE]}\", runs {base} unchanged once, "
                     "for information; it does more work than the plain loop and is not in the ratios.")
    lines.append("")
    lines += throughput_table(summary, docs, text_bytes)
    for m in results.measurements:
        if m.returncode != 0:
            lines.append(f"| {MODE_LABELS[m.mode]} | failed after {m.wall_s:,.1f} s: {m.detail.get('error', '?')} "
                         "| | | | | |")
    lines.append("")
    lines += ratio_lines(summary)
    lines.append("")
    plain = next((m for m in results.measurements if m.mode == "plain-1p" and m.layout == "main"), None)
    if plain is not None:
        lines += stage_table(results)
        lines.append("")
    lines += memory_table(results)
    lines.append("")
    lines += interpretation(results, summary, docs)
    if results.mismatches:
        lines.append("")
        lines.append("**Warning: the runs did not reach the same decisions:** " + "; ".join(results.mismatches))
    return "\n".join(lines)


def corpus_line(results: Results) -> str:
    desc = results.corpus.description
    if desc.get("given"):
        return (f"- **Corpus:** given with `--corpus {desc['given']}`: {desc['shards']} files, "
                f"{desc['compressed_bytes'] / MB:,.1f} MB compressed.")
    kinds = desc["kinds"]
    langs = {k.split(":", 1)[1]: v for k, v in kinds.items() if k.startswith("unique:")}
    unique = sum(langs.values())
    mix = ", ".join(f"{lang} {100 * n / unique:.0f}%" for lang, n in sorted(langs.items(), key=lambda kv: -kv[1]))
    b = desc["doc_bytes"]
    dups = kinds.get("exact_duplicate", 0) + kinds.get("whitespace_duplicate", 0)
    pool = ", ".join(f"{lang} {p['sentences']:,}" for lang, p in desc["pool"].items())
    return (
        f"- **Corpus:** {desc['docs']:,} JSONL.gz documents in {desc['shards']} shards "
        f"({desc['compressed_bytes'] / MB:,.1f} MB compressed), seed {desc['seed']}, cached under "
        f"`{_display_path(results.corpus.directory)}/`. Text per document (UTF-8 bytes): mean {b['mean']:,}, p10 {b['p10']:,}, "
        f"median {b['median']:,}, p90 {b['p90']:,}, p99 {b['p99']:,}, max {b['max']:,} (lognormal, long tail). "
        f"Languages of the unique documents: {mix}. {dups:,} duplicates ({100 * dups / desc['docs']:.1f}%: "
        f"{kinds.get('exact_duplicate', 0):,} byte-identical, {kinds.get('whitespace_duplicate', 0):,} equal "
        f"after normalisation); {desc['under_200_bytes']:,} documents under 200 bytes. The text is real "
        f"sentences recombined: the fixtures in `tests/fixtures/crawl` read with the project's readers, "
        f"`html_to_text` (both main-content modes) and `normalize_text`, split into sentences and pooled by "
        f"fastText language (sentences per language: {pool}; the fixtures have no French, and the small "
        f"de/es/nl pools repeat sentences often)."
    )


def throughput_table(summary: dict[str, ModeSummary], docs: int, text_bytes: int) -> list[str]:
    lines = ["| mode | wall s (median, min–max) | docs/s (median, min–max) | MB/s of text | CPU s "
             "(runner process) | others (cores) | × plain 1-process |",
             "|---|---|---|---|---|---|---|"]
    plain = summary.get("plain-1p")
    for mode, s in summary.items():
        rate = docs / s.median_wall
        lo, hi = docs / max(s.walls), docs / min(s.walls)
        ratio = f"{plain.median_wall / s.median_wall:.2f}" if plain else "–"
        lines.append(
            f"| {MODE_LABELS[mode]} | {s.median_wall:,.1f} ({min(s.walls):,.1f}–{max(s.walls):,.1f}) | "
            f"{_fmt(rate)} ({_fmt(lo)}–{_fmt(hi)}) | {text_bytes / MB / s.median_wall:,.2f} | "
            f"{statistics.median(s.cpus):,.1f} ({statistics.median(s.driver_cpus):,.1f}) | "
            f"{statistics.median(s.background):.2f} | {ratio} |"
        )
    return lines


def ratio_lines(summary: dict[str, ModeSummary]) -> list[str]:
    def ratio(a: str, b: str) -> float | None:
        if a in summary and b in summary:
            return summary[b].median_wall / summary[a].median_wall
        return None

    def best(a: str, b: str) -> str:
        if a in summary and b in summary and len(summary[a].walls) > 1:
            return f" (best run vs best run: {min(summary[b].walls) / min(summary[a].walls):.2f}×)"
        return ""

    lines = []
    target = ratio("beam-2w", "plain-1p")
    if target is not None:
        verdict = "meets" if target >= TARGET_RATIO else "misses"
        lines.append(f"- **Target (issue #3): Beam with 2 workers ≥ {TARGET_RATIO}× the plain loop's throughput: "
                     f"{target:.2f}× (medians), {verdict} it.**{best('beam-2w', 'plain-1p')}")
    for a, b, what in (("beam-2w", "plain-2p", "Beam 2 workers vs the 2-process plain loop"),
                       ("beam-1w", "plain-1p", "Beam 1 worker vs the 1-process plain loop"),
                       ("beam-2w", "beam-1w", "Beam 2 workers vs Beam 1 worker (scaling)"),
                       ("plain-2p", "plain-1p", "plain 2 processes vs 1 (scaling)")):
        r = ratio(a, b)
        if r is not None:
            lines.append(f"- {what}: {r:.2f}×{best(a, b)}")
    return lines


def stage_table(results: Results) -> list[str]:
    runs = [m for m in results.measurements if m.mode == "plain-1p" and m.layout == "main"]
    lines = ["Per stage, plain 1-process loop (perf_counter around each core function, median over the "
             "repetitions; docs and MB are what enters the stage):", "",
             "| stage | core function | docs in | MB in | s | docs/s | MB/s | share of loop |",
             "|---|---|---|---|---|---|---|---|"]
    functions = {
        "read": "`read_shard` (gzip + JSON)",
        "extract": "`extract_document` (normalise, hash, length floor)",
        "language": "`run_stage` of the language stage (`FastTextLanguageIdentifier.predict` + its `decide`)",
        "exact_dedup": "dict by text hash + `resolve_exact_duplicates`",
        "write": "rows + `write_parquet_shards` (4 outputs, zstd)",
    }
    loop_total = statistics.median(m.detail["wall_s"] for m in runs)
    staged = 0.0
    for stage in STAGES:
        secs = statistics.median(m.detail["stages"][stage]["seconds"] for m in runs)
        staged += secs
        st = runs[0].detail["stages"][stage]
        rate = st["docs"] / secs if secs else 0.0
        mbs = st["text_bytes"] / MB / secs if secs else 0.0
        lines.append(f"| {stage} | {functions[stage]} | {st['docs']:,} | {st['text_bytes'] / MB:,.1f} | "
                     f"{secs:,.2f} | {_fmt(rate)} | {mbs:,.1f} | {100 * secs / loop_total:.0f}% |")
    lines.append(f"| (rest) | startup excluded; list handling, byte counting | | | {loop_total - staged:,.2f} | | | "
                 f"{100 * (loop_total - staged) / loop_total:.0f}% |")
    wall = statistics.median(m.wall_s for m in runs)
    lines.append("")
    lines.append(f"The loop itself took {loop_total:,.1f} s of the {wall:,.1f} s process wall time; the rest is "
                 "interpreter start, imports and loading the LID model. Beam is timed as a whole run only.")
    return lines


def memory_table(results: Results) -> list[str]:
    lines = ["Peak memory of the whole process tree (sampled every 0.2 s; RSS counts shared libraries once per "
             "process, so for multi-process runs PSS is the fairer total; anon is heap only):", "",
             "| corpus layout | mode | docs per shard | peak RSS (sum) | peak anon (sum) | peak PSS (sum) | "
             "runner process alone (RSS) | processes | wall s |",
             "|---|---|---|---|---|---|---|---|---|"]
    layouts = {"main": results.corpus, **results.layouts}
    for layout, corpus in layouts.items():
        desc = corpus.description
        per_shard = f"{desc['docs'] / desc['shards']:,.0f}" if desc.get("docs") else "–"
        by_mode: dict[str, list[Measurement]] = defaultdict(list)
        for m in results.measurements:
            if m.layout == layout and m.returncode == 0:
                by_mode[m.mode].append(m)
        for mode in MODES:
            ms = by_mode.get(mode)
            if not ms:
                continue
            peak = max(ms, key=lambda m: m.peak_rss_bytes)
            lines.append(f"| {desc['shards']} shards | {MODE_LABELS[mode]} | {per_shard} | "
                         f"{_gb(peak.peak_rss_bytes)} | {_gb(max(m.peak_anon_bytes for m in ms))} | "
                         f"{_gb(max(m.peak_pss_bytes for m in ms))} | "
                         f"{_gb(max(m.driver_peak_rss_bytes for m in ms))} | {peak.peak_processes} | "
                         f"{statistics.median(m.wall_s for m in ms):,.1f} |")
    return lines


def interpretation(results: Results, summary: dict[str, ModeSummary], docs: int) -> list[str]:
    lines = ["Reading the numbers (generated from this run's figures):", ""]
    if "plain-1p" in summary and "beam-2w" in summary:
        ratio = summary["plain-1p"].median_wall / summary["beam-2w"].median_wall
        cpu_ratio = statistics.median(summary["beam-2w"].cpus) / statistics.median(summary["plain-1p"].cpus)
        b2 = summary["beam-2w"]
        driver = statistics.median(b2.driver_cpus)
        lines.append(f"- Beam with 2 workers does {ratio:.2f}× the documents per second of the single-process "
                     f"loop while using {cpu_ratio:.1f}× its CPU time "
                     f"({statistics.median(b2.cpus):,.1f} s, of which {driver:,.1f} s in the runner process that "
                     "feeds the workers over gRPC and holds the grouped data): "
                     f"{'per-element overhead eats the second core' if ratio < 1 else 'the second core pays'}.")
    noisy = [mode for mode, s in summary.items() if statistics.median(s.background) > 0.25]
    if noisy:
        loads = [m.background_cores for m in results.measurements if m.returncode == 0]
        lines.append(f"- The machine was shared: other processes used {statistics.mean(loads):.2f} cores on average "
                     f"(up to {max(loads):.2f}) during the runs, more than a quarter of a core during "
                     f"{', '.join(noisy)}. Wall times are pessimistic, most of all for the 2-process and "
                     "2-worker modes, which need both cores; min–max shows the spread.")
    runs = [m for m in results.measurements if m.mode == "plain-1p" and m.layout == "main"]
    if runs:
        secs = {s: statistics.median(m.detail["stages"][s]["seconds"] for m in runs) for s in STAGES}
        top = sorted(secs.items(), key=lambda kv: -kv[1])[:2]
        total = statistics.median(m.detail["wall_s"] for m in runs)
        lines.append("- In the plain loop, " + " and ".join(f"{s} ({100 * v / total:.0f}%)" for s, v in top)
                     + " take most of the time: C++ (fastText) and regex/unicodedata work that no runner can "
                     "make cheaper, only spread over cores.")
    for mode in ("beam-1w", "beam-2w"):
        peaks = {layout: max((m.peak_rss_bytes for m in results.measurements
                              if m.layout == layout and m.mode == mode and m.returncode == 0), default=0)
                 for layout in results.layouts}
        if len(peaks) < 2 or not all(peaks.values()):
            continue
        ordered = sorted(peaks.items(), key=lambda kv: results.layouts[kv[0]].description["shards"])
        (few, few_peak), (many, many_peak) = ordered[0], ordered[-1]
        change = 100 * (few_peak - many_peak) / many_peak
        lines.append(f"- Peak RSS of {MODE_LABELS[mode]}: {_gb(few_peak)} with "
                     f"{results.layouts[few].description['shards']} big shards vs {_gb(many_peak)} with "
                     f"{results.layouts[many].description['shards']} small ones ({change:+.0f}%): memory does not "
                     "follow the size of one shard." if abs(change) < 15 else
                     f"- Peak RSS of {MODE_LABELS[mode]}: {_gb(few_peak)} with "
                     f"{results.layouts[few].description['shards']} big shards vs {_gb(many_peak)} with "
                     f"{results.layouts[many].description['shards']} small ones ({change:+.0f}%).")
    scope = ("this is the size the goal is stated for" if docs >= MEMORY_GOAL_DOCS
             else f"the goal is stated for {MEMORY_GOAL_DOCS:,} documents")
    parts = []
    for mode in ("beam-1w", "beam-2w"):
        ms = [m for m in results.measurements if m.mode == mode and m.returncode == 0]
        if ms:
            rss = max(m.peak_rss_bytes for m in ms)
            pss = max(m.peak_pss_bytes for m in ms)
            parts.append(f"{MODE_LABELS[mode]} {_gb(rss)} RSS / {_gb(pss)} PSS "
                         f"({'under' if max(rss, pss) < MEMORY_GOAL_BYTES else 'over'})")
    if parts:
        lines.append(f"- Against the goal of < 4 GB (read as 4 GiB; {scope}), highest peaks: " + "; ".join(parts) + ".")
    return lines


def block_key(results: Results) -> str:
    desc = results.corpus.description
    if desc.get("given"):
        return "corpus=" + re.sub(r"[^A-Za-z0-9_.*/-]", "_", desc["given"])
    return f"docs={desc['docs']}"


def update_markdown(path: Path, key: str, block: str) -> None:
    """Rewrite our block in our section; keep other blocks, the notes and the rest of the file.

    The section lives between START and END (heading included, as the other sections of that file do);
    inside it, one block per corpus size between its own markers, and hand-written notes.
    """
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    intro = ("Measured with `bench/pipeline_bench.py` (`make bench`; rerun: `.venv/bin/python "
             "bench/pipeline_bench.py [--docs N] [--shards K] [--repeat R]`). Each block below comes from one "
             "run of the script and is replaced only by a run at the same corpus size; the notes are written "
             "by hand and kept.")
    blocks: dict[str, str] = {}
    notes = f"{NOTES_START}\n{NOTES_END}"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        section, tail = rest.split(END, 1)
        if NOTES_START in section and NOTES_END in section:
            notes = NOTES_START + section.split(NOTES_START, 1)[1].split(NOTES_END, 1)[0] + NOTES_END
        for match in BLOCK_START.finditer(section):
            body = section[match.end():].split(BLOCK_END, 1)[0]
            blocks[match.group("key")] = body.strip("\n")
    else:
        head, tail = text.rstrip("\n") + "\n\n", "\n"
    blocks[key] = block

    def order(k: str) -> tuple[int, str]:
        m = re.fullmatch(r"docs=(\d+)", k)
        return (int(m.group(1)), "") if m else (sys.maxsize, k)

    parts = [START, SECTION_TITLE, "", intro, ""]
    for k in sorted(blocks, key=order):
        parts += [f"<!-- bench:pipeline:run {k} -->", blocks[k], BLOCK_END, ""]
    parts += [notes, END]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(head + "\n".join(parts) + tail)


# --- command line ---------------------------------------------------------------


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _int_list(value: str) -> list[int]:
    return [int(v) for v in value.split(",") if v.strip()]


def _mode_list(value: str) -> list[str]:
    modes = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown mode(s) {unknown}; known: {', '.join(MODES)}")
    return modes


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    p.add_argument("--docs", type=int, default=20_000, help="documents in the generated corpus (default 20000)")
    p.add_argument("--shards", type=int, default=16, help="JSONL.gz shards for the throughput runs (default 16)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeat", type=int, default=3, help="repetitions per mode, order alternating (default 3)")
    p.add_argument("--corpus", metavar="GLOB", help="benchmark these JSONL/WARC/... shards instead of generating")
    p.add_argument("--config", metavar="FILE", help="toxsieve YAML config for every run (default: none)")
    p.add_argument("--modes", type=_mode_list, default=list(MODES),
                   help=f"comma list of {', '.join(MODES)} (default: all; {DEFAULTS_MODE} runs once)")
    p.add_argument("--shard-layouts", type=_int_list, default=[2, 64],
                   help="shard counts for the memory-vs-shard-size runs, same documents (default 2,64; '' skips)")
    p.add_argument("--memory-modes", type=_mode_list, default=["beam-2w", "beam-1w"],
                   help="modes run on each shard layout (default beam-2w,beam-1w)")
    p.add_argument("--settle", type=float, default=30.0,
                   help="before each run, wait up to this many seconds for other processes to go quiet (default 30)")
    p.add_argument("--work-dir", default=str(WORK_DIR), help="corpus cache and run outputs (default out/bench/pipeline)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="Markdown file to update (default docs/benchmarks.md)")
    p.add_argument("--no-report", action="store_true", help="do not touch --out")
    p.add_argument("--from-results", metavar="JSON", help="render --out again from a results-*.json of an earlier run")
    # the plain-loop subprocess
    p.add_argument("--plain-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--plain-input", help=argparse.SUPPRESS)
    p.add_argument("--plain-output", help=argparse.SUPPRESS)
    p.add_argument("--plain-processes", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--plain-result", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.plain_worker:
        return plain_worker_main(args)
    if args.config:
        args.config = str(Path(args.config).resolve())

    if args.from_results:
        raw = Path(args.from_results)
        results = load_results(raw)
    else:
        results = run_benchmark(args)
        raw = Path(args.work_dir) / f"results-{block_key(results).replace('/', '_')}.json"
        save_results(results, raw)
    block = render_block(results)
    print(block)
    if not args.no_report:
        update_markdown(Path(args.out), block_key(results), block)
        _log(f"updated {args.out} (raw results in {raw})")
    return 1 if results.mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
