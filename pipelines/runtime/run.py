"""A curation run from the driver's side: checks before any work, the Beam job, stats and manifest."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import platform
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from toxsieve.classifiers.base import sha256_path
from toxsieve.classifiers.langid import resolve_lid_model
from toxsieve.pipelines.config import Config
from toxsieve.pipelines.io.input_lists import InputListError, check_filesystems
from toxsieve.pipelines.io.readers import detect_format
from toxsieve.pipelines.runtime import progress
from toxsieve.pipelines.runtime.allocators import tame_allocators
from toxsieve.pipelines.runtime.fast_scoring import is_hf_model_dir
from toxsieve.pipelines.runtime.lock import LOCK_FILE, OutputLockedError, output_lock
from toxsieve.pipelines.runtime.passes import SECONDS_KEY, read_done_marker
from toxsieve.pipelines.runtime.pipeline import COUNTS_FILE, OUTPUT_DIRS, STAGING_DIR, RunSpec, curate
from toxsieve.pipelines.runtime.shuffle_meter import SHUFFLE_KEY
from toxsieve.pipelines.runtime.transforms import stage_balance_checks
from toxsieve.pipelines.stages.blocklists import LISTS_DIR, blocklist_files
from toxsieve.schemas import SCHEMA_VERSION, SCHEMAS
from toxsieve.schemas.enums import REASONS_BY_STAGE

_LOG = logging.getLogger("toxsieve")

STATS_FILE = "stats.json"
MANIFEST_FILE = "manifest.json"
_DEPENDENCIES = ("apache-beam", "pyarrow", "numpy", "fasttext-numpy2", "resiliparse", "fastwarc",
                 "xxhash", "zstandard", "pyyaml", "pyahocorasick")


class RunError(RuntimeError):
    """A problem found before or after the job that the user must fix; the message says what."""


class ConservationError(RunError):
    """Records went missing: read != kept + removed + dead-lettered."""


@dataclass
class RunResult:
    output: str
    stats: dict[str, Any]
    manifest: dict[str, Any]
    input_files: list[str] = field(default_factory=list)


def new_run_id() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def match_inputs(patterns: list[str], cfg: Config) -> list[tuple[str, int]]:
    """Every file the patterns match, with its size; an error names a pattern that matches nothing."""
    files: dict[str, int] = {}
    for pattern in patterns:
        try:
            result = FileSystems.match([pattern])[0]
        except Exception as exc:  # noqa: BLE001 - Beam raises a generic error for bad schemes
            raise RunError(f"cannot list input {pattern!r}: {exc}") from exc
        matched = [m for m in result.metadata_list if not m.path.endswith("/")]
        if not matched:
            raise RunError(f"input {pattern!r} matches no file")
        for meta in matched:
            detect_format(meta.path, cfg.input.format)  # unknown formats fail here, before any work
            files[meta.path] = meta.size_in_bytes
    return sorted(files.items())


def prepare_output(output: str, overwrite: bool) -> None:
    """Refuse a non-empty output directory unless ``overwrite``; then remove only toxsieve's outputs."""
    existing = [p for p in _list(output) if p != FileSystems.join(output, LOCK_FILE)]  # our own lock
    if not existing:
        return
    if not overwrite:
        raise RunError(f"output directory {output} is not empty; pass --overwrite to replace a previous run "
                       "(or --resume to finish an interrupted one)")
    _check_ours(output, existing)
    FileSystems.delete(existing)


def _ours(output: str) -> set[str]:
    return {FileSystems.join(output, name) for name in
            (*OUTPUT_DIRS, STATS_FILE, MANIFEST_FILE, COUNTS_FILE, progress.PROGRESS_DIR, STAGING_DIR)}


def _check_ours(output: str, existing: list[str]) -> None:
    ours = _ours(output)
    foreign = [p for p in existing if not any(p == o or p.startswith(o + "/") for o in ours)]
    if foreign:
        raise RunError(f"output directory {output} holds files that are not a toxsieve run "
                       f"(e.g. {foreign[0]}); refusing to overwrite")


RUN_FILE = "_run.json"  # in _staging/: what the staged shards were computed from


def run_fingerprint(cfg: Config, files: list[tuple[str, int]]) -> dict[str, Any]:
    # the staged records are pickles of this code's classes: a resume needs the same toxsieve
    found = {"config": dataclasses.asdict(cfg), "inputs": [[path, size] for path, size in files],
             "schema_version": SCHEMA_VERSION, "toxsieve_version": _version("toxsieve")}
    return json.loads(json.dumps(found, sort_keys=True, default=str))


def prepare_resume(output: str, fingerprint: dict[str, Any], n_shards: int) -> tuple[tuple[int, ...], str | None]:
    """For ``--resume``: the shards an interrupted run staged completely (and its run id). Everything
    else it wrote (outputs, partial shards) is removed; a changed config or input list is an error."""
    existing = [p for p in _list(output) if p != FileSystems.join(output, LOCK_FILE)]
    if not existing:
        return (), None
    if FileSystems.exists(FileSystems.join(output, MANIFEST_FILE)):
        raise RunError(f"{output} holds a complete run (manifest.json): nothing to resume")
    _check_ours(output, existing)
    staging = FileSystems.join(output, STAGING_DIR)
    run_file = FileSystems.join(staging, RUN_FILE)
    if not FileSystems.exists(run_file):
        raise RunError(f"{output} has no {STAGING_DIR}/{RUN_FILE}: nothing to resume; run with --overwrite")
    with FileSystems.open(run_file) as fh:
        stored = json.loads(fh.read())
    if stored.get("fingerprint") != fingerprint:
        raise RunError(f"the interrupted run in {output} used another config, input list or toxsieve version; "
                       "--resume needs the same ones (or start over with --overwrite)")
    done = tuple(i for i in range(n_shards) if read_done_marker(staging, i) is not None)
    keep = {FileSystems.join(staging, RUN_FILE)} | {FileSystems.join(staging, f"{i:05d}.done") for i in done}
    keep_dirs = tuple(FileSystems.join(staging, f"{i:05d}") + "/" for i in done)
    stale = [p for p in existing if p not in keep and not (p.startswith(keep_dirs) and "/.tmp-" not in p)]
    if stale:
        FileSystems.delete(stale)
    return done, stored.get("run_id")


def write_run_file(output: str, fingerprint: dict[str, Any], run_id: str) -> None:
    _write_json(FileSystems.join(output, STAGING_DIR, RUN_FILE), {"run_id": run_id, "fingerprint": fingerprint})


def write_empty_outputs(output: str, n_shards: int) -> None:
    """An output with no rows still gets one empty file with its schema, so readers never fail on it."""
    for name in OUTPUT_DIRS:
        if not _parquet_rows(FileSystems.join(output, name)):
            path = FileSystems.join(output, name, f"part-00000-of-{n_shards:05d}-000.parquet")
            with FileSystems.create(path) as fh:
                pq.write_table(SCHEMAS[name].empty_table(), fh, compression="zstd")


def _list(directory: str) -> list[str]:
    try:
        result = FileSystems.match([FileSystems.join(directory, "**")])[0]
    except Exception:  # noqa: BLE001 - a missing directory matches nothing
        return []
    return [m.path for m in result.metadata_list]


def pipeline_options(beam_args: list[str]) -> PipelineOptions:
    options = PipelineOptions(beam_args)
    options.view_as(beam.options.pipeline_options.SetupOptions).save_main_session = False
    return options


def check_beam_args(options: PipelineOptions, beam_args: list[str]) -> None:
    """Every argument toxsieve does not take must be a Beam pipeline option (of the runner's too, once
    ``make_runner`` imported it): a typo is an error before any work, not an option Beam drops."""
    unknown = set(options.get_all_options(retain_unknown_options=True)) - set(options.get_all_options())
    if unknown:
        given = [a.split("=")[0] for a in beam_args if a.startswith("-")]
        named = [a for a in given if a.lstrip("-").replace("-", "_") in unknown] or sorted(unknown)
        raise RunError(f"unrecognized argument(s): {', '.join(named)}: neither a toxsieve run option "
                       "(toxsieve run --help) nor a Beam pipeline option of this runner")


DASK_RUNNER_NAMES = ("DaskRunner", "dask", "apache_beam.runners.dask.dask_runner.DaskRunner")


def make_runner(options: PipelineOptions) -> Any:
    """The runner to use. The DirectRunner would first try Beam's PrismRunner, which downloads a
    binary (impossible offline); toxsieve runs the DirectRunner's own engine (FnApiRunner) instead.
    It honours --direct_num_workers and --direct_running_mode."""
    name = options.view_as(StandardOptions).runner
    if name in (None, "DirectRunner", "direct", "FnApiRunner"):
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner

        return FnApiRunner()
    if name in DASK_RUNNER_NAMES:  # Beam's short name is not registered, and 2.77 loses elements (docs/dask.md)
        try:
            from toxsieve.pipelines.runtime.dask_runner import DaskRunner
        except ImportError as exc:
            raise RunError(f"--runner {name} needs dask and distributed: pip install 'toxsieve[dask]'") from exc
        return DaskRunner()
    return name


def run(inputs: list[str], output: str, cfg: Config, beam_args: list[str] | None = None,
        overwrite: bool = False, run_id: str | None = None, argv: list[str] | None = None,
        resume: bool = False, keep_staging: bool = False) -> RunResult:
    started = time.time()
    started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    output = output.rstrip("/") or output
    try:  # a gs:// or s3:// location without its extra: a clear error, not a traceback in the job
        check_filesystems([output, *inputs])
    except InputListError as exc:
        raise RunError(str(exc)) from exc
    check_output_path(output)
    files = match_inputs(inputs, cfg)
    cfg = resolve_builtin_models(cfg)
    lid_model = resolve_lid_model(cfg.language.model_path)
    lists = used_list_files(cfg)
    toxicity_models = check_toxicity_models(cfg)
    options = pipeline_options(beam_args or [])
    runner = make_runner(options)
    check_beam_args(options, beam_args or [])
    if type(runner).__name__ == "DaskRunner":  # workers run elsewhere: local paths must not be relative
        files = [(_absolute(path), size) for path, size in files]
        output = _absolute(output)
    fingerprint = run_fingerprint(cfg, files)
    lock_id = run_id or new_run_id()
    with hold_output(output, lock_id):  # one run per output directory, for the whole run
        resumed: tuple[int, ...] = ()
        if resume:
            resumed, stored_id = prepare_resume(output, fingerprint, len(files))
            run_id = run_id or stored_id
            if resumed:
                _LOG.warning("resuming: %d of %d input file(s) already staged", len(resumed), len(files))
        else:
            prepare_output(output, overwrite)
        run_id = run_id or lock_id
        write_run_file(output, fingerprint, run_id)
        progress.configure(cfg.run.progress_interval_s)
        if not isinstance(runner, str):
            check_local_device(cfg)
        _LOG.warning("toxsieve run %s: %d input file(s), %s → %s", run_id, len(files),
                     _human_bytes(sum(s for _, s in files)), output)
        spec = RunSpec(inputs=[path for path, _ in files], output=output, config=cfg, run_id=run_id,
                       input_bytes=sum(size for _, size in files), resumed=resumed)
        markers = progress.progress_dir(output)
        for i in resumed:  # read by the interrupted attempt
            progress.mark_file_done(markers, files[i][0])
        tame_allocators()  # before the local runner starts its workers: they inherit the settings
        with progress.RunProgress(files, markers, cfg.run.progress_interval_s) as run_progress:
            with beam.Pipeline(runner=runner, options=options) as p:
                curate(p, spec)
        run_progress.report()  # the last line: every file read, what the run does now
        progress.remove_markers(markers)
        write_empty_outputs(output, len(files))
        wall = time.time() - started

        stats = finalize_stats(output, run_id, wall, expected_shards=len(files))
        manifest = build_manifest(run_id, started_at, cfg, files, inputs, options, lid_model, lists, stats, argv)
        manifest["models"] += toxicity_models
        manifest["resumed_inputs"] = len(resumed)  # input files staged by an interrupted attempt, not read again
        _write_json(FileSystems.join(output, STATS_FILE), stats)
        # The manifest is written last: its presence marks a complete, verified run.
        _write_json(FileSystems.join(output, MANIFEST_FILE), manifest)
        if not keep_staging:
            _delete_tree(FileSystems.join(output, STAGING_DIR))
    return RunResult(output, stats, manifest, [p for p, _ in files])


def check_output_path(output: str) -> None:
    """--output must be (or become) a directory: a regular file there, or on its path, is an error before any work."""
    if "://" in output:
        if FileSystems.exists(output):
            raise RunError(f"--output {output} is an existing file, not a directory")
        return
    path = Path(output)
    for candidate in (path, *path.parents):
        if candidate.exists():
            if not candidate.is_dir():
                what = "is" if candidate == path else f"is inside {candidate}, which is"
                raise RunError(f"--output {output} {what} an existing file, not a directory")
            return


@contextmanager
def hold_output(output: str, run_id: str) -> Iterator[None]:
    """The output directory's lock for the whole run (pipelines/runtime/lock.py); a held lock is a RunError."""
    try:
        with output_lock(output, run_id):
            yield
    except OutputLockedError as exc:
        raise RunError(str(exc)) from exc


def _delete_tree(directory: str) -> None:
    found = _list(directory)
    if found:
        FileSystems.delete(found)
    if "://" not in directory:
        import shutil

        shutil.rmtree(directory, ignore_errors=True)


def finalize_stats(output: str, run_id: str, wall_s: float, expected_shards: int | None = None) -> dict[str, Any]:
    counts_path = FileSystems.join(output, COUNTS_FILE)
    with FileSystems.open(counts_path) as fh:
        counts: dict[str, int] = json.loads(fh.read())
    FileSystems.delete([counts_path])

    files = {name: _parquet_rows(FileSystems.join(output, name)) for name in OUTPUT_DIRS}
    rows = {name: sum(n for _, n in entries) for name, entries in files.items()}
    read = counts.get("read", 0)

    removed_by_stage: dict[str, dict[str, int]] = {}
    funnel = []
    remaining = counts.get("documents", 0)
    for stage, reasons in REASONS_BY_STAGE.items():
        by_reason = {r.value: counts[f"removed/{stage.value}/{r.value}"]
                     for r in reasons if counts.get(f"removed/{stage.value}/{r.value}")}
        removed_by_stage[stage.value] = by_reason
        n_removed = sum(by_reason.values())
        funnel.append({"stage": stage.value, "in": remaining, "removed": n_removed, "out": remaining - n_removed})
        remaining -= n_removed
    languages: dict[str, dict[str, int]] = {}
    for key, n in counts.items():
        if key.startswith("language/"):
            _, decision, lang = key.split("/", 2)
            entry = languages.setdefault(lang, {"documents": 0, "kept": 0})
            entry["documents"] += n
            if decision == "kept":
                entry["kept"] += n
    languages = dict(sorted(languages.items(), key=lambda kv: (-kv[1]["documents"], kv[0])))

    accounted = rows["kept"] + rows["removed"] + rows["dead_letter"]
    checks = {
        "read == kept + removed + dead_lettered": read == accounted,
        "metadata rows == documents": rows["metadata"] == counts.get("documents", 0),
        "documents + dead_lettered == read": counts.get("documents", 0) + counts.get("dead_letter", 0) == read,
        "kept rows == kept decisions": rows["kept"] == counts.get("decision/kept", 0),
        "removed rows == removed decisions": rows["removed"] == counts.get("decision/removed", 0),
    }
    if expected_shards is not None:  # a run's own counts (rethreshold's come from stored tables)
        checks["every input shard materialised"] = counts.get("shards", 0) == expected_shards
        checks["staged records == read records"] = counts.get("staged", 0) == read
    checks.update(stage_balance_checks(counts))  # a stage that lost elements inside itself fails here
    stats: dict[str, Any] = {
        "run_id": run_id,
        "wall_time_s": round(wall_s, 3),
        "read": read,
        "documents": counts.get("documents", 0),
        "kept": rows["kept"],
        "removed": rows["removed"],
        "dead_lettered": rows["dead_letter"],
        "funnel": funnel,
        "removed_by_stage": removed_by_stage,
        "dead_letter_by_error": {k.split("/", 1)[1]: v for k, v in counts.items() if k.startswith("dead_letter/")},
        "by_format": {k.split("/", 1)[1]: v for k, v in counts.items() if k.startswith("format/")},
        "languages": languages,
        "toxicity": _toxicity_stats(counts),
        **_declared_stage_stats(counts),
        "outputs": {name: {"files": len(entries), "rows": rows[name]} for name, entries in files.items()},
        "shuffle": _shuffle_stats(counts, read),
        "stage_seconds": _stage_seconds(counts),
        "docs_per_s": round(read / wall_s, 1) if wall_s > 0 else None,
        "conservation": {"ok": all(checks.values()), "read": read, "accounted": accounted, "checks": checks},
    }
    if not stats["conservation"]["ok"]:
        _write_json(FileSystems.join(output, STATS_FILE), stats)
        failed = [name for name, ok in checks.items() if not ok]
        raise ConservationError(
            f"records were lost or duplicated: read={read}, kept={rows['kept']}, removed={rows['removed']}, "
            f"dead_lettered={rows['dead_letter']}, metadata={rows['metadata']}; failed checks: {failed}. "
            f"No manifest was written; see {FileSystems.join(output, STATS_FILE)}")
    return stats


def _declared_stage_stats(counts: dict[str, int]) -> dict[str, Any]:
    """Flags of the declared stages (pipelines/stages/; in annotate mode: what each would have removed)
    and estimated tokens of the kept documents, per language (pipelines/stages/text.py::estimate_tokens)."""
    flagged: dict[str, dict[str, int]] = {}
    tokens: dict[str, int] = {}
    for key, n in sorted(counts.items()):
        if key.startswith("flagged/"):
            _, stage, reason = key.split("/", 2)
            flagged.setdefault(stage, {})[reason] = n
        elif key.startswith("tokens/"):
            tokens[key.split("/", 1)[1]] = n
    by_language = dict(sorted(tokens.items(), key=lambda kv: (-kv[1], kv[0])))
    return {"flagged_by_stage": flagged,
            "tokens": {"estimate": "ceil(UTF-8 bytes / 4) per kept document", "kept_total": sum(tokens.values()),
                       "kept_by_language": by_language}}


def _shuffle_stats(counts: dict[str, int], read: int) -> dict[str, Any]:
    """Bytes that entered the run's shuffles (Beam's encoding of each element; pipelines/runtime/shuffle_meter.py)."""
    by_step = _under(counts, SHUFFLE_KEY)
    total = sum(by_step.values())
    return {"bytes": total, "bytes_per_document": round(total / read, 1) if read else None, "by_step": by_step}


def _under(counts: dict[str, int], key: str) -> dict[str, int]:
    """The counts ``key/<name>``, by name in name order."""
    return {k.split("/", 1)[1]: v for k, v in sorted(counts.items()) if k.startswith(key + "/")}


def _stage_seconds(counts: dict[str, int]) -> dict[str, float]:
    """Seconds each step spent on its own work, summed over workers (so CPU-like, not wall time): the
    chain's stages per input file, the staging writer and the materialise pass. Reading and the decide
    pass are the rest of the run's CPU time. Shards re-used by ``--resume`` are not in it."""
    return {name: round(us / 1e6, 3) for name, us in _under(counts, SECONDS_KEY).items()}


def _toxicity_stats(counts: dict[str, int]) -> dict[str, Any]:
    scored = counts.get("toxicity/scored", 0)
    sent = counts.get("toxicity/cascade/sent", 0)
    return {
        "scored": scored,
        "flagged": counts.get("toxicity/flagged", 0),
        "by_model": {k.split("/", 2)[2]: v for k, v in counts.items() if k.startswith("toxicity/model/")},
        "by_language": _by_language(counts, "toxicity/scored_language/"),
        # documents in languages without a toxicity model: no score, never removed for toxicity
        "unsupported": sum(v for k, v in counts.items() if k.startswith("toxicity/unsupported/")),
        "unsupported_by_language": _by_language(counts, "toxicity/unsupported/"),
        "cascade": {
            "sent_to_second_model": sent,
            "fraction_sent": round(sent / scored, 6) if scored else 0.0,
            # for the documents re-scored: did the fast model's decision at the threshold agree?
            "agreement_on_sent": round(counts.get("toxicity/cascade/agree", 0) / sent, 6) if sent else None,
        },
    }


def _by_language(counts: dict[str, int], prefix: str) -> dict[str, int]:
    found = {k.removeprefix(prefix): v for k, v in counts.items() if k.startswith(prefix)}
    return dict(sorted(found.items(), key=lambda kv: (-kv[1], kv[0])))


def _parquet_rows(directory: str) -> list[tuple[str, int]]:
    """(file, rows) for every Parquet file under a directory, from the footers only."""
    out = []
    for path in sorted(p for p in _list(directory) if p.endswith(".parquet") and "/.tmp-" not in p):
        with FileSystems.open(path) as fh:
            out.append((path, pq.ParquetFile(fh).metadata.num_rows))
    return out


def build_manifest(run_id: str, started_at: str, cfg: Config, files: list[tuple[str, int]], patterns: list[str],
                   options: PipelineOptions, lid_model: Path, lists: list[Path], stats: dict[str, Any],
                   argv: list[str] | None) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "complete": True,
        "started_at": started_at,
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": argv,
        "toxsieve_version": _version("toxsieve"),
        "git_sha": _git_sha(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "dependencies": {name: _version(name) for name in _DEPENDENCIES},
        "config": cfg.to_dict(),
        "beam": {"options": {k: v for k, v in options.get_all_options(drop_default=True).items()}},
        "inputs": {"patterns": patterns, "files": [{"path": p, "size_bytes": s} for p, s in files]},
        "models": [{"role": "language_id", "name": lid_model.name, "path": str(lid_model),
                    "sha256": sha256_path(lid_model)}],
        "lists": [{"path": _display_path(p), "sha256": sha256_path(p), "size_bytes": p.stat().st_size}
                  for p in lists],
        "schemas": {name: {"schema": schema.metadata[b"toxsieve.schema"].decode(), "version": SCHEMA_VERSION}
                    for name, schema in SCHEMAS.items()},
        "outputs": {name: f"{name}/" for name in OUTPUT_DIRS} | {"stats": STATS_FILE},
        "summary": {k: stats[k] for k in ("read", "kept", "removed", "dead_lettered")},
    }


def resolve_builtin_models(cfg: Config) -> Config:
    """``toxicity.model`` / ``cascade_model: minilm`` become the assembled directory (built on first use)."""
    from toxsieve.classifiers.registry import resolve_model_spec

    tox = cfg.toxicity
    if not tox.enabled:
        return cfg
    try:
        model, cascade = resolve_model_spec(tox.model), resolve_model_spec(tox.cascade_model)
        models = {lang: str(resolve_model_spec(spec)) for lang, spec in tox.models.items()}
        cascades = {lang: str(resolve_model_spec(spec)) for lang, spec in tox.cascade_models.items()}
    except (OSError, ValueError, ImportError) as exc:  # ImportError: the [gpu] extra is not installed
        raise RunError(f"toxicity model: {exc}") from exc
    return dataclasses.replace(cfg, toxicity=dataclasses.replace(tox, model=model, cascade_model=cascade,
                                                                 models=models, cascade_models=cascades))


def check_toxicity_models(cfg: Config) -> list[dict[str, Any]]:
    """Identity (name, path, sha256) of each toxicity model; a missing or unsafe model stops the run here."""
    tox = cfg.toxicity
    if not tox.enabled:
        return []
    out = []
    languages: dict[tuple[str, str], list[str]] = {}  # (role, model) -> the languages routed to it
    for lang, (model, cascade) in tox.routes().items():
        languages.setdefault(("toxicity", model), []).append(lang)
        if cascade:
            languages.setdefault(("toxicity_cascade", cascade), []).append(lang)
    for (role, spec), langs in languages.items():
        try:
            if is_hf_model_dir(spec):
                from toxsieve.classifiers.transformer import check_model_dir, labels_from_config

                root = check_model_dir(spec)
                labels, multi = labels_from_config(root)
                unknown = set(tox.toxic_labels) - set(labels)
                if unknown:
                    raise ValueError(f"toxicity.toxic_labels {sorted(unknown)} are not labels of {spec}: {labels}")
                out.append({"role": role, "name": root.name, "path": str(root), "sha256": sha256_path(root),
                            "labels": list(labels), "multi_label": multi, "languages": langs})
            else:
                if role == "toxicity_cascade":
                    raise ValueError("toxicity.cascade_model must be a Hugging Face model directory")
                from toxsieve.classifiers.registry import load_classifier

                classifier = load_classifier(spec)
                ident = classifier.identity()
                out.append({"role": role, "name": ident.name, "path": ident.path, "sha256": ident.sha256,
                            "labels": list(classifier.labels), "languages": langs})
        except (OSError, ValueError, NotImplementedError) as exc:
            raise RunError(f"toxicity model {spec!r}: {exc}") from exc
    return out


def check_local_device(cfg: Config) -> None:
    """On the local runner, --device cuda without a GPU is an error before any work."""
    tox = cfg.toxicity
    uses_checkpoint = tox.enabled and any(is_hf_model_dir(model) or cascade for model, cascade in tox.routes().values())
    if uses_checkpoint and tox.device.startswith("cuda"):
        try:
            import torch
        except ImportError as exc:
            raise RunError("toxicity.device is cuda but torch is not installed (pip install 'toxsieve[gpu]')") from exc
        if not torch.cuda.is_available():
            raise RunError(f"toxicity.device is {tox.device} but no CUDA GPU is visible; refusing to run on CPU")


def used_list_files(cfg: Config) -> list[Path]:
    """List files the run will read; a missing list is an error before any work starts."""
    url, words = cfg.blocklists.url, cfg.blocklists.words
    try:
        return blocklist_files(
            url.lists if url.enabled else (), url.categories,
            url.url_words_dir if url.enabled and url.banned_url_words else None,
            words.lists if words.enabled else (),
        )
    except FileNotFoundError as exc:
        raise RunError(str(exc)) from exc


def _absolute(path: str) -> str:
    return path if "://" in path else str(Path(path).absolute())


def _display_path(path: Path) -> str:
    try:
        return "builtin:" + str(path.resolve().relative_to(LISTS_DIR.resolve()))
    except ValueError:
        return str(path)


def _version(dist: str) -> str | None:
    try:
        return importlib_metadata.version(dist)
    except importlib_metadata.PackageNotFoundError:
        return None


def _git_sha() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    sha = out.stdout.strip()
    if out.returncode != 0 or not sha:
        return None
    dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, timeout=5, check=False).stdout.strip()
    return sha + ("-dirty" if dirty else "")


def _write_json(path: str, obj: dict[str, Any]) -> None:
    with FileSystems.create(path) as fh:
        fh.write((json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n").encode())


def _human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TB"


def summary_table(stats: dict[str, Any], output: str, top_languages: int = 10) -> str:
    """The human summary printed at the end of a run."""
    lines = [
        f"toxsieve run {stats['run_id']} finished in {stats['wall_time_s']:.1f}s ({stats['docs_per_s']} records/s)",
        "",
        f"  read            {stats['read']:>10,}   ({stats['documents']:,} documents, "
        f"{stats['dead_lettered']:,} dead-lettered)",
    ]
    for step in stats["funnel"]:
        removed = "-" + format(step["removed"], ",")
        lines.append(f"  {step['stage']:<15} {removed:>10}   → {step['out']:,}")
        for reason, n in stats["removed_by_stage"][step["stage"]].items():
            lines.append(f"      {reason:<24} {n:>8,}")
    lines.append(f"  kept            {stats['kept']:>10,}")
    if stats.get("tokens", {}).get("kept_total"):
        lines.append(f"  estimated tokens kept: {stats['tokens']['kept_total']:,}")
    if stats["dead_letter_by_error"]:
        lines.append("")
        lines.append("  dead letters: " + ", ".join(f"{k} {v}" for k, v in stats["dead_letter_by_error"].items()))
    lines.append("")
    lines.append("  top languages (documents / kept):")
    for lang, entry in list(stats["languages"].items())[:top_languages]:
        lines.append(f"      {lang:<8} {entry['documents']:>8,} / {entry['kept']:,}")
    tox = stats.get("toxicity") or {}
    if tox.get("scored") or tox.get("unsupported"):
        lines.append("")
        models = ", ".join(f"{k} {v:,}" for k, v in tox["by_model"].items())
        lines.append(f"  toxicity: {tox['scored']:,} scored ({models}), {tox['flagged']:,} at or above the threshold")
        if tox.get("unsupported"):
            langs = ", ".join(f"{k} {v:,}" for k, v in tox["unsupported_by_language"].items())
            lines.append(f"      {tox['unsupported']:,} in languages without a model (no score, never removed): "
                         f"{langs}")
        if tox["cascade"]["sent_to_second_model"]:
            lines.append(f"      cascade: {tox['cascade']['fraction_sent']:.1%} sent to the second model, "
                         f"agreement {tox['cascade']['agreement_on_sent']:.1%}")
    c = stats["conservation"]
    lines.append("")
    lines.append(f"  conservation: read {c['read']:,} == kept + removed + dead-lettered {c['accounted']:,}: "
                 f"{'OK' if c['ok'] else 'FAILED'}")
    lines.append("")
    lines.append(f"  outputs in {output}/: kept/ metadata/ removed/ dead_letter/ stats.json manifest.json")
    return "\n".join(lines)


def print_summary(stats: dict[str, Any], output: str) -> None:
    sys.stdout.write(summary_table(stats, output) + "\n")
