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


CITATIONS = {
    "germeval": "Wiegand, Siegel, Ruppenhofer (2018), Overview of the GermEval 2018 Shared Task on the "
                "Identification of Offensive Language (uds-lsv/GermEval-2018-Data)",
    "told_br_pt": "Leite, Silva, Bontcheva, Scarton (2020), Toxic Language Detection in Social Media for Brazilian "
                  "Portuguese, AACL-IJCNLP (joaoaleite/ToLD-Br)",
    "cold_zh": "Deng, Zhou, Sun, Mi, Huang (2022), COLD: A Benchmark for Chinese Offensive Language Detection, "
               "EMNLP (thu-coai/COLDataset)",
    "mlma_ar": "Ousidhoum, Lin, Zhang, Song, Yeung (2019), Multilingual and Multi-Aspect Hate Speech Analysis, "
               "EMNLP-IJCNLP (HKUST-KnowComp/MLMA_hate_speech)",
    "mlma_fr": "Ousidhoum, Lin, Zhang, Song, Yeung (2019), Multilingual and Multi-Aspect Hate Speech Analysis, "
               "EMNLP-IJCNLP (HKUST-KnowComp/MLMA_hate_speech)",
    "poleval2019_cbd_pl": "Ptaszynski, Pieciukiewicz, Dybała (2019), Results of the PolEval 2019 Shared Task 6 "
                          "(ptaszynski/cyberbullying-Polish)",
}
DATA_FOLDERS = {"germeval": "germeval2018_de", "told_br_pt": "multilingual/told_br_pt",
                "cold_zh": "multilingual/cold_zh", "mlma_ar": "multilingual/mlma_ar_fr",
                "mlma_fr": "multilingual/mlma_ar_fr", "poleval2019_cbd_pl": "multilingual/poleval2019_cbd_pl"}


def decision(lang: str, rows: list[dict[str, Any]]) -> tuple[bool, str]:
    """On by default? The held-out ROC-AUC bar, on sources not trained on where the language has them."""
    own = [r for r in rows if r["model"] == f"fasttext-{lang}" and r["roc_auc"] is not None]
    cross = [r for r in own if r["setting"] == "cross-source"]
    basis = cross or [r for r in own if r["setting"] == "held-out split"]
    if not basis:
        return False, "no evaluation data"
    worst = min(basis, key=lambda r: r["roc_auc"])
    where = "cross-source (trained on another source)" if cross else "held-out split of its only source"
    ok = worst["roc_auc"] >= BAR
    text = (f"ROC-AUC {worst['roc_auc']:.3f} on {worst['source']} ({where}) {'>=' if ok else '<'} {BAR:.2f}")
    # the English model may read the language better (it trained on GermEval): compare on the same rows
    english = [r for r in rows if r["model"] == "fasttext" and r["lang"] == lang and r["source"] == worst["source"]
               and r["setting"] == worst["setting"] and r["roc_auc"] is not None]
    if ok and english and english[0]["roc_auc"] > worst["roc_auc"]:
        return False, (f"off by default: {text}, but the English model `fasttext` (trained on this source too) "
                       f"measures {english[0]['roc_auc']:.3f} on the same rows, so `{lang}` routes to `fasttext`")
    return ok, f"{'on' if ok else 'off'} by default: {text}"


def _routing_note(lang: str, on: bool) -> str:
    from toxsieve.pipelines.config import DEFAULT_LANGUAGE_MODELS

    builtin = DEFAULT_LANGUAGE_MODELS.get(lang)
    if on:
        assert builtin == f"fasttext-{lang}", f"DEFAULT_LANGUAGE_MODELS[{lang!r}] disagrees with the figures"
        return "It is in the built-in routing table (`pipelines/config.py`, `DEFAULT_LANGUAGE_MODELS`)."
    assert builtin != f"fasttext-{lang}", f"DEFAULT_LANGUAGE_MODELS[{lang!r}] disagrees with the figures"
    opt_in = f"Opt in with `toxicity.models: {{{lang}: fasttext-{lang}}}` (laid over the built-in table)"
    if builtin:
        return f"{opt_in}; without that, `{lang}` documents go to `{builtin}`."
    return f"{opt_in}; without that, `{lang}` documents get `toxicity_supported = false` and no score."


def model_card(lang: str, rows: list[dict[str, Any]]) -> str:
    """MODEL_CARD.md of the shipped per-language model, from its training.json and the figures."""
    from toxsieve.classifiers.train_fasttext import language_model_dir

    folder = language_model_dir(lang)
    record = json.loads((folder / "training.json").read_text(encoding="utf-8"))
    config = record["config"]
    on, why = decision(lang, rows)
    size = (folder / record["model"]).stat().st_size
    lines = [
        f"# {record['name']}: the per-language toxicity model for `{lang}`",
        "",
        f"- File: `{record['model']}` ({size:,} bytes, sha256 `{record['model_sha256']}`): a supervised fastText "
        f"classifier, quantised (product quantisation, {config['cutoff']:,} rows kept), labels `non_toxic` / "
        "`toxic`; `toxicity_score` = P(`toxic`).",
        f"- Used by `toxsieve run` for documents that LID labels `{lang}` when `toxicity.models` routes them to "
        f"`fasttext-{lang}`; also `toxsieve classify|evaluate --model fasttext-{lang}`.",
        f"- **Routing: {why}.** " + _routing_note(lang, on),
        f"- Rebuilt byte for byte by `toxsieve train fasttext --language {lang}` (one thread, seed "
        f"{config['seed']}, a fresh process); `training.json` records the config, data checksums and "
        "package version.",
        "- Warning: the data it learned from contains offensive text.",
        "",
        "## Training data (permissive licenses only)",
        "",
        "| source | license | attribution | texts (clean / toxic, before balancing) | data |",
        "|---|---|---|---|---|",
    ]
    counts = record["train_counts_before_balancing"]
    for source, license_name in record["training_sources"].items():
        example_source = "germeval_de" if source == "germeval" else source
        c = counts.get(example_source, {"clean": 0, "toxic": 0})
        lines.append(f"| {source} | {license_name} | {CITATIONS.get(source, '')} | {c['clean']:,} / {c['toxic']:,} | "
                     f"`classifiers/data/toxicity/{DATA_FOLDERS.get(source, '')}/` |")
    lines += [
        "",
        "Each source's PROVENANCE.md (in its data folder) gives the repository and commit, the label mapping "
        "and caveats. Trained on the `train` and `dev` hash splits (90 %); the `heldout` split (10 %, "
        "`toxicity_data.split_of`) is never trained on. Non-commercial and unlicensed sources are used "
        "below for evaluation only.",
        "",
        "## Preprocessing (v2) and chunking",
        "",
        "`fasttext_toxicity.preprocess_v2`, at training and at prediction time: the source masks "
        "(`@user`, `USER`, `<user>`, `@USER`, `@anonymized_account`, `URL`, `@url`, `<url>`, `HASHTAG`, `<LF>`, "
        "`|LBR|`) become what a real mention or link becomes (`xxuser`, `xxurl`), so the model cannot learn a "
        "source from its mask; then the English model's preprocessing (NFKC, lower case, numbers, repeats, "
        "punctuation); then every CJK character is its own token (Chinese has no spaces: word bigrams become "
        "character bigrams). Long documents are cut into chunks of 64 words, CJK characters counting as words, "
        "and the score is the max over chunks.",
        "",
        f"Hyper-parameters: dim {config['dim']}, epoch {config['epoch']}, lr {config['lr']}, word n-grams "
        f"{config['word_ngrams']}, char n-grams {config['minn']}-{config['maxn']}, {config['bucket']:,} buckets, "
        f"per-source balancing (minority upsampled at most {config['max_upsample']:g}x).",
        "",
        "## Evaluation",
        "",
        "`python -m toxsieve.classifiers.eval_multilingual` (chunks of 64 words, max over chunks; F1 at 0.5). "
        "\"held-out split\": the 10 % of a training source never trained on; \"cross-source\": a whole source "
        "the model never saw (train on A, test on B). The English model (`fasttext`) on the same rows for "
        "comparison.",
        "",
        markdown([r for r in rows if r["lang"] == lang and r["model"] in ("fasttext", f"fasttext-{lang}")]),
        "",
        "## Limitations",
        "",
        "- Social-media comments, not web pages: web text is none of these sources; cross-source figures are "
        "the better guide where they exist.",
        "- \"Toxic\" means what each source's annotators meant (classifiers/data/toxicity/multilingual/README.md).",
        "- The default threshold of `toxsieve run` (0.9) was chosen for the English model; in annotate mode "
        "(the default) every score is kept and `toxsieve rethreshold --threshold-per-language` re-decides.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(SHARED_COMBINED), help="the multilingual combined.csv.gz")
    ap.add_argument("--models", default="fasttext," + ",".join(m for m in BUILTIN_MODELS if m != "fasttext"))
    ap.add_argument("--json", help="write the rows here as JSON")
    ap.add_argument("--rows", help="instead of scoring: the rows a previous --json wrote")
    ap.add_argument("--write-cards", action="store_true",
                    help="write MODEL_CARD.md and eval.json of every shipped per-language model")
    args = ap.parse_args(argv)
    if args.rows:
        rows = json.loads(Path(args.rows).read_text(encoding="utf-8"))
    else:
        rows = evaluate([m.strip() for m in args.models.split(",") if m.strip()], evaluation_sets(Path(args.data)))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    print(markdown(rows))
    if args.write_cards:
        from toxsieve.classifiers.registry import LANGUAGE_MODEL_LANGUAGES
        from toxsieve.classifiers.train_fasttext import language_model_dir

        for lang in LANGUAGE_MODEL_LANGUAGES:
            folder = language_model_dir(lang)
            if (folder / "training.json").is_file():
                (folder / "MODEL_CARD.md").write_text(model_card(lang, rows), encoding="utf-8")
                mine = [r for r in rows if r["lang"] == lang and r["model"] in ("fasttext", f"fasttext-{lang}")]
                (folder / "eval.json").write_text(json.dumps({"decision": decision(lang, rows)[1], "rows": mine},
                                                             indent=1) + "\n", encoding="utf-8")
                print(f"{lang}: {decision(lang, rows)[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
