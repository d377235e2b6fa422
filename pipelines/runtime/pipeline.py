"""Pipeline assembly: the whole curation run reads top to bottom in ``curate`` (passes in ``passes.py``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from toxsieve.pipelines.config import Config
from toxsieve.pipelines.runtime import progress
from toxsieve.pipelines.runtime.passes import (
    OUTPUT_DIRS,
    STAGING_DIR,
    _ReadShardFn,
    _ResumeShardFn,
    _StageShardsFn,
    decide,
    materialise,
    signals_chain,
)

COUNTS_FILE = "_counts.json"


@dataclass(frozen=True)
class RunSpec:
    inputs: list[str]  # input files, sorted: a shard's index here names its staging and output files
    output: str
    config: Config
    run_id: str
    input_bytes: int = 0
    resumed: tuple[int, ...] = ()  # input shards (indices into ``inputs``) already staged by an earlier attempt


def key_partitions(input_bytes: int) -> int:
    """How many groups the packed keys (ids, text hashes, band keys) are shuffled in: one per ~16 MiB of
    input, at most 4,096. A group is processed at once (sorted as one array), so this bounds the memory of
    one decide step; the cap bounds how many pieces each input file's keys are cut into. Results do not
    depend on the count."""
    return min(4096, max(1, math.ceil(input_bytes / (16 << 20))))


def curate(p: beam.Pipeline, spec: RunSpec) -> None:
    """1. signals per input shard (texts staged on disk, never shuffled); 2. decisions from small
    keys (ids, hashes, sketches); 3. outputs written per input shard with the shard's counts."""
    cfg, out = spec.config, spec.output
    staging = FileSystems.join(out, STAGING_DIR)
    paths = list(spec.inputs)
    index = {path: i for i, path in enumerate(paths)}
    resumed = set(spec.resumed)
    todo = [path for path in paths if index[path] not in resumed]
    messages = []
    if todo:
        records = (p
                   | "Inputs" >> beam.Create(todo)
                   | "SpreadShards" >> beam.Reshuffle()  # only paths move; each shard's records stay on one worker
                   | "ReadShards" >> beam.ParDo(_ReadShardFn(cfg, progress.progress_dir(out))))
        messages.append(signals_chain(records, cfg) | "StageShards" >> beam.ParDo(_StageShardsFn(staging, index)))
    if resumed:
        messages.append(p | "Resumed" >> beam.Create(sorted(resumed))
                        | "ReadStaged" >> beam.ParDo(_ResumeShardFn(staging)))
    merged = messages[0] if len(messages) == 1 else messages | "AllSignals" >> beam.Flatten()
    meters: list[beam.PCollection] = []  # bytes entering each shuffle, counted from the data
    decisions = decide(merged, cfg, paths, meters, n_partitions=key_partitions(spec.input_bytes))
    materialise(decisions, cfg, out, staging, paths, spec.run_id, FileSystems.join(out, COUNTS_FILE), meters)


__all__ = ["COUNTS_FILE", "OUTPUT_DIRS", "STAGING_DIR", "RunSpec", "curate"]
