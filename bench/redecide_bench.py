"""`toxsieve redecide` against a fresh run at the same settings: wall time, documents/s, peak memory.

    python bench/redecide_bench.py [--copies 1000] [--work out/bench/redecide] [--write-docs]

1. A fresh `toxsieve run` of the crawl sample (tests/fixtures/crawl) with the word lists and Gopher's
   quality rules in annotate mode, and one at the new settings (the same as redecide's below).
2. The first run's outputs copied ``--copies`` times with renamed doc_ids (real signals and texts,
   more documents; 100 copies to a file), and `toxsieve redecide` of that copy at the new settings: language.min_score=0.7,
   word lists in filter mode at 3 distinct terms, Gopher in filter mode, toxicity in filter mode at 0.95.
Each step runs in its own process (its peak RSS is its own); times include imports.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SOURCE = ["blocklists.words.mode=annotate", "quality.gopher_quality.mode=annotate"]
NEW = ["language.min_score=0.7", "blocklists.words.mode=filter", "blocklists.words.policy.min_distinct_terms=3",
       "quality.gopher_quality.mode=filter", "toxicity.mode=filter", "toxicity.threshold=0.95"]
DOC_ID_COLUMNS = ("doc_id", "duplicate_of", "near_dup_cluster")
CLI = [sys.executable, "-c", "import sys; from toxsieve.pipelines.cli.main import main; sys.exit(main(sys.argv[1:]))"]


def _timed(argv: list[str]) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MB) of one command in its own process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"failed ({status}): {' '.join(argv)}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def _config(path: Path, settings: list[str]) -> Path:
    import yaml

    from toxsieve.pipelines.config import merge_config, parse_overrides

    raw = yaml.safe_load((REPO / "deploy" / "configs" / "demo.yaml").read_text())
    path.write_text(yaml.safe_dump(merge_config(raw, parse_overrides(settings))))
    return path


def _run(out: Path, config: Path) -> tuple[float, float, float]:
    argv = [*CLI, "run", "--output", str(out), "--quiet", "--overwrite",
            "--config", str(config)]
    for pattern in ("*/*.warc.gz", "*/*.warc.wet.gz", "*/*.jsonl.gz"):
        argv += ["--input", str(REPO / "tests" / "fixtures" / "crawl" / pattern)]
    return _timed(argv)


def replicate(src: Path, dst: Path, copies: int, per_file: int = 100) -> int:
    """``copies`` copies of a run's tables with doc_ids suffixed ``#k``, ``per_file`` copies to a file
    (files of a few thousand documents, like a real run's shards); returns the document count."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    shutil.rmtree(dst, ignore_errors=True)
    for name in ("kept", "metadata", "removed", "dead_letter"):
        (dst / name).mkdir(parents=True)
        table = pa.concat_tables(pq.read_table(p) for p in sorted((src / name).glob("*.parquet")))
        for first in range(0, copies, per_file):
            parts = []
            for k in range(first, min(copies, first + per_file)):
                out = table
                for col in DOC_ID_COLUMNS:
                    if col in out.column_names:
                        i = out.column_names.index(col)
                        out = out.set_column(i, col, pc.binary_join_element_wise(out[col], pa.scalar(f"#{k}"), ""))
                parts.append(out)
            pq.write_table(pa.concat_tables(parts), dst / name / f"part-{first // per_file:05d}.parquet")
    for name in ("stats.json", "manifest.json"):
        shutil.copy(src / name, dst / name)
    return sum(pq.read_metadata(p).num_rows for p in (dst / "metadata").glob("*.parquet"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=1000)
    parser.add_argument("--work", default="out/bench/redecide")
    parser.add_argument("--write-docs", action="store_true", help="replace the section in docs/benchmarks.md")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    source, fresh = work / "source", work / "fresh"
    wall_src, cpu_src, rss_src = _run(source, _config(work / "source.yaml", SOURCE))
    wall_fresh, cpu_fresh, rss_fresh = _run(fresh, _config(work / "new.yaml", SOURCE + NEW))
    sample_docs = json.loads((source / "stats.json").read_text())["documents"]
    big = work / "copies"
    n_docs = replicate(source, big, args.copies)
    redecided = work / "redecided"
    shutil.rmtree(redecided, ignore_errors=True)
    small = work / "redecided-sample"
    shutil.rmtree(small, ignore_errors=True)
    settings = [arg for setting in NEW for arg in ("--set", setting)]
    wall_small, cpu_small, rss_small = _timed([*CLI, "redecide", str(source), "--output", str(small), *settings])
    wall_big, cpu_big, rss_big = _timed([*CLI, "redecide", str(big), "--output", str(redecided), *settings])
    stats = json.loads((redecided / "stats.json").read_text())
    assert stats["conservation"]["ok"] and stats["documents"] == n_docs
    rows = [
        ("toxsieve run, source settings (annotate)", sample_docs, wall_src, cpu_src, rss_src),
        ("toxsieve run, new settings", sample_docs, wall_fresh, cpu_fresh, rss_fresh),
        ("toxsieve redecide of the sample run", sample_docs, wall_small, cpu_small, rss_small),
        (f"toxsieve redecide of {args.copies:,} copies", n_docs, wall_big, cpu_big, rss_big),
    ]
    cpu = platform.processor() or platform.machine()
    lines = [
        "<!-- redecide-bench:start -->",
        "## Re-deciding from stored signals (issue #13)",
        "",
        f"Command: `python bench/redecide_bench.py --copies {args.copies}{' --write-docs' if args.write_docs else ''}`",
        "",
        f"The crawl sample ({sample_docs} documents) and {args.copies:,} renamed copies of its run "
        f"({n_docs:,} documents, real signals and texts); {cpu}, {os.cpu_count()} cores, "
        f"{dt.date.today().isoformat()}; each step in its own process, times include imports.",
        "New settings: " + ", ".join(f"`{s}`" for s in NEW) + ".",
        "",
        "| step | documents | wall s | CPU s | documents per CPU s | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|",
        *(f"| {name} | {n:,} | {wall:.1f} | {cpu:.1f} | {n / cpu:,.0f} | {rss:,.0f} |"
          for name, n, wall, cpu, rss in rows),
        "",
        f"On the sample, redecide takes {cpu_small / cpu_fresh:.2f}x the CPU time of a fresh run at the new "
        f"settings (both mostly start-up); on {n_docs:,} documents it re-decides "
        f"{n_docs / (cpu_big - cpu_small):,.0f} documents per CPU second after start-up, with no model and no "
        "input read. The machine was shared with other jobs: CPU time is the steadier figure.",
        "<!-- redecide-bench:end -->",
    ]
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if args.write_docs:
        doc = REPO / "docs" / "benchmarks.md"
        current = doc.read_text()
        start, end = "<!-- redecide-bench:start -->", "<!-- redecide-bench:end -->\n"
        if start in current:
            current = current[:current.index(start)] + current[current.index(end) + len(end):]
        doc.write_text(current.rstrip("\n") + "\n\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
