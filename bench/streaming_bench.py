"""Streaming (issue #11): peak memory, its growth per document, throughput and shuffled bytes of
`toxsieve run` at two corpus sizes, 1 and 2 local workers; optionally the same runs with another
toxsieve (e.g. the engine before the three-pass redesign) side by side.

Usage: .venv/bin/python bench/streaming_bench.py [--docs 20000 100000] [--shards 16]
           [--baseline PATH/TO/other/.venv/bin/toxsieve --baseline-name NAME] [--out docs/benchmarks.md]

The corpus is bench/pipeline_bench.py's (real sentences from the crawl fixtures recombined, seeded,
cached under out/bench/pipeline/corpus/). The config runs the stages of the issue's table: LID, word
blocklist, exact and MinHash dedup (toxicity, URL lists and quality rules off). Each run is a
fresh process, as a user would start it; memory is the peak RSS summed over the whole process tree
(sampled every 0.2 s). "Growth per document" is (peak at the larger size − peak at the smaller) /
(difference in documents): what grows with the input.
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

MODES = {
    "1 worker": ["--direct_num_workers", "1", "--direct_running_mode", "in_memory"],
    "2 workers": ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"],
}
START, END = "<!-- bench:streaming:start -->", "<!-- bench:streaming:end -->"
HEADING = "## Streaming: memory, shuffles, workers (issue #11)"
# The stages of the table (and of datatrove's comparison): LID, word blocklist, exact and MinHash
# dedup; toxicity, the URL lists and the quality rules off.
SAME_STAGES = """toxicity: {enabled: false}
blocklists:
  url: {enabled: false}
quality:
  length: {enabled: false}
  gopher_quality: {enabled: false}
  c4: {enabled: false}
  fineweb: {enabled: false}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--baseline", type=Path, help="another toxsieve executable to run side by side")
    parser.add_argument("--baseline-name", default="baseline")
    parser.add_argument("--settle", type=float, default=10.0, help="wait up to this long for a quiet machine")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    args = parser.parse_args()

    work = REPO / "out" / "bench" / "streaming"
    work.mkdir(parents=True, exist_ok=True)
    config = work / "no-toxicity.yaml"
    config.write_text(SAME_STAGES)
    engines = [("this tree", TOXSIEVE)] + ([(args.baseline_name, args.baseline)] if args.baseline else [])
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    results = []  # (engine, docs, mode, measurement, stats)
    for docs in sorted(args.docs):
        corpus = ensure_corpus(docs, args.shards, 0, WORK_DIR, {})
        for engine, exe in engines:
            for mode, extra in MODES.items():
                wait_for_quiet(args.settle)
                out = work / "runs" / f"{len(results)}"
                cmd = [str(exe), "run", "--input", corpus.glob, "--output", str(out), "--overwrite", "--quiet",
                       "--config", str(config), *extra]
                m = run_measured(cmd, work / "logs" / f"{len(results)}.log", mode, engine, 0)
                if m.returncode != 0:
                    raise SystemExit(f"{engine} {mode} at {docs} failed (exit {m.returncode}); log in {work}/logs")
                stats = json.loads((out / "stats.json").read_text())
                results.append((engine, docs, mode, m, stats))
                print(f"{engine:>12} {docs:>8,} {mode}: {m.wall_s:7.1f} s, peak RSS {_gb(m.peak_rss_bytes)}, "
                      f"others {m.background_cores:.2f} cores", flush=True)
    block = report(results, engines, args, started)
    write_section(args.out, START, END, block, HEADING)
    print(block)
    return 0


def report(results: list, engines: list, args: argparse.Namespace, started: str) -> str:
    lines = [START,
             f"Measured {started} on {cpu_model()} (2 cores, shared: 'others' is the mean CPU use of every "
             f"other process during the run), Python {platform.python_version()}, Beam 2.77.0. Command: "
             f"`.venv/bin/python bench/streaming_bench.py --docs {' '.join(map(str, args.docs))} --shards "
             f"{args.shards}" + (f" --baseline … --baseline-name {args.baseline_name}`" if args.baseline else "`")
             + ". Corpus: bench/pipeline_bench.py's generator (seed 0), JSONL.gz in 16 files; stages: LID, word "
             "blocklist, exact and MinHash dedup (toxicity, URL lists, quality rules off). One fresh process per row.",
             "",
             "| engine | documents | mode | wall s | docs/s | peak RSS (tree) | CPU s | others | kept | "
             "shuffled bytes / doc |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for engine, docs, mode, m, stats in results:
        shuffle = stats.get("shuffle", {}).get("bytes_per_document")
        lines.append(f"| {engine} | {docs:,} | {mode} | {m.wall_s:.1f} | {stats['read'] / m.wall_s:,.0f} | "
                     f"{_gb(m.peak_rss_bytes)} | {m.cpu_s:.1f} | {m.background_cores:.2f} | {stats['kept']:,} | "
                     f"{'–' if shuffle is None else f'{shuffle:,.0f}'} |")
    lines.append("")
    sizes = sorted({r[1] for r in results})
    by = {(e, d, mode): (m, s) for e, d, mode, m, s in results}
    for engine, _ in engines:
        for mode in MODES:
            if len(sizes) >= 2:
                lo, hi = sizes[0], sizes[-1]
                growth = (by[(engine, hi, mode)][0].peak_rss_bytes - by[(engine, lo, mode)][0].peak_rss_bytes) / (hi - lo)
                lines.append(f"- {engine}, {mode}: peak memory grows by **{growth / 1024:,.1f} KB per document** "
                             f"between {lo:,} and {hi:,} documents (target ≤ 1 KB).")
        for docs in sizes:
            one, two = by[(engine, docs, "1 worker")][0], by[(engine, docs, "2 workers")][0]
            lines.append(f"- {engine}, {docs:,} documents: 2 workers are {one.wall_s / two.wall_s:.2f}× "
                         "as fast as 1 (target ≥ 1.5×).")
    if len(engines) == 2:
        a, b = engines[0][0], engines[1][0]
        for docs in sizes:
            for mode in MODES:
                ma, mb = by[(a, docs, mode)][0], by[(b, docs, mode)][0]
                same = by[(a, docs, mode)][1]["kept"] == by[(b, docs, mode)][1]["kept"]
                lines.append(f"- {docs:,} documents, {mode}: {a} / {b}: memory {ma.peak_rss_bytes / mb.peak_rss_bytes:.2f}×, "
                             f"speed {mb.wall_s / ma.wall_s:.2f}×; same documents kept: {'yes' if same else 'NO'}.")
    lines.append(END)
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
