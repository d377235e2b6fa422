"""fastText vs MiniLM vs the cascade, side by side on the same texts and CPU threads.

    .venv/bin/python bench/toxicity_models_bench.py [--repeat 3] [--comments 1000] [--out docs/benchmarks.md]

Needs the [gpu] extra (torch, transformers, the MiniLM encoder package); runs on CPU unless
``--device cuda``. Each model scores documents as the pipeline does (fastText: 64-word chunks;
MiniLM: its 256-token windows; both max over chunks). The cascade scores everything with fastText
and sends the documents whose fast score lies in the default band to MiniLM. Rewrites only the
section between the bench:toxicity-models markers of the output file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script: make `bench` importable

from bench.common import cpu_model, median_time, write_section  # noqa: E402
from bench.toxicity_bench import web_pages  # noqa: E402
from toxsieve.classifiers.base import score_documents  # noqa: E402
from toxsieve.classifiers.registry import load_classifier  # noqa: E402
from toxsieve.classifiers.toxicity_data import SHIPPED_HELDOUT, read_labeled_csv  # noqa: E402
from toxsieve.pipelines.config import ToxicityConfig  # noqa: E402

START, END = "<!-- bench:toxicity-models:start -->", "<!-- bench:toxicity-models:end -->"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--comments", type=int, default=1000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(REPO / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    import torch

    fast = load_classifier("fasttext")
    slow = load_classifier("minilm", device=args.device)
    band = ToxicityConfig()
    sets = {"web pages (crawl sample)": web_pages(),
            f"held-out comments (first {args.comments:,})": [e.text for e in read_labeled_csv(SHIPPED_HELDOUT)]
            [: args.comments]}
    rows = []
    for name, texts in sets.items():
        fast_scores = [d.toxicity_score for d in score_documents(fast, texts, None)]
        unsure = [t for t, s in zip(texts, fast_scores, strict=True) if band.cascade_low <= s <= band.cascade_high]
        t_fast = median_time(lambda t=texts: score_documents(fast, t, None), args.repeat)
        t_slow = median_time(lambda t=texts: score_documents(slow, t, None), args.repeat)
        t_cascade = t_fast + median_time(lambda u=unsure: score_documents(slow, u, None), args.repeat)
        n = len(texts)
        rows.append(f"| {name} | {n:,} | {n / t_fast:,.0f} | {n / t_slow:,.1f} | {n / t_cascade:,.1f} "
                    f"({len(unsure) / n:.0%} sent) | {t_slow / t_fast:,.0f}× |")
    report = "\n".join([
        START,
        "## Toxicity models side by side (issue #6)",
        "",
        f"Machine: {os.cpu_count()} cores, {cpu_model()}; torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads, device {args.device}; {dt.date.today().isoformat()}. Command: "
        "`.venv/bin/python bench/toxicity_models_bench.py`. Documents per second, median of "
        f"{args.repeat} passes, the three on the same texts in one run. fastText scores 64-word chunks, "
        "MiniLM 256-token windows, both max over chunks; the cascade is fastText on everything plus "
        f"MiniLM on the documents whose fast score lies in [{band.cascade_low}, {band.cascade_high}].",
        "",
        "| input | docs | fastText docs/s | MiniLM docs/s | cascade docs/s | MiniLM / fastText time |",
        "|---|---|---|---|---|---|",
        *rows,
        END,
    ])
    write_section(Path(args.out), START, END, report)
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
