"""Gzip bomb (issue #11): a small .jsonl.gz that expands to millions of tiny records; does memory
stay bounded? `toxsieve run` with the default config and 2 local workers on two sizes of the same
kind of file; peak memory of the whole process tree, its growth per record between the sizes, and
whether every record was accounted for.

Usage: .venv/bin/python bench/bomb_bench.py [--records 500000 2000000] [--workers 2] [--out docs/benchmarks.md]

A record is `{"id": "b<i>", "text": "<two to four words>"}` (seeded): each is read, extracted,
language-identified and removed by the length floor, so every record crosses every per-document stage
and ends up in metadata/ and removed/. The issue's bomb was 7M records in 9 MB: this one has the same
density (~1.3 bytes of gzip per record); sizes above 2M were not run for time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import platform
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import cpu_model, write_section  # noqa: E402
from bench.pipeline_bench import TOXSIEVE, _gb, run_measured, wait_for_quiet  # noqa: E402

START, END = "<!-- bench:bomb:start -->", "<!-- bench:bomb:end -->"
HEADING = "## Gzip bomb (issue #11)"
WORK = REPO / "out" / "bench" / "bomb"
_WORDS = ("spam", "ham", "eggs", "bomb", "zip", "tiny", "record", "again", "more", "text")


def make_bomb(n: int, seed: int = 0) -> Path:
    """A .jsonl.gz of ``n`` tiny records (cached)."""
    path = WORK / "inputs" / f"bomb-{n}-seed{seed}.jsonl.gz"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    tmp = path.with_suffix(".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=9) as fh:
        for i in range(n):
            text = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(2, 4)))
            fh.write(json.dumps({"id": f"b{i}", "text": text}) + "\n")
    tmp.rename(path)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, nargs="+", default=[500_000, 2_000_000])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--settle", type=float, default=10.0, help="wait up to this long for a quiet machine")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    args = parser.parse_args()

    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    rows = []
    for n in sorted(args.records):
        bomb = make_bomb(n)
        wait_for_quiet(args.settle)
        out = WORK / "runs" / str(n)
        cmd = [str(TOXSIEVE), "run", "--input", str(bomb), "--output", str(out), "--overwrite", "--quiet",
               "--direct_num_workers", str(args.workers), "--direct_running_mode",
               "multi_processing" if args.workers > 1 else "in_memory"]
        m = run_measured(cmd, WORK / "logs" / f"{n}.log", "bomb", "main", 0)
        if m.returncode != 0:
            raise SystemExit(f"{n} records: exit {m.returncode}; log {WORK / 'logs' / f'{n}.log'}")
        stats = json.loads((out / "stats.json").read_text())
        accounted = stats["read"] == n and stats["read"] == stats["kept"] + stats["removed"] + stats["dead_lettered"]
        rows.append((n, bomb.stat().st_size, m, stats, accounted))
        print(f"{n:,} records: {m.wall_s:.1f} s, peak RSS {_gb(m.peak_rss_bytes)}", flush=True)

    lines = [START,
             f"Measured {started} on {cpu_model()} (2 cores, shared: 'others' is the mean CPU use of every other "
             f"process during the run), Python {platform.python_version()}, Beam 2.77.0. Command: "
             f"`.venv/bin/python bench/bomb_bench.py --records {' '.join(str(n) for n in sorted(args.records))} "
             f"--workers {args.workers}`. Input: one .jsonl.gz of tiny records (2-4 words each, seeded), the default "
             f"config, {args.workers} local workers; one fresh process per row.",
             "",
             "| records | .jsonl.gz | wall s | records/s | peak RSS (tree) | CPU s | others | read | removed "
             "| every record accounted for |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for n, size, m, stats, accounted in rows:
        lines.append(f"| {n:,} | {size / 1e6:.1f} MB | {m.wall_s:.1f} | {n / m.wall_s:,.0f} | {_gb(m.peak_rss_bytes)} "
                     f"| {m.cpu_s:.1f} | {m.background_cores:.2f} | {stats['read']:,} | {stats['removed']:,} "
                     f"| {'yes' if accounted else 'NO'} |")
    if len(rows) >= 2:
        (n0, _, m0, _, _), (n1, _, m1, _, _) = rows[0], rows[-1]
        growth = (m1.peak_rss_bytes - m0.peak_rss_bytes) / (n1 - n0)
        lines += ["", f"- Peak memory grows by **{growth:,.0f} bytes per record** between {n0:,} and {n1:,} records "
                      "(target: bounded like documents, ≤ 1 KB per record)."]
    lines.append(END)
    write_section(args.out, START, END, "\n".join(lines), HEADING)
    return 0 if all(r[4] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
