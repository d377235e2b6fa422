"""Scaling report (issue #12): `toxsieve run` with every default stage at 1 and 2 workers on Beam's
local runner and on a local dask cluster of 2 workers; throughput and peak memory of the whole
process tree (scheduler and dask workers included). Writes the measured block of docs/scaling.md.

Usage: .venv/bin/python bench/scaling_bench.py [--docs 10000] [--shards 8] [--modes 0,1,2] [--out docs/scaling.md]

The corpus is bench/pipeline_bench.py's (real sentences from the crawl fixtures recombined, seeded,
cached under out/bench/pipeline/corpus/). Each mode runs once, in a fresh process, as a user would.
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
    "local runner, 1 worker (in_memory)": ["--direct_num_workers", "1", "--direct_running_mode", "in_memory"],
    "local runner, 2 workers (multi_processing)": ["--direct_num_workers", "2",
                                                   "--direct_running_mode", "multi_processing"],
    "dask, local cluster of 2 workers (--dask-local 2)": ["--dask-local", "2"],
}


def markers(docs: int) -> tuple[str, str]:
    """One measured block per corpus size in docs/scaling.md."""
    return f"<!-- bench:scaling:{docs}:start -->", f"<!-- bench:scaling:{docs}:end -->"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--settle", type=float, default=10.0, help="wait up to this long for a quiet machine")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "scaling.md")
    parser.add_argument("--modes", default=",".join(str(i) for i in range(len(MODES))),
                        help="which modes to run, by index (0: local 1 worker, 1: local 2 workers, 2: dask)")
    args = parser.parse_args()
    chosen = [list(MODES.items())[int(i)] for i in args.modes.split(",")]
    start_marker, end_marker = markers(args.docs)

    corpus = ensure_corpus(args.docs, args.shards, 0, WORK_DIR, {})
    work = REPO / "out" / "bench" / "scaling"
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    rows, counts = [], []
    for mode, extra in chosen:
        wait_for_quiet(args.settle)
        out = work / "runs" / str(len(rows))
        cmd = [str(TOXSIEVE), "run", "--input", corpus.glob, "--output", str(out), "--overwrite", "--quiet", *extra]
        m = run_measured(cmd, work / "logs" / f"{len(rows)}.log", mode, "main", 0)
        if m.returncode != 0:
            raise SystemExit(f"{mode} failed (exit {m.returncode}); log {work / 'logs'}")
        stats = json.loads((out / "stats.json").read_text())
        counts.append((stats["read"], stats["kept"], stats["removed"]))
        rows.append((mode, m, stats))
        print(f"{mode}: {m.wall_s:.1f} s, peak RSS {_gb(m.peak_rss_bytes)}", flush=True)
    same = len(set(counts)) == 1
    lines = [start_marker,
             f"Measured {started}: {cpu_model()}, 2 cores shared with "
             "other jobs (the 'others' column is their mean CPU use during the run), Python "
             f"{platform.python_version()}, Beam 2.77.0. Command: `.venv/bin/python bench/scaling_bench.py "
             f"--docs {args.docs} --shards {args.shards}"
             f"{'' if len(chosen) == len(MODES) else ' --modes ' + args.modes}`. Corpus: {args.docs:,} JSONL.gz documents in "
             f"{args.shards} shards (bench/pipeline_bench.py's generator, seed 0), the default config (every "
             "default stage: LID, word/URL lists, quality rules, exact and near dedup, fastText toxicity). "
             "One run per mode; wall time from process start to exit.",
             "",
             "| mode | wall s | docs/s | peak RSS (tree) | peak PSS (tree) | processes | CPU s | others (cores) "
             "| × 1 worker |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    # the ratio needs the 1-worker run (mode 0) in this table
    base = rows[0][1].wall_s if chosen[0][0] == next(iter(MODES)) else None
    for mode, m, stats in rows:
        lines.append(f"| {mode} | {m.wall_s:.1f} | {stats['read'] / m.wall_s:,.0f} | {_gb(m.peak_rss_bytes)} | "
                     f"{_gb(m.peak_pss_bytes)} | {m.peak_processes} | {m.cpu_s:.1f} | "
                     f"{m.background_cores:.2f} | {f'{base / m.wall_s:.2f}' if base else '–'} |")
    lines += ["", f"Every mode read, kept and removed the same documents: {'yes' if same else 'NO'} "
              f"({counts[0][0]:,} read, {counts[0][1]:,} kept, {counts[0][2]:,} removed)." if same else
              f"Counts differ between modes: {counts}", end_marker]
    write_section(args.out, start_marker, end_marker, "\n".join(lines))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
