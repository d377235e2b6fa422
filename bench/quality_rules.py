"""What each declared quality rule removes on a crawl sample: one command, figures for docs/quality.md.

    .venv/bin/python bench/quality_rules.py [--input GLOB ...] [--output out/quality_rules]

Runs ``toxsieve run`` with every declared stage in annotate mode (nothing removed by them, every
document scored; toxicity and near-dedup off) and prints, per stage and reason, how many documents
the rule would remove, by language, with examples; then what C4's line rules strip; then the
scoring cost of each stage per document, next to resiliparse extraction of the same WARC pages.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import yaml

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "tests" / "fixtures" / "crawl"
DEFAULT_INPUTS = [str(SAMPLE / "*" / "*.warc.gz"), str(SAMPLE / "*" / "*.warc.wet.gz"), str(SAMPLE / "*" / "*.jsonl.gz")]


def main(argv: list[str] | None = None) -> int:
    from toxsieve.pipelines.cli.main import main as toxsieve
    from toxsieve.pipelines.stages import QUALITY_STAGES as STAGES

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", action="append", help="input glob (default: the shipped crawl sample)")
    ap.add_argument("--output", default=str(REPO / "out" / "quality_rules"))
    ap.add_argument("--examples", type=int, default=3)
    args = ap.parse_args(argv)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    cfg = {"input": {"url_field": "metadata.url", "date_field": "created"},
           "toxicity": {"enabled": False}, "near_dedup": {"enabled": False},
           "quality": {s.name: {"enabled": True, "mode": "annotate"} for s in STAGES}}
    cfg_path = out / "config.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    run_dir = out / "run"
    argv_run = ["run", "--config", str(cfg_path), "--output", str(run_dir), "--overwrite", "--quiet"]
    for pattern in args.input or DEFAULT_INPUTS:
        argv_run += ["--input", pattern]
    if toxsieve(argv_run) != 0:
        return 1
    meta = [r for r in pq.read_table(run_dir / "metadata").to_pylist() if r["length_flag"] is not None
            or r["length_words"] is not None]
    texts = {r["doc_id"]: r["text"] for r in pq.read_table(run_dir / "kept").to_pylist()}
    n = len(meta)
    print(f"{n} documents reached the declared stages (after extraction, language ID and word lists)\n")
    print("| stage | reason | flagged | by language | examples (url: first words) |")
    print("|---|---|---|---|---|")
    for stage in STAGES:
        by_reason: dict[str, list[dict]] = defaultdict(list)
        for row in meta:
            if row[stage.flag_column]:
                by_reason[row[stage.flag_column]].append(row)
        for reason, _ in stage.reasons:
            rows = by_reason.get(reason, [])
            langs = Counter(r["language"] for r in rows)
            examples = "; ".join(
                f"{(r['url'] or r['doc_id'])[:45]}: {' '.join((texts.get(r['doc_id']) or '').split()[:8])[:60]}"
                .replace("|", "/") for r in rows[:args.examples])
            print(f"| {stage.name} | {reason} | {len(rows)} ({len(rows) / max(1, n):.0%}) | "
                  f"{', '.join(f'{k} {v}' for k, v in langs.most_common())} | {examples} |")
        flagged = sum(1 for r in meta if r[stage.flag_column])
        print(f"| {stage.name} | any | {flagged} ({flagged / max(1, n):.0%}) | | |")
    lines = Counter()
    for row in meta:
        for key in ("lines", "lines_kept", "lines_long_word", "lines_no_terminal_punct", "lines_too_few_words",
                    "lines_javascript", "lines_policy"):
            lines[key] += row[f"c4_{key}"] or 0
    chars = sum((row["c4_chars_kept_frac"] or 0) * len(texts.get(row["doc_id"]) or "") for row in meta)
    total = sum(len(texts.get(row["doc_id"]) or "") for row in meta)
    print(f"\nC4 line rules on {lines['lines']} lines: kept {lines['lines_kept']} "
          f"({lines['lines_kept'] / max(1, lines['lines']):.0%}), ~{chars / max(1, total):.0%} of the characters; "
          + ", ".join(f"{k[6:]} {v}" for k, v in lines.items() if k.startswith("lines_") and k != "lines_kept"))
    _timing(SAMPLE if not args.input else None)
    return 0


def _timing(sample: Path | None, repeats: int = 3) -> None:
    """Per-document cost of each stage's score() vs extracting the same page (WARC pages only)."""
    import platform
    import time

    from toxsieve.pipelines.config import InputConfig
    from toxsieve.pipelines.document import Document
    from toxsieve.pipelines.io.readers import read_shard
    from toxsieve.pipelines.stages import QUALITY_STAGES as STAGES
    from toxsieve.pipelines.stages import QualityConfig
    from toxsieve.pipelines.stages import text as T
    from toxsieve.pipelines.stages.extract import html_to_text, normalize_text

    if sample is None:
        return
    pages = []
    for path in sorted(sample.glob("*/*.warc.gz")):
        with open(path, "rb") as fh:
            pages += [d for d in read_shard(fh, str(path), "warc", InputConfig())
                      if isinstance(d, Document) and d.html and d.removal is None]
    t0 = time.perf_counter()
    for _ in range(repeats):
        texts = [normalize_text(html_to_text(d.html)) for d in pages]
    extract_ms = (time.perf_counter() - t0) / repeats / len(pages) * 1000
    docs = [Document(d.doc_id, "x", 0, "warc", text=t, language="en") for d, t in zip(pages, texts, strict=True)]
    quality = QualityConfig()
    print(f"\nscoring cost, {len(docs)} WARC pages, {platform.machine()}, {time.strftime('%Y-%m-%d')}: "
          f"extraction {extract_ms:.2f} ms/page")
    for stage in STAGES:
        cfg = getattr(quality, stage.name)
        t0 = time.perf_counter()
        for _ in range(repeats):
            for doc in docs:
                T.words.cache_clear()  # each stage alone, tokenising for itself
                stage.score(doc, cfg)
        ms = (time.perf_counter() - t0) / repeats / len(docs) * 1000
        print(f"  {stage.name:<18} {ms:6.2f} ms/doc  ({ms / extract_ms:.2f}x extraction)")
    t0 = time.perf_counter()
    for _ in range(repeats):
        for doc in docs:
            for stage in STAGES:
                stage.score(doc, getattr(quality, stage.name))
    ms = (time.perf_counter() - t0) / repeats / len(docs) * 1000
    print(f"  all five in a row  {ms:6.2f} ms/doc  ({ms / extract_ms:.2f}x extraction; words tokenised once)")


if __name__ == "__main__":
    sys.exit(main())
