"""One large run (issue #11): `toxsieve run` over 1,000,000 generated documents with near-dedup and
toxicity on, 2 local workers; wall time, peak memory of the whole process tree, bytes shuffled and the
time each step spent on its own work (stats.json's stage_seconds).

Usage: .venv/bin/python bench/million_bench.py [--docs 1000000] [--shards 64] [--workers 2]
           [--no-toxicity] [--out docs/benchmarks.md]

The corpus is bench/pipeline_bench.py's (real sentences from the crawl fixtures recombined, seeded,
cached under out/bench/pipeline/corpus/). The config is the streaming bench's stages (LID, word
blocklist, exact and MinHash dedup) plus the shipped fastText toxicity model: the stages of the issue's
table with toxicity on. One run, in a fresh process, as a user would start it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import cpu_model, write_section  # noqa: E402
from bench.pipeline_bench import TOXSIEVE, WORK_DIR, _gb, ensure_corpus, run_measured, wait_for_quiet  # noqa: E402
from bench.streaming_bench import SAME_STAGES  # noqa: E402

START, END = "<!-- bench:million:start -->", "<!-- bench:million:end -->"
START_NOTOX, END_NOTOX = "<!-- bench:million-notox:start -->", "<!-- bench:million-notox:end -->"
HEADING = "## One million documents (issue #11)"
CONFIG = SAME_STAGES.replace("toxicity: {enabled: false}\n", "")  # toxicity on, as shipped


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--shards", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--settle", type=float, default=10.0, help="wait up to this long for a quiet machine")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--no-toxicity", action="store_true",
                        help="toxicity off (its own table): the shuffles and dedup are the same, the run shorter")
    args = parser.parse_args()
    start, end = (START, END) if not args.no_toxicity else (START_NOTOX, END_NOTOX)

    corpus = ensure_corpus(args.docs, args.shards, 0, WORK_DIR, {})
    work = REPO / "out" / "bench" / "million"
    work.mkdir(parents=True, exist_ok=True)
    config = work / "config.yaml"
    config.write_text(SAME_STAGES if args.no_toxicity else CONFIG)
    out = work / "run"
    mode = ["--direct_num_workers", str(args.workers), "--direct_running_mode",
            "in_memory" if args.workers == 1 else "multi_processing"]
    wait_for_quiet(args.settle)
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    cmd = [str(TOXSIEVE), "run", "--input", corpus.glob, "--output", str(out), "--overwrite", "--quiet",
           "--config", str(config), *mode]
    m = run_measured(cmd, work / "run.log", f"{args.workers}w", "million", 0)
    if m.returncode != 0:
        raise SystemExit(f"the run failed (exit {m.returncode}); log {work / 'run.log'}")
    stats = json.loads((out / "stats.json").read_text())
    seconds = stats["stage_seconds"]
    accounted = sum(seconds.values())
    lines = [start,
             f"Measured {started}: {cpu_model()}, 2 cores, Python {platform.python_version()}, Beam 2.77.0, "
             f"{args.workers} local worker(s). Command: `.venv/bin/python bench/million_bench.py --docs {args.docs} "
             f"--shards {args.shards} --workers {args.workers}{' --no-toxicity' if args.no_toxicity else ''}`. Corpus: {args.docs:,} JSONL.gz documents in "
             f"{args.shards} files ({corpus.description.get('text_bytes', 0) / 1e9:.2f} GB uncompressed text); stages: "
             f"LID, word blocklist, exact and MinHash near-dedup{'' if args.no_toxicity else ', fastText toxicity'}. "
             "The mean load of other "
             f"processes during the run: {m.background_cores:.2f} cores.",
             "",
             "| documents | wall | docs/s | peak RSS (process tree) | per document | shuffled | kept | removed |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|",
             f"| {stats['read']:,} | {m.wall_s / 60:.1f} min | {stats['read'] / m.wall_s:,.0f} | "
             f"{_gb(m.peak_rss_bytes)} | {m.peak_rss_bytes / stats['read']:,.0f} B | "
             f"{stats['shuffle']['bytes'] / 1e6:,.0f} MB ({stats['shuffle']['bytes_per_document']} B/doc) | "
             f"{stats['kept']:,} | {stats['removed']:,} |",
             "",
             "Time each step spent on its own work, summed over both workers (stats.json `stage_seconds`); the "
             "rest of the CPU time is reading and decompressing, Beam's per-element overhead between steps and "
             "the decide pass:",
             "",
             "| step | seconds | ms per document | share of CPU time |",
             "|---|---:|---:|---:|"]
    for name, s in sorted(seconds.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {name} | {s:,.0f} | {1000 * s / stats['read']:.3f} | {s / m.cpu_s:.0%} |")
    rest = m.cpu_s - accounted
    lines += [f"| (rest: reading, Beam between steps, decide pass) | {rest:,.0f} | {1000 * rest / stats['read']:.3f} "
              f"| {rest / m.cpu_s:.0%} |",
              f"| **CPU time of the process tree** | {m.cpu_s:,.0f} | {1000 * m.cpu_s / stats['read']:.3f} | 100% |",
              "",
              f"Conservation: {stats['conservation']['ok']} (read {stats['read']:,} = kept + removed + dead-lettered).",
              end]
    block = "\n".join(lines)
    write_section(args.out, start, end, block, HEADING)
    print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
