"""Audit, HTML report and export over a synthetic 1M-document run: wall time and peak memory.

    python bench/audit_bench.py [--rows 1000000] [--work out/bench/audit] [--write-docs]

Generates a run directory with the real schemas (metadata/ with every column, kept/ with texts,
removed/ with truncated texts, stats.json, manifest.json): languages, removals by stage, toxicity
scores (null for one unsupported language), lengths, near-duplicate clusters, blocklist matches and
C4 / FineWeb annotate-mode flags, drawn from fixed distributions with a fixed seed. Then each step runs in its own process (so its
peak RSS is its own): the previous audit (row-by-row Python, from git history, as the baseline),
the new audit, the HTML report, and the dapt and conditioned exports.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

BASELINE_COMMIT = "14ee688"  # pipelines/audit.py before issue #15 (per-row Python over removed/ and metadata/)
LANGS = ["en", "de", "fr", "es", "zh", "ru", "ja", "it", "pt", "nl", "pl", "ko", "ar", "tr", "yo"]
LANG_P = [0.55, 0.08, 0.06, 0.06, 0.06, 0.04, 0.03, 0.02, 0.02, 0.02, 0.015, 0.015, 0.01, 0.01, 0.01]
REMOVALS = [("read", "http_status", 0.01), ("url_blocklist", "url_blocklisted", 0.01), ("extract", "too_short", 0.03),
            ("language", "low_language_confidence", 0.03), ("word_blocklist", "word_blocklist", 0.01),
            ("exact_dedup", "exact_duplicate", 0.05), ("near_dedup", "near_duplicate", 0.04)]
FILES = 10


def _table(columns: dict, schema: object, n: int) -> object:
    """The schema's table from the generated columns; a column the generator does not draw is null."""
    import pyarrow as pa

    full = {f.name: columns[f.name] if f.name in columns else pa.nulls(n, f.type) for f in schema}
    return pa.table(full, schema=schema)


def generate(root: Path, rows: int, seed: int = 0) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from toxsieve.schemas import AUDIT_SCHEMA, CURATED_SCHEMA, METADATA_SCHEMA

    rng = np.random.default_rng(seed)
    base = ("The quick brown fox jumps over the lazy dog while the committee reviews the annual budget and "
            "the weather stays mild for the season. ") * 40
    terms = [f"term{i}" for i in range(200)]
    categories = ["adult", "gambling", "phishing", "malware", "warez", "dating", "drugs", "hacking", "violence", "cheater"]
    for name in ("metadata", "kept", "removed", "dead_letter"):
        (root / name).mkdir(parents=True, exist_ok=True)
    per_file = -(-rows // FILES)
    totals = {"kept": 0, "removed": 0}
    removed_by: dict[str, dict[str, int]] = {}
    for f in range(FILES):
        n = min(per_file, rows - f * per_file)
        ids = np.arange(f * per_file, f * per_file + n)
        lang = rng.choice(len(LANGS), n, p=np.array(LANG_P) / sum(LANG_P))
        u = rng.random(n)
        stage_idx = np.full(n, -1)
        edge = 0.0
        for k, (_, _, p) in enumerate(REMOVALS):
            stage_idx[(u >= edge) & (u < edge + p)] = k
            edge += p
        removed = stage_idx >= 0
        reaches_lid = ~np.isin(stage_idx, [0, 1, 2])
        reaches_quality = ~np.isin(stage_idx, [0, 1, 2, 3, 4])  # C4 and FineWeb run after the word lists
        n_chars = np.clip(rng.lognormal(6.8, 1.0, n), 20, 200_000).astype(np.int64)
        n_chars[stage_idx == 2] = rng.integers(1, 200, int((stage_idx == 2).sum()))
        supported = LANGS.index("yo") != lang
        scored = ~removed & supported
        score = rng.beta(0.45, 4.0, n).astype(np.float32)
        cluster = np.where(rng.random(n) < 0.06, rng.integers(2, 60, n), 1)
        has_terms = rng.random(n) < 0.03
        has_cat = stage_idx == 1
        doc_ids = [f"doc-{i:09d}" for i in ids]
        meta = {
            "doc_id": doc_ids, "url": [f"https://site{i % 9973}.example/{i}" for i in ids], "crawl_date": ["2024-05-01"] * n,
            "source_path": [f"crawl/shard-{f:03d}.warc.gz"] * n, "source_offset": ids.tolist(),
            "source_format": ["warc"] * n, "http_status": [200] * n, "content_type": ["text/html"] * n,
            "n_bytes_raw": (n_chars * 3).tolist(), "n_chars": n_chars.tolist(), "text_hash": [None] * n,
            "language": [LANGS[x] if r else None for x, r in zip(lang, reaches_lid, strict=True)],
            "language_score": [0.9] * n, "url_blocklist_category": [categories[i % 10] if c else None
                                                                   for i, c in zip(ids, has_cat, strict=True)],
            "url_blocklist_entry": [None] * n, "url_banned_words": [None] * n,
            "blocklist_terms": [[terms[i % 200], terms[(i * 7) % 200]] if t else None for i, t in zip(ids, has_terms, strict=True)],
            "blocklist_match_count": [0] * n, "blocklist_match_fraction": [0.0] * n,
            "near_dup_cluster": doc_ids, "near_dup_cluster_size": cluster.tolist(), "near_dup_similarity": [1.0] * n,
            "toxicity_score": pa.array(score, mask=~scored), "toxicity_label_scores": [None] * n,
            "toxicity_model": ["toxsieve-fasttext-toxicity-v1"] * n, "toxicity_model_sha256": [None] * n,
            "toxicity_fast_score": [None] * n, "toxicity_threshold": [0.9] * n, "toxicity_n_chunks": [1] * n,
            "toxicity_flagged": pa.array(score >= 0.9, mask=~scored),
            "decision": np.where(removed, "removed", "kept").tolist(),
            "stage": [REMOVALS[k][0] if k >= 0 else None for k in stage_idx],
            "reason": [REMOVALS[k][1] if k >= 0 else None for k in stage_idx],
            "duplicate_of": [None] * n,
            "toxicity_supported": pa.array(supported, mask=removed),
            # C4 and FineWeb in annotate mode, as the default config runs them: flags (shares from the
            # 1M-document scaling run: 21 % and 7.6 %) and one signal each, on documents that reach them
            "c4_sentences": pa.array(rng.integers(0, 40, n), mask=~reaches_quality),
            "c4_flag": pa.array(np.where(rng.random(n) < 0.21, "c4_too_few_sentences", None), mask=~reaches_quality),
            "fineweb_line_punct_frac": pa.array(rng.random(n).astype(np.float32), mask=~reaches_quality),
            "fineweb_flag": pa.array(np.where(rng.random(n) < 0.076, "fineweb_line_punct", None),
                                     mask=~reaches_quality),
        }
        pq.write_table(_table(meta, METADATA_SCHEMA, n), root / "metadata" / f"part-{f:05d}.parquet", compression="zstd")
        starts = rng.integers(0, len(base) - 2000, n)
        keep = np.flatnonzero(~removed)
        kept_len = np.minimum(n_chars[keep], 1500)
        texts = [base[s:s + ln] for s, ln in zip(starts[keep], kept_len, strict=True)]
        kept = {
            "doc_id": [doc_ids[i] for i in keep], "text": texts, "url": [meta["url"][i] for i in keep],
            "crawl_date": ["2024-05-01"] * len(keep), "language": [meta["language"][i] for i in keep],
            "language_score": [0.9] * len(keep), "text_hash": ["h"] * len(keep), "n_chars": kept_len.tolist(),
            "toxicity_score": pa.array(score[keep], mask=~scored[keep]), "toxicity_label_scores": [None] * len(keep),
            "source_path": [meta["source_path"][0]] * len(keep), "source_offset": ids[keep].tolist(),
            "source_format": ["warc"] * len(keep),
        }
        pq.write_table(_table(kept, CURATED_SCHEMA, len(keep)), root / "kept" / f"part-{f:05d}.parquet", compression="zstd")
        rem = np.flatnonzero(removed)
        audit = {
            "doc_id": [doc_ids[i] for i in rem], "run_id": ["bench"] * len(rem),
            "stage": [REMOVALS[stage_idx[i]][0] for i in rem], "reason": [REMOVALS[stage_idx[i]][1] for i in rem],
            "url": [meta["url"][i] for i in rem], "source_path": [meta["source_path"][0]] * len(rem),
            "source_offset": ids[rem].tolist(), "source_format": ["warc"] * len(rem),
            "score": [1.0] * len(rem), "threshold": [0.5] * len(rem), "duplicate_of": [None] * len(rem),
            "matched": [None] * len(rem), "detail": ["synthetic"] * len(rem),
            "language": [meta["language"][i] for i in rem], "language_score": [0.9] * len(rem),
            "n_chars": n_chars[rem].tolist(), "text": [base[s:s + 300] for s in starts[rem]],
            "text_truncated": [True] * len(rem),
        }
        pq.write_table(pa.table(audit, schema=AUDIT_SCHEMA), root / "removed" / f"part-{f:05d}.parquet", compression="zstd")
        totals["kept"] += len(keep)
        totals["removed"] += len(rem)
        for i in rem:
            st, rs, _ = REMOVALS[stage_idx[i]]
            removed_by.setdefault(st, {}).setdefault(rs, 0)
            removed_by[st][rs] += 1
    funnel, left = [], rows
    for st, _, _ in REMOVALS + [("toxicity", "", 0)]:
        r = sum(removed_by.get(st, {}).values())
        funnel.append({"stage": st, "in": left, "removed": r, "out": left - r})
        left -= r
    stats = {"run_id": "bench", "read": rows, "documents": rows, "kept": totals["kept"], "removed": totals["removed"],
             "dead_lettered": 0, "funnel": funnel, "removed_by_stage": removed_by}
    (root / "stats.json").write_text(json.dumps(stats, indent=2))
    config = {"toxicity": {"enabled": True, "model": "fasttext", "mode": "annotate", "threshold": 0.9,
                           "threshold_per_language": {"zh": 0.8}, "cascade_model": None},
              "quality": {"c4": {"enabled": True, "mode": "annotate"}, "fineweb": {"enabled": True, "mode": "annotate"}},
              "output": {"removed_text": "truncated"}}
    (root / "manifest.json").write_text(json.dumps({"run_id": "bench", "config": config, "inputs": {"files": []},
                                                    "models": [], "lists": []}, indent=2))


def _phase(name: str, root: Path, work: Path) -> dict[str, float]:
    import pyarrow.parquet  # noqa: F401 - imports are not what is measured

    from toxsieve.pipelines.cli import audit_html, export  # noqa: F401

    start = time.perf_counter()
    if name == "audit_baseline":
        import importlib.util

        src = subprocess.run(["git", "-C", str(REPO), "show", f"{BASELINE_COMMIT}:pipelines/audit.py"],
                             check=True, capture_output=True, text=True).stdout
        path = work / "audit_baseline.py"
        path.write_text(src)
        spec = importlib.util.spec_from_file_location("audit_baseline", path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules["audit_baseline"] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
        module.load_report(root)
    elif name == "audit":
        from toxsieve.pipelines.cli.audit import load_report, render_text

        render_text(load_report(root))
    elif name == "audit_html":
        from toxsieve.pipelines.cli.audit import load_report, render_html

        (work / "report.html").write_text(render_html(load_report(root)))
    elif name.startswith("export_"):
        from toxsieve.pipelines.cli.export import ExportOptions, export

        export(root, work / name, ExportOptions(view=name.split("_", 1)[1], overwrite=True))
    seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 2), "peak_rss_mb": _peak_rss_mb()}


def _peak_rss_mb() -> int:
    """This process's high-water RSS (VmHWM restarts at exec; ru_maxrss would carry the parent's over)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--work", type=Path, default=REPO / "out" / "bench" / "audit")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each step (the median is reported)")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--write-docs", action="store_true", help="write the table into docs/benchmarks.md")
    args = parser.parse_args()
    root = args.work / f"run-{args.rows}"
    if args.phase:
        print(json.dumps(_phase(args.phase, root, args.work)))
        return
    if not (root / "manifest.json").is_file():
        t = time.perf_counter()
        generate(root, args.rows)
        print(f"generated {args.rows:,} documents in {time.perf_counter() - t:.0f} s: {root}", flush=True)
    results = {}
    for phase in ("audit_baseline", "audit", "audit_html", "export_dapt", "export_conditioned"):
        runs = []
        for _ in range(args.repeat):  # interleaving would be fairer on a busy machine; medians absorb most noise
            out = subprocess.run([sys.executable, __file__, "--rows", str(args.rows), "--work", str(args.work),
                                  "--phase", phase], check=True, capture_output=True, text=True).stdout
            runs.append(json.loads(out.strip().splitlines()[-1]))
        results[phase] = {"seconds": statistics.median(r["seconds"] for r in runs),
                          "peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}
        print(phase, results[phase], [r["seconds"] for r in runs], flush=True)
    exported = {v: json.loads((args.work / f"export_{v}" / "export.json").read_text()) for v in ("dapt", "conditioned")}
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    text_mb = pc.sum(pq.read_table(root / "kept", columns=["n_chars"]).column("n_chars")).as_py() / 1e6
    base = results["audit_baseline"]["seconds"]
    from common import cpu_model

    lines = [
        f"{args.rows:,} metadata rows ({sum(1 for _ in (root / 'metadata').glob('*.parquet'))} files), "
        f"{text_mb:.0f} M characters of text in kept/; {cpu_model()}, {os.cpu_count()} cores, "
        f"{dt.date.today().isoformat()}; each step in its own process, median of {args.repeat} runs "
        "(wall time includes reading every Parquet file; imports excluded).", "",
        "| step | wall s (median) | peak RSS MB | notes |", "|---|---:|---:|---|",
        f"| audit, previous code (row-by-row Python, {BASELINE_COMMIT}) | {base} | {results['audit_baseline']['peak_rss_mb']} | counts, examples, toxicity at thresholds only |",
        f"| audit (text report) | {results['audit']['seconds']} | {results['audit']['peak_rss_mb']} | {base / max(results['audit']['seconds'], 1e-9):.2f}x the previous code's speed, and computes every distribution |",
        f"| audit --html (aggregation + charts) | {results['audit_html']['seconds']} | {results['audit_html']['peak_rss_mb']} | |",
    ]
    for v in ("dapt", "conditioned"):
        r, e = results[f"export_{v}"], exported[v]
        lines.append(f"| export --view {v} | {r['seconds']} | {r['peak_rss_mb']} | {e['documents']:,} documents written, "
                     f"{args.rows / r['seconds']:,.0f} run documents/s, {e['documents'] / r['seconds']:,.0f} docs/s |")
    table = "\n".join(lines)
    print(table)
    if args.write_docs:
        from common import write_section

        write_section(REPO / "docs" / "benchmarks.md", "<!-- audit-bench:start -->", "<!-- audit-bench:end -->",
                      "<!-- audit-bench:start -->\nCommand: `python bench/audit_bench.py --rows "
                      f"{args.rows} --write-docs`\n\n{table}\n<!-- audit-bench:end -->",
                      heading="## Audit, HTML report and export (issue #15)")


if __name__ == "__main__":
    main()
