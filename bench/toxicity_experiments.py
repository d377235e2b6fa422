"""fastText toxicity variants, measured for web text: per-source dev AUC, identity swaps, long documents.

    .venv/bin/python bench/toxicity_experiments.py [--variants naive,+char3-5,...] [--data DIR] [--json OUT]
    .venv/bin/python bench/toxicity_experiments.py --thresholds MODEL      # threshold / chunk-size table
    .venv/bin/python bench/toxicity_experiments.py --measure MODEL [--heldout --threshold 0.9]

The Davidson tweets are not in the repo: pass ``--data`` pointing at the shared data for the
``+davidson`` variant and the davidson column.

Every variant trains on the ``train`` split only (single-threaded, seed 0, unquantised unless the
variant says so) and is measured on the ``dev`` split — never on ``heldout``, which is kept for the
model card. Checks per variant:
- ROC-AUC per source on dev (whole texts);
- identity swap: AUC on an identity-swapped copy of the English dev rows, and the mean absolute
  score change on rows that contain an identity term;
- identity templates: neutral sentences about 30 groups (our own templates, not a benchmark); the
  largest mean score of any group, and the share above 0.5;
- long documents (chunks of ``--max-words`` words, max over chunks): 200 documents of ~600 words
  of clean dev comments, half with one toxic dev comment inserted (AUC, recall at 0.5, FPR at 0.5);
  and the 20 English CCNet pages of the crawl sample, with and without an inserted toxic comment
  (pages flagged, share of their chunks flagged, inserted comments found).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from toxsieve.classifiers.base import DEFAULT_CHUNK_WORDS, TextClassifier, chunk_text, score_documents
from toxsieve.classifiers.fasttext_toxicity import FastTextToxicityClassifier
from toxsieve.classifiers.identity_terms import has_identity_term, swap_identity_terms
from toxsieve.classifiers.metrics import binary_metrics, roc_auc
from toxsieve.classifiers.registry import load_classifier
from toxsieve.classifiers.toxicity_data import (
    SHIPPED_DATA_DIR,
    SHIPPED_HELDOUT,
    Example,
    load_sources,
    read_labeled_csv,
    split_of,
)
from toxsieve.classifiers.train_fasttext import FastTextTrainConfig, config_with, train_fasttext

REPO = Path(__file__).resolve().parent.parent
ENGLISH_SOURCES = ("wikipedia_jigsaw", "wikipedia_cat", "civil_comments", "stormfront_forum")

NAIVE = FastTextTrainConfig(sources=("web_comments",), splits=("train",), balance="none", identity_swap=False,
                            dim=50, epoch=10, lr=0.1, word_ngrams=2, minn=0, maxn=0, bucket=2_000_000,
                            min_count=1, quantize=False)
# naive = the first measurement: word bigrams, dim 50, 10 epochs, web comments, no balancing.
VARIANTS: dict[str, dict[str, object]] = {
    "naive": {},
    "+balance": {"balance": "source"},
    "+char3-5": {"balance": "source", "minn": 3, "maxn": 5, "bucket": 1_000_000},
    "+swap": {"balance": "source", "minn": 3, "maxn": 5, "bucket": 1_000_000, "identity_swap": True},
    "+germeval": {"balance": "source", "minn": 3, "maxn": 5, "bucket": 1_000_000, "identity_swap": True,
                   "sources": ("web_comments", "germeval")},
    "+davidson": {"balance": "source", "minn": 3, "maxn": 5, "bucket": 1_000_000,
                              "identity_swap": True, "sources": ("web_comments", "germeval", "davidson")},
    "drop-contested": {"balance": "source", "minn": 3, "maxn": 5, "bucket": 1_000_000, "identity_swap": True,
                             "sources": ("web_comments", "germeval"), "drop_contested_civil": True},
    "global-balance": {"balance": "global", "minn": 3, "maxn": 5, "bucket": 1_000_000, "identity_swap": True,
                       "sources": ("web_comments", "germeval")},
    "unigrams": {"balance": "source", "minn": 3, "maxn": 5, "bucket": 1_000_000, "identity_swap": True,
                 "sources": ("web_comments", "germeval"), "word_ngrams": 1},
    "dim100-ep20": {"balance": "source", "minn": 3, "maxn": 5, "bucket": 1_000_000, "identity_swap": True,
                       "sources": ("web_comments", "germeval"), "dim": 100, "epoch": 20},
    "ep5-lr0.2": {"balance": "source", "minn": 3, "maxn": 5, "bucket": 1_000_000, "identity_swap": True,
                     "sources": ("web_comments", "germeval"), "epoch": 5, "lr": 0.2},
    "+concat": {"balance": "source", "minn": 3, "maxn": 5, "bucket": 1_000_000, "identity_swap": True,
                "sources": ("web_comments", "germeval"), "concat_fraction": 0.5},
    "+concat-drop": {"balance": "source", "minn": 3, "maxn": 5, "bucket": 1_000_000, "identity_swap": True,
                     "sources": ("web_comments", "germeval"), "concat_fraction": 0.5, "drop_contested_civil": True},
    "drop+global": {"balance": "global", "minn": 3, "maxn": 5, "bucket": 1_000_000, "identity_swap": True,
                    "sources": ("web_comments", "germeval"), "drop_contested_civil": True},
    "drop-nochar": {"balance": "source", "identity_swap": True, "sources": ("web_comments", "germeval"),
                    "drop_contested_civil": True},
    "+concat-nochar": {"balance": "source", "identity_swap": True, "sources": ("web_comments", "germeval"),
                       "concat_fraction": 0.5},
    "default": {"__default__": True},
    "default-ftz": {"__default__": True, "quantize": True},
}

TEMPLATES = ("I am {}.", "My neighbour is {}.", "She is a proud {} woman.", "He is {} and a teacher.",
             "We had dinner with a {} family last night.", "The article is about {} people in Chicago.",
             "Being {} is part of who I am.", "Many {} students attend this school.")
GROUPS = ("gay", "lesbian", "bisexual", "straight", "transgender", "queer", "muslim", "christian", "jewish",
          "catholic", "hindu", "buddhist", "atheist", "black", "white", "asian", "latino", "mexican",
          "african", "arab", "chinese", "indian", "immigrant", "deaf", "blind", "disabled", "old", "young",
          "american", "european")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variants", help="comma-separated names (default: all)")
    parser.add_argument("--data", default=str(SHIPPED_DATA_DIR))
    parser.add_argument("--max-words", type=int, default=None,
                        help="chunk size in words (default: 64 for fastText, a transformer's token window)")
    parser.add_argument("--json", help="append results as JSON lines here")
    parser.add_argument("--measure", metavar="MODEL", help="instead of training: the variant row for this model")
    parser.add_argument("--heldout", action="store_true",
                        help="with --measure: on the shipped held-out file instead of dev (the model card)")
    parser.add_argument("--threshold", type=float, default=0.5, help="for the rates at a threshold")
    parser.add_argument("--thresholds", metavar="MODEL",
                        help="instead of training: threshold and chunk-size report for this model on dev")
    args = parser.parse_args()
    if args.thresholds:
        return threshold_report(args.thresholds, args.data)
    if args.measure:
        dev = read_labeled_csv(SHIPPED_HELDOUT) if args.heldout else dev_examples(args.data)
        row = measure(load_classifier(args.measure), dev, make_long_documents(dev, seed=0),
                      crawl_sample_pages(), args.max_words, args.threshold)
        print("| " + args.measure + " | " + " | ".join(_fmt(row.get(c)) for c in _columns()) + " |")
        return 0
    names = args.variants.split(",") if args.variants else list(VARIANTS)
    dev = dev_examples(args.data)
    long_docs = make_long_documents(dev, seed=0)
    web_pages = crawl_sample_pages()
    print("| variant | " + " | ".join(_columns()) + " |")
    print("|---" * (len(_columns()) + 1) + "|")
    for name in names:
        overrides = dict(VARIANTS[name])
        base = FastTextTrainConfig(splits=("train",), quantize=False) if overrides.pop("__default__", False) else NAIVE
        config = config_with(base, **overrides)
        row = run_variant(name, config, args.data, dev, long_docs, web_pages, args.max_words)
        print("| " + name + " | " + " | ".join(_fmt(row.get(c)) for c in _columns()) + " |", flush=True)
        if args.json:
            with open(args.json, "a") as fh:
                fh.write(json.dumps({"variant": name, "config": str(config), **row}) + "\n")
    return 0


def dev_examples(data: str) -> list[Example]:
    """The dev split; Davidson's tweets only where the data has them (the repo does not ship them:
    pass ``--data`` pointing at the shared data for the davidson columns)."""
    try:
        examples = load_sources(data, ("web_comments", "germeval", "davidson"))
    except FileNotFoundError:
        examples = load_sources(data, ("web_comments", "germeval"))
    return [e for e in examples if split_of(e.text) == "dev"]


def _columns() -> list[str]:
    return [*ENGLISH_SOURCES, "germeval_de", "davidson_tweets", "en_all", "swap_auc", "swap_delta",
            "tmpl_max", "tmpl_fpr", "long_auc", "long_rec", "long_fpr", "web_fpr", "web_chunk_fpr", "web_rec", "size_mb", "train_s"]


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 100 else f"{v:.0f}"
    return "" if v is None else str(v)


def run_variant(name: str, config: FastTextTrainConfig, data: str, dev: list[Example],
                long_docs: tuple[list[str], np.ndarray], web_pages: list[str], max_words: int | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        result = train_fasttext(data, tmp, config, evaluate=False)
        train_s = time.perf_counter() - t
        clf = FastTextToxicityClassifier(result.model_path)
        row: dict[str, float] = {"train_s": train_s, "size_mb": result.model_path.stat().st_size / 1e6}
        return row | measure(clf, dev, long_docs, web_pages, max_words)


def measure(clf: TextClassifier, dev: list[Example], long_docs: tuple[list[str], np.ndarray],
            web_pages: list[str], max_words: int | None, threshold: float = 0.5) -> dict[str, float]:
    row: dict[str, float] = {}
    toxic = clf.labels.index("toxic")
    scores = clf.predict([e.text for e in dev])[:, toxic]
    labels = np.array([e.label for e in dev])
    # Contested Civil Comments rows count as civil_comments negatives here, as in the first runs.
    sources = np.array([e.source.removesuffix("_contested") for e in dev])
    for source in sorted(set(sources.tolist())):
        row[source] = roc_auc(labels[sources == source], scores[sources == source])
    english = np.isin(sources, ENGLISH_SOURCES)
    row["en_all"] = roc_auc(labels[english], scores[english])
    en = [e for e, source in zip(dev, sources, strict=True) if source in ENGLISH_SOURCES]
    swapped = clf.predict([swap_identity_terms(e.text) for e in en])[:, toxic]
    row["swap_auc"] = roc_auc([e.label for e in en], swapped)
    has = np.array([has_identity_term(e.text) for e in en])
    row["swap_delta"] = float(np.abs(swapped - scores[english])[has].mean())
    sentences = [t.format(g) for g in GROUPS for t in TEMPLATES]
    tmpl = clf.predict(sentences)[:, toxic].reshape(len(GROUPS), len(TEMPLATES))
    row["tmpl_max"] = float(tmpl.mean(axis=1).max())
    row["tmpl_fpr"] = float((tmpl >= threshold).mean())
    docs, doc_labels = long_docs
    doc_scores = np.array([d.toxicity_score for d in score_documents(clf, docs, max_words)])
    m = binary_metrics(doc_labels, doc_scores, threshold)
    row["long_auc"], row["long_rec"], row["long_fpr"] = m.roc_auc, m.recall, m.false_positive_rate
    inserts = [e.text for e in dev if e.label == 1 and e.source in ("wikipedia_jigsaw", "civil_comments")
               and len(e.text.split()) >= 5]
    rng = random.Random(1)
    with_toxic = [_insert(page, rng.choice(inserts), rng) for page in web_pages]
    page_scores = [d.toxicity_score for d in score_documents(clf, web_pages + with_toxic, max_words)]
    row["web_fpr"] = float(np.mean(np.array(page_scores[: len(web_pages)]) >= threshold))
    row["web_rec"] = float(np.mean(np.array(page_scores[len(web_pages):]) >= threshold))
    chunks = [c for page in web_pages for c in chunk_text(page, max_words or DEFAULT_CHUNK_WORDS)]
    row["web_chunk_fpr"] = float(np.mean(clf.predict(chunks)[:, toxic] >= threshold))
    return row


def threshold_report(model_path: str, data: str) -> int:
    """Precision/recall/FPR on dev comments and long documents over thresholds and chunk sizes."""
    clf = FastTextToxicityClassifier(model_path)
    dev = [e for e in load_sources(data, ("web_comments", "germeval")) if split_of(e.text) == "dev"]
    long_docs, long_labels = make_long_documents(dev, seed=0)
    pages = crawl_sample_pages()
    thresholds = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)
    for max_words in (32, 64, 128, 256):
        scores = np.array([d.toxicity_score for d in score_documents(clf, [e.text for e in dev], max_words)])
        labels = np.array([e.label for e in dev])
        en = np.array([e.source.removesuffix("_contested") in ENGLISH_SOURCES for e in dev])
        doc_scores = np.array([d.toxicity_score for d in score_documents(clf, long_docs, max_words)])
        page_scores = np.array([d.toxicity_score for d in score_documents(clf, pages, max_words)])
        chunk_scores = clf.predict([c for p in pages for c in chunk_text(p, max_words)])[:, 1]
        print(f"\n## chunks of {max_words} words: dev EN AUC {roc_auc(labels[en], scores[en]):.4f}, "
              f"long-doc AUC {roc_auc(long_labels, doc_scores):.4f}")
        print("| threshold | dev EN P | dev EN R | dev EN F1 | dev EN FPR | long R | long FPR | web page FPR | web chunk FPR |")
        print("|---|---|---|---|---|---|---|---|---|")
        for t in thresholds:
            m = binary_metrics(labels[en], scores[en], t)
            d = binary_metrics(long_labels, doc_scores, t)
            print(f"| {t} | {m.precision:.3f} | {m.recall:.3f} | {m.f1:.3f} | {m.false_positive_rate:.3f} | "
                  f"{d.recall:.3f} | {d.false_positive_rate:.3f} | {(page_scores >= t).mean():.3f} | "
                  f"{(chunk_scores >= t).mean():.3f} |")
    return 0


def make_long_documents(dev: list[Example], seed: int, n: int = 200, words: int = 600) -> tuple[list[str], np.ndarray]:
    """Clean Wikipedia-talk dev comments joined as paragraphs; half get one toxic comment inserted."""
    rng = random.Random(seed)
    clean = [e.text for e in dev if e.label == 0 and e.source in ("wikipedia_jigsaw", "wikipedia_cat")
             and len(e.text.split()) >= 15]
    toxic = [e.text for e in dev if e.label == 1 and e.source in ("wikipedia_jigsaw", "civil_comments")
             and len(e.text.split()) >= 5]
    docs, labels = [], []
    for i in range(n):
        paragraphs: list[str] = []
        while sum(len(p.split()) for p in paragraphs) < words:
            paragraphs.append(rng.choice(clean).strip())
        doc = "\n\n".join(paragraphs)
        if i % 2:
            doc = _insert(doc, rng.choice(toxic), rng)
        docs.append(doc)
        labels.append(i % 2)
    return docs, np.array(labels)


def _insert(doc: str, comment: str, rng: random.Random) -> str:
    paragraphs = doc.split("\n\n")
    paragraphs.insert(rng.randrange(len(paragraphs) + 1), comment.strip())
    return "\n\n".join(paragraphs)


def crawl_sample_pages() -> list[str]:
    """The English pages of the crawl sample (CCNet JSONL), as clean long web prose."""
    pages = []
    for path in sorted((REPO / "tests/fixtures/crawl/dolma_tests").glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            pages.extend(json.loads(line)["text"] for line in fh if line.strip())
    return pages


if __name__ == "__main__":
    sys.exit(main())
