"""Pipeline assembly: the whole curation run reads top to bottom in ``curate``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from toxsieve.pipelines import progress
from toxsieve.pipelines.config import Config
from toxsieve.pipelines.inference import ScoreToxicity
from toxsieve.pipelines.near_dedup_beam import DropNearDuplicates
from toxsieve.pipelines.outputs import audit_row, curated_row, dead_letter_row, metadata_row
from toxsieve.pipelines.stages.apply import declared_stages
from toxsieve.pipelines.transforms import (
    STAGE_KEY,
    ApplyUrlBlocklists,
    ApplyWordBlocklists,
    ComputeStats,
    DropExactDuplicates,
    ExtractText,
    IdentifyLanguage,
    ReadCrawlShards,
    SplitDeadLetters,
    SplitRemovals,
    WriteParquetShards,
)
from toxsieve.schemas import AUDIT_SCHEMA, CURATED_SCHEMA, DEAD_LETTER_SCHEMA, METADATA_SCHEMA

OUTPUT_DIRS = ("kept", "metadata", "removed", "dead_letter")
COUNTS_FILE = "_counts.json"


@dataclass(frozen=True)
class RunSpec:
    inputs: list[str]
    output: str
    config: Config
    run_id: str
    input_bytes: int = 0  # sizes the output shard count (fixed up front: same layout on any runner)


def stages(cfg: Config) -> list[beam.PTransform]:
    """The filtering stages in order. Each takes documents and returns (kept, removed).

    A new stage (near-dedup, toxicity, ...) is one line here.
    """
    chain: list[tuple[bool, beam.PTransform]] = [
        (cfg.blocklists.url.enabled, ApplyUrlBlocklists(cfg.blocklists.url)),  # before parsing any HTML
        (True, ExtractText(cfg.extract, cfg.limits)),
        (True, IdentifyLanguage(cfg.language)),
        (cfg.blocklists.words.enabled, ApplyWordBlocklists(cfg.blocklists.words)),  # needs the language
        *((True, stage) for stage in declared_stages(cfg.quality)),  # pipelines/stages: length floor, quality rules
        (cfg.exact_dedup.enabled, DropExactDuplicates(cfg.exact_dedup)),
        (cfg.near_dedup.enabled, DropNearDuplicates(cfg.near_dedup)),
        (cfg.toxicity.enabled, ScoreToxicity(cfg.toxicity)),  # last: the costliest per document
    ]
    return [stage for enabled, stage in chain if enabled]


def curate(p: beam.Pipeline, spec: RunSpec) -> None:
    cfg, out = spec.config, spec.output

    records = p | "ReadCrawlShards" >> ReadCrawlShards(spec.inputs, cfg.input, progress.progress_dir(spec.output))
    docs, dead_letters = records | "SplitDeadLetters" >> SplitDeadLetters()
    docs, removed_at_read = docs | "SplitReadRemovals" >> SplitRemovals()
    removed = [removed_at_read]
    tallies = []  # (key, n) from the data: every stage's in, kept and removed, and its inner counts
    for stage in stages(cfg):
        name = stage.__class__.__name__
        tallies.append(docs | f"Count{name}In" >> beam.Map(_tally, f"{STAGE_KEY}/{name}/in"))
        docs, dropped = docs | name >> stage
        removed.append(dropped)
        tallies += [docs | f"Count{name}Kept" >> beam.Map(_tally, f"{STAGE_KEY}/{name}/kept"),
                    dropped | f"Count{name}Removed" >> beam.Map(_tally, f"{STAGE_KEY}/{name}/removed"),
                    *getattr(stage, "tallies", [])]
    removed_all = removed | "AllRemoved" >> beam.Flatten()

    # Metadata rows are made next to where each decision became final, so only the small rows
    # (not full texts) are flattened and shuffled again.
    metadata_rows = (
        [docs | "KeptMetadataRows" >> beam.Map(metadata_row)]
        + [dropped | f"RemovedMetadataRows{i}" >> beam.Map(metadata_row) for i, dropped in enumerate(removed)]
    ) | "EveryDocument" >> beam.Flatten()
    identity = _identity
    n_shards = max(1, math.ceil(spec.input_bytes / cfg.output.shard_target_bytes))
    files = {
        "kept": docs | "WriteCuratedParquet" >> WriteParquetShards(
            FileSystems.join(out, "kept"), CURATED_SCHEMA, curated_row, cfg.output, n_shards),
        "metadata": metadata_rows | "WriteMetadata" >> WriteParquetShards(
            FileSystems.join(out, "metadata"), METADATA_SCHEMA, identity, cfg.output, n_shards),
        "removed": removed_all | "WriteAuditTrail" >> WriteParquetShards(
            FileSystems.join(out, "removed"), AUDIT_SCHEMA,
            partial(audit_row, run_id=spec.run_id, cfg=cfg.output), cfg.output, n_shards),
        "dead_letter": dead_letters | "WriteDeadLetters" >> WriteParquetShards(
            FileSystems.join(out, "dead_letter"), DEAD_LETTER_SCHEMA,
            partial(dead_letter_row, run_id=spec.run_id), cfg.output),
    }
    _ = {
        "metadata_rows": metadata_rows,
        "dead_letters": dead_letters,
        "read": records,
        **{f"files_{k}": v for k, v in files.items()},
        **{f"tally_{i}": t for i, t in enumerate(tallies)},
    } | "ComputeStats" >> ComputeStats(FileSystems.join(out, COUNTS_FILE), cfg.toxicity.threshold_for)


def _identity(row: dict) -> dict:
    return row


def _tally(_: object, key: str) -> tuple[str, int]:
    return key, 1
