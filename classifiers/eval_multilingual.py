"""Per-language and cross-source figures for the toxicity models (issue 14).

    python -m toxsieve.classifiers.eval_multilingual [--data ../shared/data/toxicity/multilingual/combined.csv.gz]
        [--json out.json] [--models fasttext,fasttext-pt,...]

Reads the multilingual ``combined.csv.gz`` (text,label,lang,source: every source, the non-commercial
and unlicensed ones included, which are used here for evaluation only and are not in the repo) plus
GermEval 2018 from the repo. Each model is scored on every source of its language(s):

- a source the model was trained on counts only with its held-out rows (``split_of(text) ==
  "heldout"``, the 10 % no shipped model trained on): "held-out split";
- any other source counts whole: "cross-source" (train on A, test on B).

Scoring is as ``toxsieve run`` / ``toxsieve evaluate`` do it: chunks of 64 words (CJK characters
count as words for the v2 models), max over chunks.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from toxsieve.classifiers.base import score_documents
from toxsieve.classifiers.metrics import binary_metrics
from toxsieve.classifiers.registry import BUILTIN_MODELS, load_classifier
from toxsieve.classifiers.toxicity_data import (
    SHIPPED_DATA_DIR,
    Example,
    load_sources,
    read_multilingual_csv,
    split_of,
)

SHARED_COMBINED = Path(__file__).resolve().parents[2] / "shared" / "data" / "toxicity" / "multilingual" / "combined.csv.gz"
BAR = 0.80  # held-out ROC-AUC a per-language model needs to be on by default


def training_sources(model: str) -> tuple[set[str], str | None]:
    """Example sources the named model trained on, and its language (None: any), from training.json."""
    from toxsieve.classifiers.fasttext_toxicity import model_metadata

    meta = model_metadata(Path(BUILTIN_MODELS.get(model, Path(model))))
    counts = meta.get("train_counts_before_balancing") or {}
    language = meta.get("language")
    return (set(counts) if isinstance(counts, dict) else set()), (str(language) if language else None)


def evaluation_sets(combined: Path | None) -> dict[str, dict[str, list[Example]]]:
    """language -> source -> examples (GermEval from the repo; the rest from ``combined``)."""
    out: dict[str, dict[str, list[Example]]] = defaultdict(lambda: defaultdict(list))
    for e in load_sources(SHIPPED_DATA_DIR, ["germeval"]):
        out["de"][e.source].append(e)
    if combined is not None and combined.is_file():
        langs = {}
        import csv
        import gzip
        import io

        with io.TextIOWrapper(gzip.open(combined, "rb"), encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                langs[row["source"]] = row["lang"]
        for e in read_multilingual_csv(combined):
            out[langs[e.source]][e.source].append(e)
    return out


def evaluate(models: list[str], data: dict[str, dict[str, list[Example]]], threshold: float = 0.5
             ) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for model in models:
        classifier = load_classifier(model)
        trained_on, only = training_sources(model)
        name = classifier.identity().name
        for lang in sorted(data):
            if only and lang != only:
                continue
            for source in sorted(data[lang]):
                examples = data[lang][source]
                setting = "held-out split" if source in trained_on else "cross-source"
                if source in trained_on:
                    examples = [e for e in examples if split_of(e.text) == "heldout"]
                if not examples:
                    continue
                scores = np.array([d.toxicity_score for d in
                                   score_documents(classifier, [e.text for e in examples], None)])
                labels = np.array([e.label for e in examples])
                m = binary_metrics(labels, scores, threshold)
                rows.append({"model": model, "model_name": name, "lang": lang, "source": source,
                             "setting": setting, "n": m.n, "n_toxic": m.n_positive,
                             "roc_auc": _r(m.roc_auc), "pr_auc": _r(m.pr_auc), "f1@0.5": _r(m.f1)})
                print(f"{model:<14} {lang} {source:<20} {setting:<15} n={m.n:>6} ROC-AUC {_r(m.roc_auc)}",
                      file=sys.stderr)
    return rows


def _r(v: float) -> float | None:
    return None if math.isnan(v) else round(float(v), 4)


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | lang | source | setting | n | toxic | ROC-AUC | PR-AUC | F1 @0.5 |",
             "|---|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['lang']} | {r['source']} | {r['setting']} | {r['n']:,} | "
                     f"{r['n_toxic']:,} | {_f(r['roc_auc'])} | {_f(r['pr_auc'])} | {_f(r['f1@0.5'])} |")
    return "\n".join(lines)


def _f(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(SHARED_COMBINED), help="the multilingual combined.csv.gz")
    ap.add_argument("--models", default="fasttext," + ",".join(m for m in BUILTIN_MODELS if m != "fasttext"))
    ap.add_argument("--json", help="write the rows here as JSON")
    args = ap.parse_args(argv)
    data = evaluation_sets(Path(args.data))
    rows = evaluate([m.strip() for m in args.models.split(",") if m.strip()], data)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
