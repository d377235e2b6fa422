"""toxsieve vs datatrove on the same stages and the same data, in one run (issue #11).

    .venv/bin/python bench/datatrove_bench.py --docs 20000 100000

Both sides read the JSONL.gz shards of bench/pipeline_bench.py's generated corpus and run: JSONL
reading, fastText LID-176 (the same lid.176.ftz file, score floor 0.5, every language kept), the
LDNOOBW word blocklist with C4's rule (any listed term removes the document; the same list files),
MinHash near-dedup (5-gram lower-cased word shingles, 17 bands x 15 rows, threshold 0.8), writing
kept and removed documents. toxsieve also runs exact dedup (datatrove has no exact document-dedup
block: its MinHash step removes exact and whitespace duplicates too). Toxicity, the URL blocklist and
the quality rules are off on toxsieve's side. datatrove runs in its own venv (created once under
out/bench/datatrove-venv, pinned version), through bench/datatrove_side.py.

Each run is a fresh process, timed from outside with the peak RSS of its whole process tree
(pipeline_bench.run_measured). datatrove: LocalPipelineExecutor with 1 and 2 workers (tasks = shards);
toxsieve: Beam in_memory with 1 worker and multi_processing with 2 workers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import gzip
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script: make `bench` importable

from bench.common import cpu_model, write_section  # noqa: E402
from bench.pipeline_bench import (  # noqa: E402
    TOXSIEVE,
    WORK_DIR,
    Measurement,
    _gb,
    ensure_corpus,
    run_measured,
    switch_off_sections,
    wait_for_quiet,
)
from toxsieve.classifiers.langid import SHIPPED_LID_MODEL  # noqa: E402
from toxsieve.pipelines.config import config_from_dict, load_config  # noqa: E402

DATATROVE_VERSION = "0.6.0"
# The parts of datatrove[processing] these stages import (the whole extra also wants kenlm, trafilatura,
# ...): fasttext for LID (the numpy-2 build datatrove checks for), xxhash for MinHash, orjson for JsonlReader.
DATATROVE_REQUIREMENTS = (f"datatrove=={DATATROVE_VERSION}", "fasttext-numpy2-wheel==0.9.2", "xxhash==3.6.0",
                          "regex==2026.11.19", "fasteners==0.20", "tokenizers==0.23.3", "orjson==3.13.0")
DT_VENV = REPO / "out" / "bench" / "datatrove-venv"
DT_SIDE = REPO / "bench" / "datatrove_side.py"
BENCH_DIR = REPO / "out" / "bench" / "datatrove"
WORDLISTS = REPO / "pipelines" / "lists" / "ldnoobw"
DEFAULT_OUT = REPO / "docs" / "benchmarks.md"
HEADING = "## toxsieve vs datatrove (issue #11)"
START = "<!-- bench:datatrove:start -->"
END = "<!-- bench:datatrove:end -->"
TARGET_RATIO = 1.5  # issue #11: toxsieve >= 1.5x datatrove's documents/s
LANGUAGE_THRESHOLD = 0.5  # toxsieve's language.min_score default; datatrove's own default is 0.65
BANDS, ROWS, NGRAM, THRESHOLD, NUM_PERM = 17, 15, 5, 0.8, 256
# Stages toxsieve keeps on (every other section with an ``enabled`` switch is turned off)
TOXSIEVE_STAGES = ("exact_dedup", "near_dedup", "blocklists.words")
MODES = {
    "datatrove-1w": ("datatrove", 1),
    "toxsieve-1w": ("toxsieve", 1),
    "datatrove-2w": ("datatrove", 2),
    "toxsieve-2w": ("toxsieve", 2),
}
BEAM_ARGS = {
    1: ["--direct_num_workers=1", "--direct_running_mode=in_memory"],
    2: ["--direct_num_workers=2", "--direct_running_mode=multi_processing"],
}


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ensure_datatrove_venv() -> Path:
    """datatrove's own venv (created once); toxsieve's .venv never gets datatrove."""
    python = DT_VENV / "bin" / "python"
    stamp = DT_VENV / ".requirements"
    wanted = "\n".join(DATATROVE_REQUIREMENTS) + "\n"
    if python.is_file() and stamp.is_file() and stamp.read_text() == wanted:
        return python
    _log(f"creating datatrove's venv at {DT_VENV} ({', '.join(DATATROVE_REQUIREMENTS)}) ...")
    if not python.is_file():
        # the system interpreter, not this venv's: datatrove must not see toxsieve's packages
        base = getattr(sys, "_base_executable", None) or shutil.which("python3") or "python3"
        subprocess.run([base, "-m", "venv", str(DT_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    *DATATROVE_REQUIREMENTS], check=True)
    stamp.write_text(wanted)
    return python


def toxsieve_config(path: Path) -> tuple[str, list[str]]:
    """The toxsieve config doing datatrove's work; returns (path, sections switched off)."""
    raw = load_config(None).to_dict()
    off = switch_off_sections(raw, TOXSIEVE_STAGES)
    raw["language"]["min_score"] = LANGUAGE_THRESHOLD
    raw["language"]["allowed"] = []
    raw["blocklists"]["words"]["preset"] = "c4"  # any listed term removes, as datatrove's C4BadWordsFilter
    raw["blocklists"]["words"]["mode"] = "filter"
    nd = raw["near_dedup"]
    nd.update(shingle="word", ngram=NGRAM, num_perm=NUM_PERM, threshold=THRESHOLD, bands=BANDS, rows=ROWS)
    config_from_dict(raw)  # still valid
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# written by bench/datatrove_bench.py: the stages datatrove runs too\n"
                    + yaml.safe_dump(raw, sort_keys=False))
    return str(path), off


def _count_jsonl(pattern: str) -> int:
    n = 0
    for path in glob.glob(pattern, recursive=True):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            n += sum(1 for _ in fh)
    return n


def kept_ids(run_dir: Path, side: str) -> set[str]:
    """The ids of the kept documents of a run (read after it, outside the timing)."""
    ids: set[str] = set()
    if side == "datatrove":
        for path in glob.glob(str(run_dir / "kept" / "*.jsonl.gz")):
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                ids.update(json.loads(line)["id"] for line in fh)
        return ids
    import pyarrow.parquet as pq

    for path in glob.glob(str(run_dir / "kept" / "**" / "*.parquet"), recursive=True):
        table = pq.read_table(path)
        column = "doc_id" if "doc_id" in table.column_names else "id"
        ids.update(table.column(column).to_pylist())
    return ids


def datatrove_counts(run_dir: Path) -> dict[str, int]:
    counts = {"kept": _count_jsonl(str(run_dir / "kept" / "*.jsonl.gz"))}
    for stage in ("language", "badwords", "minhash"):
        counts[f"removed/{stage}"] = _count_jsonl(str(run_dir / "removed" / stage / "*.jsonl.gz"))
    return counts


def toxsieve_counts(run_dir: Path) -> dict[str, int]:
    stats = json.loads((run_dir / "stats.json").read_text())
    counts = {k: stats[k] for k in ("read", "kept", "removed", "dead_lettered")}
    for stage, reasons in stats["removed_by_stage"].items():
        for reason, n in reasons.items():
            counts[f"removed/{stage}/{reason}"] = n
    return counts


def run_one(mode: str, corpus_dir: str, corpus_glob: str, layout: str, dt_python: Path, config: str,
            settle_s: float) -> Measurement:
    side, workers = MODES[mode]
    if settle_s > 0:
        wait_for_quiet(settle_s)
    run_dir = BENCH_DIR / "runs" / f"{layout}-{mode}"
    shutil.rmtree(run_dir, ignore_errors=True)
    log = BENCH_DIR / "logs" / f"{layout}-{mode}.log"
    if side == "datatrove":
        cmd = [str(dt_python), str(DT_SIDE), "--input", corpus_dir, "--output", str(run_dir),
               "--workers", str(workers), "--lid-model", str(SHIPPED_LID_MODEL), "--wordlists", str(WORDLISTS),
               "--language-threshold", str(LANGUAGE_THRESHOLD), "--bands", str(BANDS), "--rows", str(ROWS),
               "--ngram", str(NGRAM)]
    else:
        cmd = [str(TOXSIEVE), "run", "--input", corpus_glob, "--output", str(run_dir), "--overwrite", "--quiet",
               "--config", config, *BEAM_ARGS[workers]]
    # datatrove: no telemetry, no hub calls (nothing may reach the network)
    env_before = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    os.environ.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    try:
        m = run_measured(cmd, log, mode, layout, 0)
    finally:
        for k, v in env_before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    if m.returncode != 0:
        raise SystemExit(f"{mode} failed (exit {m.returncode}); log {log}:\n{log.read_text(errors='replace')[-3000:]}")
    m.detail = {"counts": datatrove_counts(run_dir) if side == "datatrove" else toxsieve_counts(run_dir)}
    if side == "datatrove":
        m.detail["steps_s"] = json.loads((run_dir / "timings.json").read_text())
    _log(f"  {layout:<10} {mode:<13}: {m.wall_s:7.1f}s wall, {m.cpu_s:7.1f}s CPU, peak RSS {_gb(m.peak_rss_bytes)}, "
         f"kept {m.detail['counts']['kept']:,}")
    return m


def render(results: list[dict[str, Any]], switched_off: list[str], dt_python: Path, command: str) -> str:
    version = subprocess.run([str(dt_python), "-c", "import datatrove, importlib.metadata as m; "
                              "print(m.version('datatrove'))"], capture_output=True, text=True).stdout.strip()
    lines = [START, "",
             f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {cpu_model()} "
             f"({os.cpu_count()} cores visible), Python {platform.python_version()}, datatrove {version} "
             f"(own venv), toxsieve at this commit. Command: `{command}`.", "",
             "Same corpus files (bench/pipeline_bench.py's generated JSONL.gz shards), same stages: JSONL "
             "reading, fastText LID-176 from the same lid.176.ftz (floor 0.5, all languages), LDNOOBW word "
             "blocklist with C4's any-match rule from the same list files, MinHash near-dedup (5-gram "
             f"lower-cased `\\w+` word shingles, {BANDS} bands x {ROWS} rows, threshold {THRESHOLD}), kept and "
             "removed documents written. Each run is a fresh process timed from outside; peak RSS is the "
             "whole process tree's. toxsieve sections switched off: "
             f"{', '.join(f'`{s}`' for s in switched_off) or 'none'}.", "",
             "| docs | workers | datatrove docs/s | toxsieve docs/s | ratio (goal >= 1.5) | datatrove wall | "
             "toxsieve wall | datatrove peak RSS | toxsieve peak RSS | kept datatrove / toxsieve |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        for w in (1, 2):
            d, t = r["modes"][f"datatrove-{w}w"], r["modes"][f"toxsieve-{w}w"]
            d_rate, t_rate = r["docs"] / d["wall_s"], r["docs"] / t["wall_s"]
            ratio = t_rate / d_rate
            lines.append(
                f"| {r['docs']:,} | {w} | {d_rate:,.0f} | {t_rate:,.0f} | **{ratio:.2f}x** "
                f"{'(met)' if ratio >= TARGET_RATIO else '(not met)'} | {d['wall_s']:.1f} s | {t['wall_s']:.1f} s | "
                f"{_gb(d['peak_rss_bytes'])} | {_gb(t['peak_rss_bytes'])} | "
                f"{d['counts']['kept']:,} / {t['counts']['kept']:,} |")
    lines += ["", "Removals per stage (the 2-worker runs):", ""]
    for r in results:
        d, t = r["modes"]["datatrove-2w"]["counts"], r["modes"]["toxsieve-2w"]["counts"]
        same = {side: r["modes"][f"{side}-1w"]["counts"] == r["modes"][f"{side}-2w"]["counts"]
                for side in ("datatrove", "toxsieve")}
        dt_part = ", ".join(f"{k.removeprefix('removed/')} {v:,}" for k, v in d.items() if k.startswith("removed/"))
        tx_part = ", ".join(f"{k.removeprefix('removed/')} {v:,}" for k, v in t.items() if k.startswith("removed/"))
        lines.append(f"- {r['docs']:,} docs: datatrove kept {d['kept']:,} (removed: {dt_part}); "
                     f"toxsieve kept {t['kept']:,} (removed: {tx_part}; dead-lettered {t['dead_lettered']:,}). "
                     + "; ".join(f"{side}: 1 and 2 workers give {'the same' if ok else 'DIFFERENT'} counts"
                                 for side, ok in same.items()) + ".")
        if "kept_overlap" in r:
            o = r["kept_overlap"]
            lines.append(f"  Kept ids: {o['both']:,} kept by both, {o['datatrove_only']:,} by datatrove only, "
                         f"{o['toxsieve_only']:,} by toxsieve only (where they differ it is usually which copy of a duplicate each keeps).")
    lines += ["", "Known differences (the work is the same stage by stage, not byte for byte):", "",
              "- Dedup: datatrove has no exact document-dedup block; its MinHash step also removes exact and "
              "whitespace duplicates. toxsieve runs exact dedup (normalised-text hash) and then MinHash on the rest.",
              "- datatrove 0.6.0's C4BadWordsFilter has a bug (its allowlist loop overwrites the `lang` "
              "variable): every language gets the CJK pattern without word boundaries (\"ass\" matches inside "
              "\"class\") and the list is re-read for each non-Chinese document. bench/datatrove_side.py runs "
              "the filter with a corrected `_get_badwords` (list loaded once per language, word boundaries for "
              "non-CJK), so both sides apply the C4 rule; `--badwords-as-shipped` on datatrove_side.py runs the "
              "original.",
              "- MinHash: datatrove treats any shared band bucket as a duplicate; toxsieve also checks the "
              "signature-estimated Jaccard >= 0.8 of each candidate pair, so datatrove removes a few more "
              "near-threshold pairs. datatrove uses 255 hashes (17 x 15); toxsieve computes 256 and bands 255.",
              "- Keeper: datatrove keeps one document per cluster by its own order; toxsieve keeps the smallest "
              "doc id.",
              "- LID: datatrove reads the whole text (newlines as spaces); toxsieve the first 10,000 normalised "
              "characters. Word blocklist: datatrove matches its regex on the raw lower-cased text; toxsieve on "
              "its tokens (and it skips zh/ja/th terms shorter than 2 characters).",
              "- Outputs: datatrove writes JSONL.gz (kept, removed per filter); toxsieve writes Parquet kept/, "
              "removed/ with evidence, metadata for every document, stats.json (conservation proof) and "
              "manifest.json. datatrove also writes the LID/badword survivors once more between its passes "
              "(its MinHash filter re-reads them, as FineWeb does).",
              "- Parallelism: datatrove runs 4 executor steps (filters+signatures over shards, buckets over "
              f"{BANDS} bands, 1 cluster task, dedup filter over shards); toxsieve one Beam pipeline.",
              "", END]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--docs", type=int, nargs="+", default=[20_000, 100_000])
    p.add_argument("--shards", type=int, default=16)
    p.add_argument("--settle", type=float, default=60.0, help="wait up to this long for a quiet machine per run")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the docs file to write the section into")
    p.add_argument("--no-write", action="store_true", help="print the section, do not write docs")
    args = p.parse_args(argv)

    dt_python = ensure_datatrove_venv()
    config, switched_off = toxsieve_config(BENCH_DIR / "toxsieve-config.yaml")
    results = []
    pool_cache: dict[str, Any] = {}
    for docs in args.docs:
        corpus = ensure_corpus(docs, args.shards, 0, WORK_DIR, pool_cache)
        layout = f"{docs}x{args.shards}"
        _log(f"{layout}: {corpus.glob}")
        modes = {}
        for mode in MODES:
            m = run_one(mode, corpus.directory, corpus.glob, layout, dt_python, config, args.settle)
            modes[mode] = {"wall_s": m.wall_s, "cpu_s": m.cpu_s, "peak_rss_bytes": m.peak_rss_bytes,
                           "background_cores": m.background_cores, **m.detail}
        a = kept_ids(BENCH_DIR / "runs" / f"{layout}-datatrove-2w", "datatrove")
        b = kept_ids(BENCH_DIR / "runs" / f"{layout}-toxsieve-2w", "toxsieve")
        results.append({"docs": docs, "shards": args.shards, "modes": modes,
                        "kept_overlap": {"both": len(a & b), "datatrove_only": len(a - b), "toxsieve_only": len(b - a)}})
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    (BENCH_DIR / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    command = ".venv/bin/python bench/datatrove_bench.py " + " ".join(
        a for a in (sys.argv[1:] if argv is None else argv) if a != "--no-write")
    block = render(results, switched_off, dt_python, command.strip())
    if args.no_write:
        print(block)
    else:
        write_section(args.out, START, END, block, heading=HEADING)
        _log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
