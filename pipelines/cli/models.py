"""``toxsieve classify``, ``toxsieve evaluate`` and ``toxsieve train``: the toxicity models outside the pipeline.

``classify`` scores a JSONL(.gz/.zst) or Parquet file of texts (no LID, dedup or blocklists) into
Parquet: ``id``, ``toxicity_score``, ``score_<label>`` per label, ``n_chunks``. ``evaluate`` scores a
labeled CSV/JSONL/Parquet file the same way (chunks of ``--max-words`` words, max over chunks) and
prints ROC-AUC, PR-AUC, F1, precision and recall at the threshold, overall and per group.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

SCORE_PREFIX = "score_"
MODEL_COMMANDS = ("classify", "evaluate", "train")


class InputError(ValueError):
    """A bad input file or record (reported with its location; exit status 2)."""


def add_model_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    classify = subparsers.add_parser(
        "classify", help="score a JSONL or Parquet file of texts with a toxicity model",
        description="Writes Parquet: id, toxicity_score, score_<label> per label, n_chunks (rows in input order).")
    classify.add_argument("--input", required=True, help="JSONL (.jsonl, .jsonl.gz, .jsonl.zst) or Parquet file")
    classify.add_argument("--output", required=True, help="Parquet file to write")
    _model_args(classify)
    classify.add_argument("--id-field", default="id", help="field holding the record id (default: id)")

    evaluate = subparsers.add_parser(
        "evaluate", help="score a labeled file and print ROC-AUC, PR-AUC, F1, precision and recall",
        description="Labels: 1/0, true/false, toxic/non_toxic. Documents are chunked and scored as in `classify`.")
    evaluate.add_argument("--input", required=True, help="CSV (.csv, .csv.gz), JSONL (.jsonl[.gz|.zst]) or Parquet")
    evaluate.add_argument("--label-field", required=True, help="field holding the gold label")
    _model_args(evaluate)
    evaluate.add_argument("--threshold", type=float, help="score >= threshold counts as toxic "
                          "(default: the model's recommended threshold; 0.5 for models other than the shipped one)")
    evaluate.add_argument("--toxic-value", action="append", metavar="VALUE",
                          help="label value that counts as toxic (repeatable, case-insensitive); every other "
                               "value then counts as clean, e.g. --toxic-value OFFENSE for GermEval")
    evaluate.add_argument("--group-field", help="also report metrics per value of this field (e.g. source)")
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON")
    evaluate.add_argument("--route-field", metavar="FIELD",
                          help="score each record with the model `toxsieve run` routes its language (the value "
                               "of FIELD, e.g. lang) to, as toxicity.models says (fast model only, no cascade); "
                               "records in languages without a model are counted per group, not scored")
    evaluate.add_argument("--config", help="with --route-field: the run config whose toxicity routing to use "
                                           "(default: the built-in table)")

    train = subparsers.add_parser("train", help="train a toxicity model from the labeled data in the repo")
    train_sub = train.add_subparsers(dest="model_kind", required=True)
    ft = train_sub.add_parser(
        "fasttext", help="train the fastText model deterministically (single-threaded, fixed seed)",
        description="Defaults reproduce the shipped classifiers/models/toxicity-fasttext/model.ftz. "
                    "fastText is only deterministic with one thread, so training uses one core.")
    ft.add_argument("--data", help="labeled data directory (default: classifiers/data/toxicity)")
    ft.add_argument("--output", help="model directory (default: classifiers/models/toxicity-fasttext/)")
    ft.add_argument("--language", help="train the per-language model for this language (de, pt, zh, ar, fr, pl) "
                    "from its permissively licensed data; the default output is classifiers/models/"
                    "toxicity-fasttext-<language>/, and the defaults rebuild the shipped one byte for byte")
    ft.add_argument("--seed", type=int, default=0)
    ft.add_argument("--sources", help="comma-separated data sources (default: web_comments,germeval)")
    ft.add_argument("--epoch", type=int)
    ft.add_argument("--dim", type=int)
    ft.add_argument("--no-quantize", action="store_true", help="write model.bin instead of a quantised model.ftz")
    ft.add_argument("--max-examples", type=int, help="train on a deterministic subset of this many texts")
    ft.add_argument("--heldout", help="also write the held-out split (text,label,source CSV.gz) here")


def _model_args(parser: argparse.ArgumentParser) -> None:
    from toxsieve.classifiers.base import DEFAULT_CHUNK_WORDS

    parser.add_argument("--model", help="fasttext (default), minilm (needs the [gpu] extra), a .ftz/.bin file, "
                        "or a Hugging Face model directory")
    parser.add_argument("--text-field", default="text", help="field holding the text (default: text)")
    parser.add_argument("--max-words", type=int, default=None,
                        help=f"chunk long documents into this many words; the score is the max over chunks "
                             f"(default: as `toxsieve run` does: {DEFAULT_CHUNK_WORDS} words for fastText, the "
                             "model's token window for a transformer)")
    parser.add_argument("--batch-size", type=int, default=256, help="documents scored per batch (default: 256)")


def run_model_command(args: argparse.Namespace) -> int:
    """Run ``classify`` / ``evaluate`` / ``train``; errors the user can fix give status 2 and one line."""
    try:
        if args.command == "classify":
            return _classify(args)
        if args.command == "evaluate":
            return _evaluate(args)
        if args.command == "train":
            return _train(args)
    except (FileNotFoundError, NotImplementedError, InputError, ValueError) as exc:
        sys.stderr.write(f"toxsieve: error: {exc}\n")
        return 2
    except ImportError as exc:  # a transformer model without the [gpu] extra installed
        sys.stderr.write(f"toxsieve: error: {exc} (transformer models need: pip install 'toxsieve[gpu]')\n")
        return 2
    raise ValueError(f"not a model command: {args.command}")


# --- classify -------------------------------------------------------------------------------

def _classify(args: argparse.Namespace) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from toxsieve.classifiers.base import chunking_description, score_documents
    from toxsieve.classifiers.registry import load_classifier

    _check_positive(args.max_words, "--max-words")
    _check_positive(args.batch_size, "--batch-size")
    records = read_records(args.input, [args.id_field, args.text_field])
    classifier = load_classifier(args.model)
    identity = classifier.identity()
    label_columns = [SCORE_PREFIX + label for label in classifier.labels]
    metadata = {
        "toxsieve.model": identity.name, "toxsieve.model_sha256": identity.sha256,
        "toxsieve.chunking": chunking_description(classifier, args.max_words),
        "toxsieve.toxic_labels": ",".join(classifier.toxic_labels),
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    writer: pq.ParquetWriter | None = None
    id_type: pa.DataType | None = None
    rows = 0
    try:
        for batch in _batches(records, args.batch_size):
            ids = [_field(r, args.id_field, n) for n, r in batch]
            texts = [_text(r, args.text_field, n) for n, r in batch]
            scores = score_documents(classifier, texts, args.max_words)
            id_array = pa.array(ids) if id_type is None else _cast_ids(ids, id_type)
            id_type = id_array.type
            columns = {
                "id": id_array,
                "toxicity_score": pa.array([s.toxicity_score for s in scores], pa.float32()),
                **{col: pa.array([s.label_scores[label] for s in scores], pa.float32())
                   for col, label in zip(label_columns, classifier.labels, strict=True)},
                "n_chunks": pa.array([s.n_chunks for s in scores], pa.int32()),
            }
            table = pa.table(columns)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema.with_metadata(metadata))
            writer.write_table(table.replace_schema_metadata(metadata))
            rows += len(batch)
        if writer is None:  # empty input: still write the (empty) table
            empty = pa.schema([("id", pa.string()), ("toxicity_score", pa.float32()),
                               *[(c, pa.float32()) for c in label_columns], ("n_chunks", pa.int32())], metadata)
            pq.write_table(empty.empty_table(), tmp)
    finally:
        if writer is not None:
            writer.close()
    tmp.replace(output)
    sys.stdout.write(f"scored {rows:,} documents with {identity.name} -> {output}\n")
    return 0


def _cast_ids(ids: list[Any], id_type: Any) -> Any:
    import pyarrow as pa

    try:
        return pa.array(ids, id_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InputError(f"ids change type within the file (first batch: {id_type}): {exc}") from exc


# --- evaluate -------------------------------------------------------------------------------

def _evaluate(args: argparse.Namespace) -> int:
    from toxsieve.classifiers.base import chunking_description, score_documents
    from toxsieve.classifiers.metrics import binary_metrics
    from toxsieve.classifiers.registry import load_classifier

    _check_positive(args.max_words, "--max-words")
    fields = [args.label_field, args.text_field] + ([args.group_field] if args.group_field else [])
    if args.route_field:
        return _evaluate_routed(args, fields)
    if args.config:
        raise InputError("--config goes with --route-field")
    records = read_records(args.input, fields)
    classifier = load_classifier(args.model)
    threshold = args.threshold if args.threshold is not None else getattr(classifier, "default_threshold", 0.5)
    toxic_values = frozenset(v.strip().lower() for v in args.toxic_value) if args.toxic_value else None
    labels: list[int] = []
    groups: list[str] = []
    scores: list[float] = []
    for batch in _batches(records, args.batch_size):
        texts = [_text(r, args.text_field, n) for n, r in batch]
        labels.extend(_label(_field(r, args.label_field, n), args.label_field, n, classifier.toxic_labels,
                             toxic_values)
                      for n, r in batch)
        if args.group_field:
            groups.extend(str(_field(r, args.group_field, n)) for n, r in batch)
        scores.extend(s.toxicity_score for s in score_documents(classifier, texts, args.max_words))
    if not labels:
        raise InputError(f"{args.input}: no records")
    y, s = np.array(labels), np.array(scores)
    results = {"all": binary_metrics(y, s, threshold)}
    if args.group_field:
        g = np.array(groups)
        for group in sorted(set(groups)):
            results[group] = binary_metrics(y[g == group], s[g == group], threshold)
    identity = classifier.identity()
    if args.json:
        payload = {"model": identity.name, "model_sha256": identity.sha256, "threshold": threshold,
                   "chunking": chunking_description(classifier, args.max_words),
                   "metrics": {k: {m: (None if isinstance(v, float) and math.isnan(v) else v)
                                   for m, v in r.as_dict().items()} for k, r in results.items()}}
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return 0
    sys.stdout.write(f"model {identity.name} (sha256 {identity.sha256[:12]}), threshold {threshold:g}, "
                     f"{chunking_description(classifier, args.max_words)}\n")
    header = f"{'group':<24} {'n':>8} {'toxic':>7} {'ROC-AUC':>8} {'PR-AUC':>7} {'F1':>6} {'prec':>6} {'recall':>6} {'FPR':>6}"
    sys.stdout.write(header + "\n")
    for name, r in results.items():
        sys.stdout.write(f"{name:<24} {r.n:>8,} {r.n_positive:>7,} {_f(r.roc_auc):>8} {_f(r.pr_auc):>7} "
                         f"{_f(r.f1):>6} {_f(r.precision):>6} {_f(r.recall):>6} {_f(r.false_positive_rate):>6}\n")
    return 0


def _evaluate_routed(args: argparse.Namespace, fields: list[str]) -> int:
    """``evaluate --route-field``: every record scored by its language's model, as the pipeline routes it."""
    from toxsieve.classifiers.base import score_documents
    from toxsieve.classifiers.metrics import binary_metrics
    from toxsieve.classifiers.registry import load_classifier
    from toxsieve.pipelines.config import ToxicityConfig, load_config, route_of

    if args.model:
        raise InputError("--model and --route-field exclude each other: the routing names the models")
    tox = load_config(args.config).toxicity if args.config else ToxicityConfig()
    routes = tox.routes()
    threshold = args.threshold if args.threshold is not None else tox.threshold
    toxic_values = frozenset(v.strip().lower() for v in args.toxic_value) if args.toxic_value else None
    records = read_records(args.input, [*fields, args.route_field])
    classifiers: dict[str, Any] = {}
    labels: list[int] = []
    groups: list[str] = []
    scores: list[float] = []
    models: list[str] = []
    unsupported: dict[str, int] = {}
    for batch in _batches(records, args.batch_size):
        by_model: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        for n, r in batch:
            route = route_of(routes, str(_field(r, args.route_field, n)))
            group = str(_field(r, args.group_field, n)) if args.group_field else "all"
            if route is None:
                unsupported[group] = unsupported.get(group, 0) + 1
            else:
                by_model.setdefault(route[0], []).append((n, r))
        for spec, rows in by_model.items():
            if spec not in classifiers:
                classifiers[spec] = load_classifier(spec)
            clf = classifiers[spec]
            texts = [_text(r, args.text_field, n) for n, r in rows]
            labels.extend(_label(_field(r, args.label_field, n), args.label_field, n, clf.toxic_labels, toxic_values)
                          for n, r in rows)
            groups.extend(str(_field(r, args.group_field, n)) if args.group_field else "all" for n, r in rows)
            scores.extend(s.toxicity_score for s in score_documents(clf, texts, args.max_words))
            models.extend([clf.identity().name] * len(rows))
    y, s, g = np.array(labels), np.array(scores), np.array(groups)
    results = {}
    if len(y):
        results["all"] = binary_metrics(y, s, threshold)
        for group in sorted(set(groups)) if args.group_field else []:
            results[group] = binary_metrics(y[g == group], s[g == group], threshold)
    by_group_model = {group: sorted(set(np.array(models)[g == group].tolist())) for group in sorted(set(groups))}
    if args.json:
        payload = {"routing": {lang: list(route) for lang, route in routes.items()}, "threshold": threshold,
                   "models_by_group": by_group_model, "unsupported_by_group": unsupported,
                   "metrics": {k: {m: (None if isinstance(v, float) and math.isnan(v) else v)
                                   for m, v in r.as_dict().items()} for k, r in results.items()}}
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return 0
    sys.stdout.write(f"routed by {args.route_field} ({', '.join(f'{k}: {v[0]}' for k, v in routes.items())}), "
                     f"threshold {threshold:g}\n")
    sys.stdout.write(f"{'group':<24} {'n':>8} {'toxic':>7} {'ROC-AUC':>8} {'PR-AUC':>7} {'F1':>6}  model\n")
    for name, r in results.items():
        model = ", ".join(by_group_model.get(name, [])) if name != "all" else ""
        sys.stdout.write(f"{name:<24} {r.n:>8,} {r.n_positive:>7,} {_f(r.roc_auc):>8} {_f(r.pr_auc):>7} "
                         f"{_f(r.f1):>6}  {model}\n")
    if unsupported:
        sys.stdout.write("not scored, no model for the language: "
                         + ", ".join(f"{k} {v:,}" for k, v in sorted(unsupported.items())) + "\n")
    return 0


def _f(v: float) -> str:
    return "n/a" if math.isnan(v) else f"{v:.4f}"


# Label values of common toxicity / hate-speech sets (HateCheck and its multilingual version:
# hateful / non-hateful; Dynabench: hate / nothate); anything else needs --toxic-value.
_TRUE = {"1", "true", "yes", "toxic", "hateful", "hate", "offensive", "abusive"}
_FALSE = {"0", "false", "no", "non_toxic", "not_toxic", "non-toxic", "clean", "non-hateful", "non_hateful",
          "not_hateful", "nothate", "not_hate", "not_offensive", "non_offensive", "not_abusive"}


def _label(value: Any, field: str, n: int, toxic_labels: tuple[str, ...],
           toxic_values: frozenset[str] | None = None) -> int:
    if toxic_values is not None:  # explicit: these values are toxic, every other value is clean
        return int(str(value).strip().lower() in toxic_values)
    if isinstance(value, bool | int | np.integer):
        if value in (0, 1):
            return int(value)
    elif isinstance(value, float) and value in (0.0, 1.0):
        return int(value)
    elif isinstance(value, str):
        v = value.strip().lower()
        if v in _TRUE or value in toxic_labels:
            return 1
        if v in _FALSE:
            return 0
        try:
            f = float(v)
        except ValueError:
            pass
        else:
            if f in (0.0, 1.0):
                return int(f)
    raise InputError(f"record {n}: {field}={value!r} is not a binary label (1/0, true/false, toxic/non_toxic, "
                     "hateful/non-hateful); name the toxic value(s) with --toxic-value")


# --- train ----------------------------------------------------------------------------------

def _train(args: argparse.Namespace) -> int:
    from toxsieve.classifiers.train_fasttext import (
        DEFAULT_OUTPUT,
        FastTextTrainConfig,
        language_config,
        language_model_dir,
        train_fasttext,
    )

    changes: dict[str, Any] = {"seed": args.seed}
    if args.sources:
        changes["sources"] = tuple(s.strip() for s in args.sources.split(",") if s.strip())
    if args.epoch is not None:
        changes["epoch"] = args.epoch
    if args.dim is not None:
        changes["dim"] = args.dim
    if args.no_quantize:
        changes["quantize"] = False
    if args.max_examples is not None:
        changes["max_examples"] = args.max_examples
    if args.language:
        config = language_config(args.language, **changes)
        output = Path(args.output) if args.output else language_model_dir(args.language)
    else:
        config = FastTextTrainConfig(**changes)
        output = Path(args.output) if args.output else DEFAULT_OUTPUT
    result = train_fasttext(args.data, output, config, heldout_path=args.heldout, verbose=True)
    sys.stdout.write(f"wrote {result.model_path} ({result.model_path.stat().st_size / 1e6:.1f} MB) in "
                     f"{result.seconds:.0f} s from {result.train_lines:,} training lines\n")
    for source, m in result.heldout.items():
        sys.stdout.write(f"  held-out {source:<20} n={m.n:>6,}  ROC-AUC {_f(m.roc_auc)}  PR-AUC {_f(m.pr_auc)}\n")
    return 0


# --- reading --------------------------------------------------------------------------------

def read_records(path: str | Path, fields: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(record number, record)`` from JSONL(.gz/.zst), CSV(.gz/.zst) or Parquet, streamed.

    Raises ``FileNotFoundError`` / ``InputError`` before yielding anything when the file is missing
    or its format is unknown, so callers fail before loading a model."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"input not found: {path}")
    name = path.name.lower()
    base = name.removesuffix(".gz").removesuffix(".zst").removesuffix(".zstd")
    if base.endswith(".parquet"):
        return _read_parquet(path, fields)
    if base.endswith((".jsonl", ".json", ".ndjson")):
        return _read_jsonl(path)
    if base.endswith((".csv", ".tsv")):
        return _read_csv(path, "\t" if base.endswith(".tsv") else ",")
    raise InputError(f"{path}: unknown format (expected .jsonl, .csv or .parquet, optionally .gz or .zst)")


@contextlib.contextmanager
def _open_text(path: Path) -> Iterator[io.TextIOWrapper]:
    """Text of ``path``, decompressed by the pipeline's reader: a truncated .gz/.zst raises, never ends early."""
    from toxsieve.pipelines.io.readers import decompressed

    with open(path, "rb") as raw, io.TextIOWrapper(decompressed(raw, path.name), encoding="utf-8", newline="") as fh:
        try:
            yield fh
        except (EOFError, OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: cannot read: {exc}") from exc


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with _open_text(path) as fh:
        n = 0
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{lineno}: not JSON ({exc.msg})") from exc
            if not isinstance(record, dict):
                raise InputError(f"{path}:{lineno}: a JSON object per line expected")
            yield n, record
            n += 1


def _read_csv(path: Path, delimiter: str) -> Iterator[tuple[int, dict[str, Any]]]:
    csv.field_size_limit(1 << 30)
    with _open_text(path) as fh:
        yield from enumerate(csv.DictReader(fh, delimiter=delimiter))


def _read_parquet(path: Path, fields: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    missing = [f for f in fields if f not in pf.schema_arrow.names]
    if missing:
        raise InputError(f"{path}: no column(s) {missing}; columns: {pf.schema_arrow.names}")
    n = 0
    for batch in pf.iter_batches(columns=fields, batch_size=4096):
        for record in batch.to_pylist():
            yield n, record
            n += 1


def _batches(records: Iterator[tuple[int, dict[str, Any]]], size: int) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    batch: list[tuple[int, dict[str, Any]]] = []
    for item in records:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _field(record: dict[str, Any], field: str, n: int) -> Any:
    if field not in record:
        raise InputError(f"record {n}: no field {field!r} (fields: {sorted(record)})")
    return record[field]


def _text(record: dict[str, Any], field: str, n: int) -> str:
    value = _field(record, field, n)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(f"record {n}: {field!r} is {type(value).__name__}, not a string")
    return value


def _check_positive(value: int | None, flag: str) -> None:
    if value is not None and value < 1:
        raise InputError(f"{flag} must be at least 1, not {value}")
