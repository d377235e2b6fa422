"""Benchmark and evaluate DropNearDuplicates (issue #4). One command:

    .venv/bin/python bench/minhash_bench.py [--sizes 10000,100000] [--no-datatrove] [--out docs/benchmarks.md]

What it measures, in one run, on corpora from ``bench/neardup_corpus.py``:

1. **Quality**: the similarity -> detection-rate curve of the stage's algorithm (in memory, same
   code as the Beam stage) on planted pairs, for num_perm 128 and 256, with the theoretical curve;
   recall for true Jaccard >= t + 0.05, false-detection rate below t - 0.05. Plot:
   ``docs/near_dedup_curve.png`` (matplotlib, from the ``bench`` extra).
2. **Agreement with datasketch.MinHashLSH** (same threshold, num_perm, and shingle hash values;
   and with datasketch's own sha1 shingle hashing): confusion over planted pairs and over every
   pair the two put in one cluster.
3. **Signature throughput**: ours (vectorised shingling + batched permutations) vs a datasketch
   per-document ``update`` loop (and ``update_batch``), same documents, same process.
4. **The whole Beam stage** (read JSONL -> DropNearDuplicates -> write decisions) at each size on
   2 workers (``--direct_num_workers=2 --direct_running_mode=multi_processing``): docs/s and the
   peak resident memory of the whole process tree (sampled from /proc every 0.2 s), next to the
   same pipeline without the stage.
5. **datatrove** 0.10 (``MinhashDedupSignature/Buckets/Cluster/Filter``, installed from PyPI into
   ``out/bench/datatrove-venv``) on the same shards with the same bands x rows, 5-grams and 2
   workers: wall time, peak memory, and agreement with ours.

It rewrites only its own block between ``<!-- bench:minhash:start -->`` and
``<!-- bench:minhash:end -->`` in --out.
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import os
import platform
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import common  # noqa: E402
from bench.common import cpu_model  # noqa: E402
from bench.neardup_corpus import Corpus, iter_pairs_by_bin, make_corpus  # noqa: E402
from toxsieve.pipelines.config import NearDedupConfig  # noqa: E402
from toxsieve.pipelines.document import Document  # noqa: E402
from toxsieve.pipelines.stages.minhash import MinHasher, lsh_params, shingle_hash, shingle_hashes, shingles  # noqa: E402
from toxsieve.pipelines.stages.near_dedup import find_near_duplicates, union_find_components  # noqa: E402

WORK = REPO / "out" / "bench" / "minhash"
DT_VENV = REPO / "out" / "bench" / "datatrove-venv"
DEFAULT_OUT = REPO / "docs" / "benchmarks.md"
PLOT = REPO / "docs" / "near_dedup_curve.png"
START, END = "<!-- bench:minhash:start -->", "<!-- bench:minhash:end -->"
SECTION = "## Near-deduplication, MinHash-LSH (issue #4)"


# --- process-tree memory sampling ---------------------------------------------------


def _tree_rss(root: int) -> int:
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            ppid, pages = int(fields[1]), int(fields[21])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
        rss[int(entry)] = pages * os.sysconf("SC_PAGE_SIZE")
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def run_measured(cmd: Sequence[str], log: Path, timeout: float = 3600) -> tuple[float, int]:
    """(wall seconds, peak RSS bytes of the process tree) of a command; raises if it fails."""
    peak = 0
    with open(log, "w") as fh:
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=fh, stderr=subprocess.STDOUT, cwd=REPO)
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, _tree_rss(proc.pid))
                time.sleep(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        rc = proc.wait(timeout=timeout)
        wall = time.perf_counter() - t0
        stop.set()
        sampler.join()
    if rc != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({rc}); see {log}")
    return wall, peak


# --- 1. quality ----------------------------------------------------------------------


def _together(decisions: dict, a: str, b: str) -> bool:
    return a in decisions and b in decisions and decisions[a][0] == decisions[b][0]


def _docs(corpus: Corpus) -> list[Document]:
    return [Document(i, "mem://bench", 0, "jsonl", text=t) for i, t in corpus.docs.items()]


def quality(corpus: Corpus) -> dict[str, Any]:
    from scipy.stats import binom

    docs = _docs(corpus)
    out: dict[str, Any] = {"pairs": len(corpus.pairs), "docs": len(docs), "by_num_perm": {}}
    for num_perm in (128, 256):
        cfg = NearDedupConfig(num_perm=num_perm)
        t0 = time.perf_counter()
        dec = find_near_duplicates(docs, cfg)
        elapsed = time.perf_counter() - t0
        hi = [p for p in corpus.pairs if p.jaccard >= cfg.threshold + 0.05]
        lo = [p for p in corpus.pairs if p.jaccard < cfg.threshold - 0.05]
        found = [p for p in corpus.pairs if _together(dec, p.a, p.b)]
        b, r = lsh_params(cfg.threshold, num_perm)
        curve = []
        for lo_edge, pairs in iter_pairs_by_bin(corpus.pairs):
            s = np.array([p.jaccard for p in pairs])
            theory = np.mean((1 - (1 - s ** r) ** b) * binom.sf(np.ceil(cfg.threshold * num_perm) - 1, num_perm, s))
            curve.append((round(lo_edge, 2), len(pairs), sum(_together(dec, p.a, p.b) for p in pairs) / len(pairs),
                          float(theory)))
        other_clusters = sum(1 for d, v in dec.items() if v[1] > 2)
        out["by_num_perm"][num_perm] = {
            "bands_rows": (b, r), "seconds": elapsed,
            "recall_hi": sum(_together(dec, p.a, p.b) for p in hi) / len(hi), "n_hi": len(hi),
            "false_rate_lo": sum(_together(dec, p.a, p.b) for p in lo) / len(lo), "n_lo": len(lo),
            "precision_found": sum(p.jaccard >= cfg.threshold - 0.05 for p in found) / max(len(found), 1),
            "n_found": len(found), "curve": curve, "clusters_gt2": other_clusters,
            "by_kind": {k: sum(_together(dec, p.a, p.b) for p in hi if p.kind == k) / max(1, sum(p.kind == k for p in hi))
                        for k in sorted({p.kind for p in hi})},
        }
    _plot(out)
    return out


def _plot(q: dict[str, Any]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing (pip install -e '.[bench]'): no plot", file=sys.stderr)
        return
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for num_perm, style in ((128, "o-"), (256, "s-")):
        res = q["by_num_perm"][num_perm]
        xs = [c[0] + 0.025 for c in res["curve"]]
        ax.plot(xs, [c[2] for c in res["curve"]], style, label=f"measured, num_perm={num_perm} {res['bands_rows']}")
        ax.plot(xs, [c[3] for c in res["curve"]], "--", alpha=0.6, label=f"theory (LSH × verification), {num_perm}")
    ax.axvline(0.8, color="grey", lw=0.8)
    ax.axvspan(0.75, 0.85, color="grey", alpha=0.1)
    ax.set_xlabel("true Jaccard of the planted pair (word 5-gram shingles)")
    ax.set_ylabel("share detected (same cluster)")
    ax.set_title(f"DropNearDuplicates, threshold 0.8: {q['pairs']} planted pairs in {q['docs']} documents")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(PLOT)
    plt.close(fig)


# --- 2. agreement with datasketch ---------------------------------------------------


def _clusters_pairs(labels: dict[str, str]) -> set[tuple[str, str]]:
    groups: dict[str, list[str]] = {}
    for d, lab in labels.items():
        groups.setdefault(lab, []).append(d)
    return {(a, b) for g in groups.values() for i, a in enumerate(sorted(g)) for b in sorted(g)[i + 1:]}


def datasketch_clusters(corpus: Corpus, cfg: NearDedupConfig, own_hash: bool) -> dict[str, str]:
    """doc_id -> cluster label with MinHashLSH: insert all, query each, verify, union-find."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=cfg.threshold, num_perm=cfg.num_perm)
    mhs: dict[str, MinHash] = {}
    for doc_id, text in corpus.docs.items():
        sh = shingles(text, cfg.ngram)
        if own_hash:
            m = MinHash(cfg.num_perm, seed=cfg.seed, hashfunc=shingle_hash)
            m.update_batch(sh)
        else:
            m = MinHash(cfg.num_perm, seed=cfg.seed)  # datasketch's sha1_hash32 of the shingle text
            m.update_batch([" ".join(s).encode() for s in sh])
        mhs[doc_id] = m
        lsh.insert(doc_id, m)
    edges = [(a, b) for a, m in mhs.items() for b in lsh.query(m) if a < b and m.jaccard(mhs[b]) >= cfg.threshold]
    return union_find_components(edges)  # type: ignore[arg-type]


def agreement(corpus: Corpus) -> dict[str, Any]:
    cfg = NearDedupConfig()
    ours = {d: v[0] for d, v in find_near_duplicates(_docs(corpus), cfg).items()}
    ours_pairs = _clusters_pairs(ours)
    out: dict[str, Any] = {}
    for name, own in (("same shingle hashes", True), ("datasketch sha1 shingle hashing", False)):
        t0 = time.perf_counter()
        theirs_pairs = _clusters_pairs(datasketch_clusters(corpus, cfg, own))
        planted = [(min(p.a, p.b), max(p.a, p.b)) for p in corpus.pairs]
        conf = {"both": 0, "ours_only": 0, "datasketch_only": 0, "neither": 0}
        for pr in planted:
            a, b = pr in ours_pairs, pr in theirs_pairs
            conf["both" if a and b else "ours_only" if a else "datasketch_only" if b else "neither"] += 1
        out[name] = {"planted": conf, "all_pairs": {
            "both": len(ours_pairs & theirs_pairs), "ours_only": len(ours_pairs - theirs_pairs),
            "datasketch_only": len(theirs_pairs - ours_pairs)}, "seconds": time.perf_counter() - t0}
    return out


# --- 3. signature throughput --------------------------------------------------------


def throughput(texts: list[str], n_ds: int = 300) -> dict[str, Any]:
    from datasketch import MinHash

    out: dict[str, Any] = {"docs": len(texts), "mean_words": float(np.mean([len(t.split()) for t in texts]))}
    for num_perm in (128, 256):
        hasher = MinHasher(num_perm, 1)
        t0 = time.perf_counter()
        for s in range(0, len(texts), 256):
            values, offsets = shingle_hashes(texts[s:s + 256])
            hasher.signatures(values, offsets)
        ours = len(texts) / (time.perf_counter() - t0)
        sample = texts[:n_ds]
        t0 = time.perf_counter()
        for t in sample:
            m = MinHash(num_perm, seed=1)
            for sh in shingles(t, 5):
                m.update(" ".join(sh).encode())
        ds_update = len(sample) / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for t in sample:
            m = MinHash(num_perm, seed=1)
            m.update_batch([" ".join(sh).encode() for sh in shingles(t, 5)])
        ds_batch = len(sample) / (time.perf_counter() - t0)
        out[num_perm] = {"ours": ours, "datasketch_update": ds_update, "datasketch_update_batch": ds_batch}
    return out


# --- 4. the Beam stage --------------------------------------------------------------


def stage_pipeline(pattern: str, out_dir: str, with_stage: bool, beam_args: list[str]) -> None:
    """The measured pipeline (run in a subprocess): read -> [DropNearDuplicates] -> decisions."""
    import apache_beam as beam

    from toxsieve.pipelines.config import InputConfig
    from toxsieve.pipelines.document import Document
    from toxsieve.pipelines.io.readers import read_shard
    from toxsieve.pipelines.runtime.run import make_runner, pipeline_options
    from toxsieve.pipelines.stages.near_dedup_beam import DropNearDuplicates

    def read(path: str) -> Any:
        with open(path, "rb") as fh:
            yield from (r for r in read_shard(fh, path, "jsonl", InputConfig()) if isinstance(r, Document))

    opts = pipeline_options(beam_args)
    with beam.Pipeline(runner=make_runner(opts), options=opts) as p:
        docs = (p | "Files" >> beam.Create(sorted(glob.glob(pattern))) | "Spread" >> beam.Reshuffle()
                | "Read" >> beam.FlatMap(read))
        if with_stage:
            kept, removed = docs | DropNearDuplicates(NearDedupConfig())
            _ = (removed | "Fmt" >> beam.Map(lambda d: f"{d.doc_id}\t{d.removal.duplicate_of}\t{d.near_dup_similarity}")
                 | "WriteRemoved" >> beam.io.WriteToText(os.path.join(out_dir, "removed"), ".tsv"))
        else:
            kept = docs
        _ = (kept | "Count" >> beam.combiners.Count.Globally()
             | "WriteKept" >> beam.Map(lambda n: Path(out_dir, "kept_count").write_text(str(n))))


def write_shards(corpus: Corpus, directory: Path, n_shards: int) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    ids = sorted(corpus.docs)
    for k in range(n_shards):
        with open(directory / f"part-{k:03d}.jsonl", "w") as fh:
            for doc_id in ids[k::n_shards]:
                fh.write(json.dumps({"id": doc_id, "text": corpus.docs[doc_id]}) + "\n")
    return str(directory / "*.jsonl")


def stage_runs(size: int, corpus: Corpus, pattern: str) -> dict[str, Any]:
    run_dir = WORK / f"stage-{size}"
    res: dict[str, Any] = {"docs": size}
    flags = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]
    for name, with_stage in (("read_only", False), ("with_stage", True)):
        out = run_dir / name
        out.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, __file__, "--stage-run", pattern, str(out), "1" if with_stage else "0", *flags]
        wall, peak = run_measured(cmd, run_dir / f"{name}.log")
        res[name] = {"wall_s": wall, "peak_rss": peak, "kept": int((out / "kept_count").read_text())}
    res["removed"] = load_stage_removed(size)
    return res


# --- 5. datatrove ---------------------------------------------------------------------

DT_SCRIPT = '''
import sys, time
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup.minhash import (MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster,
                                              MinhashDedupFilter, MinhashDedupSignature)
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers.jsonl import JsonlWriter
from datatrove.utils.hashing import HashConfig
from datatrove.utils.word_tokenizers import WordTokenizer

class Whitespace(WordTokenizer):
    """simplify_text already lower-cases and strips punctuation; split like our \\\\w+ tokens."""
    def word_tokenize(self, text): return text.split()
    def sent_tokenize(self, text): return [text]
    def span_tokenize(self, text): return [(0, len(text))]

def main():
    inp, work, bands, rows, n_tasks = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    cfg = MinhashConfig(n_grams=5, num_buckets=bands, hashes_per_bucket=rows, seed=1, hash_config=HashConfig(precision=64))
    reader = JsonlReader(inp, glob_pattern="*.jsonl", id_key="id", text_key="text")
    t = time.perf_counter()
    LocalPipelineExecutor([reader, MinhashDedupSignature(f"{work}/sigs", config=cfg, language=Whitespace())],
                          tasks=n_tasks, workers=2, logging_dir=f"{work}/logs/1").run()
    LocalPipelineExecutor([MinhashDedupBuckets(f"{work}/sigs", f"{work}/buckets", config=cfg)],
                          tasks=bands, workers=2, logging_dir=f"{work}/logs/2").run()
    LocalPipelineExecutor([MinhashDedupCluster(f"{work}/buckets", f"{work}/remove_ids", config=cfg, save_cluster_id=True)],
                          tasks=1, workers=1, logging_dir=f"{work}/logs/3").run()
    LocalPipelineExecutor([JsonlReader(inp, glob_pattern="*.jsonl", id_key="id", text_key="text"),
                           MinhashDedupFilter(f"{work}/remove_ids", load_cluster_ids=True,
                                              exclusion_writer=JsonlWriter(f"{work}/removed", compression=None)),
                           JsonlWriter(f"{work}/kept", compression=None)],
                          tasks=n_tasks, workers=2, logging_dir=f"{work}/logs/4").run()
    print("datatrove_seconds", time.perf_counter() - t)


if __name__ == "__main__":
    main()
'''


def ensure_datatrove() -> Path | None:
    py = DT_VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(DT_VENV)], check=True)
    probe = subprocess.run([str(py), "-c", "import datatrove, xxhash, regex, tokenizers, orjson"], capture_output=True)
    if probe.returncode != 0:
        r = subprocess.run([str(py), "-m", "pip", "install", "-q", "datatrove==0.10.1", "xxhash<4", "regex", "tokenizers", "orjson"], capture_output=True)
        if r.returncode != 0:
            print("datatrove install failed:", r.stderr.decode()[-500:], file=sys.stderr)
            return None
    return py


def datatrove_run(size: int, shard_dir: Path, n_shards: int) -> dict[str, Any]:
    py = ensure_datatrove()
    if py is None:
        return {}
    work = WORK / f"datatrove-{size}"
    subprocess.run(["rm", "-rf", str(work)], check=True)
    work.mkdir(parents=True)
    script = WORK / "datatrove_run.py"
    script.write_text(DT_SCRIPT)
    bands, rows = lsh_params(0.8, 256)
    wall, peak = run_measured([str(py), str(script), str(shard_dir), str(work), str(bands), str(rows), str(n_shards)],
                              work / "run.log")
    removed: dict[str, str] = {}
    cluster_of: dict[str, int] = {}
    for folder in ("removed", "kept"):
        for f in (work / folder).glob("*.jsonl"):
            for line in f.read_text().splitlines():
                rec = json.loads(line)
                cid = rec.get("metadata", {}).get("minhash_cluster_id")
                if cid is not None and cid != -1:
                    cluster_of[rec["id"]] = cid
                if folder == "removed":
                    removed[rec["id"]] = str(cid)
    return {"wall_s": wall, "peak_rss": peak, "removed": removed, "clusters": cluster_of}


# --- report ------------------------------------------------------------------------------


def _mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def render(q: dict, agree: dict, thr: dict, stages: list[dict], dts: dict[int, dict], corpora: dict[int, Corpus],
           quality_corpus: Corpus) -> str:
    cpu = cpu_model()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    lines = [
        f"Measured {dt.date.today().isoformat()} by `bench/minhash_bench.py` on {cpu}, {os.cpu_count()} cores "
        f"(shared with other work), {mem / 2**30:.0f} GiB RAM, Python {platform.python_version()}, "
        f"numpy {np.__version__}. Corpora: `bench/neardup_corpus.py` (synthetic Zipf text, ~450 words per document, "
        "planted pairs at known word-5-gram Jaccard). Defaults: word 5-grams, threshold 0.8, scheme affine32, seed 1.",
        "",
        "### Quality on planted pairs",
        "",
        f"{q['pairs']} planted pairs (true Jaccard uniform-ish in 0.3–1; edits, insertions, deletions, shuffled "
        f"paragraphs, boilerplate) among {q['docs']} documents. A pair counts as detected when both land in one "
        "cluster. Curve: `docs/near_dedup_curve.png`.",
        "",
        "| num_perm | bands × rows | recall, J ≥ 0.85 | false detections, J < 0.75 | detected pairs with J ≥ 0.75 | clusters > 2 |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for num_perm, r in q["by_num_perm"].items():
        lines.append(f"| {num_perm} | {r['bands_rows'][0]} × {r['bands_rows'][1]} | {r['recall_hi']:.3f} ({r['n_hi']}) | "
                     f"{r['false_rate_lo']:.4f} ({r['n_lo']}) | {r['precision_found']:.3f} ({r['n_found']}) | "
                     f"{r['clusters_gt2']} |")
    r256 = q["by_num_perm"][256]
    lines += ["", "Detection rate by true Jaccard (num_perm 256; theory = S-curve × P(estimate ≥ 0.8)):", "",
              "| J bin | pairs | detected | theory |", "|---|---:|---:|---:|"]
    for lo, n, rate, theory in r256["curve"]:
        lines.append(f"| {lo:.2f}–{lo + 0.05:.2f} | {n} | {rate:.3f} | {theory:.3f} |")
    lines += ["", "Recall at J ≥ 0.85 by kind (256): " + ", ".join(f"{k} {v:.3f}" for k, v in r256["by_kind"].items()),
              "", "### Agreement with datasketch.MinHashLSH", "",
              "Same corpus; `MinHashLSH(threshold=0.8, num_perm=256)`, every document inserted then queried, "
              "candidates verified with `MinHash.jaccard ≥ 0.8`, union-find. Planted pairs: in one cluster for both / "
              "only ours / only datasketch / neither; all pairs: every pair either puts in one cluster.", "",
              "| datasketch hashing | planted: both | ours only | datasketch only | neither | all pairs: both | ours only | datasketch only |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, a in agree.items():
        pl, al = a["planted"], a["all_pairs"]
        lines.append(f"| {name} | {pl['both']} | {pl['ours_only']} | {pl['datasketch_only']} | {pl['neither']} | "
                     f"{al['both']} | {al['ours_only']} | {al['datasketch_only']} |")
    lines += ["", "### Signature throughput (one process)", "",
              f"{thr['docs']} documents of {thr['mean_words']:.0f} words on average; datasketch timed on the first 300. "
              "Ours: `shingle_hashes` + `MinHasher.signatures` in batches of 256. datasketch: `MinHash(num_perm)` "
              "and one `update(shingle.encode())` per shingle (the loop the issue names), or one `update_batch` per document.",
              "", "| num_perm | ours docs/s | datasketch update loop | speed-up | datasketch update_batch | speed-up |",
              "|---:|---:|---:|---:|---:|---:|"]
    for num_perm in (128, 256):
        t = thr[num_perm]
        lines.append(f"| {num_perm} | {t['ours']:,.0f} | {t['datasketch_update']:,.0f} | "
                     f"{t['ours'] / t['datasketch_update']:.1f}× | {t['datasketch_update_batch']:,.0f} | "
                     f"{t['ours'] / t['datasketch_update_batch']:.1f}× |")
    lines += ["", "### The Beam stage on 2 workers, and datatrove", "",
              "a JSONL reader (8 shards) → `DropNearDuplicates` (defaults) → decisions, on the local "
              "FnApiRunner with `--direct_num_workers=2 --direct_running_mode=multi_processing`; the same "
              "pipeline without the stage is the baseline. Stage docs/s = documents / (wall − baseline wall). Peak RSS: "
              "the whole process tree (runner + workers). datatrove: its four `MinhashDedup*` steps with "
              "`LocalPipelineExecutor(workers=2)`, same shards, 5-grams, the same bands × rows, 64-bit hashes, "
              "whitespace tokens after its `simplify_text`; it has no verification step.", "",
              "| documents | baseline wall | with stage wall | stage docs/s | peak RSS baseline | peak RSS with stage | removed | datatrove wall | datatrove peak RSS | datatrove removed | ours / datatrove time |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for st in stages:
        n = st["docs"]
        stage_s = st["with_stage"]["wall_s"] - st["read_only"]["wall_s"]
        d = dts.get(n, {})
        dt_cols = (f"{d['wall_s']:.1f} s | {_mib(d['peak_rss'])} | {len(d['removed']):,} | "
                   f"{st['with_stage']['wall_s'] / d['wall_s']:.2f}") if d else "– | – | – | –"
        lines.append(f"| {n:,} | {st['read_only']['wall_s']:.1f} s | {st['with_stage']['wall_s']:.1f} s | "
                     f"{n / max(stage_s, 1e-9):,.0f} | {_mib(st['read_only']['peak_rss'])} | "
                     f"{_mib(st['with_stage']['peak_rss'])} | {len(st['removed']):,} | {dt_cols} |")
    for st in stages:
        n = st["docs"]
        d = dts.get(n)
        pl = corpora[n].pairs
        ours_removed = set(st["removed"])
        ours_found = {(p.a, p.b) for p in pl if (p.a in ours_removed) != (p.b in ours_removed)}
        line = f"- {n:,} documents ({len(pl):,} planted pairs): ours detects {len(ours_found):,} planted pairs"
        if d:
            dt_removed = set(d["removed"])
            dt_found = {(p.a, p.b) for p in pl if (p.a in dt_removed) != (p.b in dt_removed)}
            line += (f", datatrove {len(dt_found):,}: both {len(ours_found & dt_found):,}, only ours "
                     f"{len(ours_found - dt_found):,}, only datatrove {len(dt_found - ours_found):,}. Removed documents: "
                     f"{len(ours_removed):,} vs {len(dt_removed):,}, the same document {len(ours_removed & dt_removed):,} "
                     "times (the keeper differs: ours keeps the smallest doc_id, datatrove the first in file order)")
        lines.append(line + ".")
    return "\n".join(lines)


def load_stage_removed(size: int) -> dict[str, str]:
    removed: dict[str, str] = {}
    for f in (WORK / f"stage-{size}" / "with_stage").glob("removed*.tsv"):
        for line in f.read_text().splitlines():
            doc_id, dup, _ = line.split("\t")
            removed[doc_id] = dup
    return removed


def load_datatrove_removed(size: int) -> dict[str, str]:
    removed: dict[str, str] = {}
    for f in (WORK / f"datatrove-{size}" / "removed").glob("*.jsonl"):
        for line in f.read_text().splitlines():
            rec = json.loads(line)
            removed[rec["id"]] = str(rec.get("metadata", {}).get("minhash_cluster_id"))
    return removed


def stage_corpus(size: int) -> Corpus:
    n_pairs = size // 10
    return make_corpus(n_pairs, size - 2 * n_pairs, seed=size, measure=False)


def render_only(out: Path) -> None:
    """Re-render the section from out/bench/minhash/results.json and the outputs on disk."""
    res = json.loads((WORK / "results.json").read_text())
    q = res["quality"]
    q["by_num_perm"] = {int(k): v for k, v in q["by_num_perm"].items()}
    thr = {int(k) if k.isdigit() else k: v for k, v in res["throughput"].items()}
    stages, dts, corpora = [], {}, {}
    for st in res["stages"]:
        n = st["docs"]
        stages.append({**st, "removed": load_stage_removed(n)})
        corpora[n] = stage_corpus(n)
        if (WORK / f"datatrove-{n}" / "removed").exists() and str(n) in res.get("datatrove", {}):
            dts[n] = {**res["datatrove"][str(n)], "removed": load_datatrove_removed(n)}
    write_section(out, render(q, res["agreement"], thr, stages, dts, corpora, Corpus()))


def write_section(out: Path, body: str) -> None:
    common.write_section(out, START, END, f"{START}\n{body}\n{END}", heading=SECTION)


def main(argv: Iterable[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=textwrap.dedent(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--quality-pairs", type=int, default=3000)
    ap.add_argument("--no-datatrove", action="store_true")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--stage-run", nargs=3, metavar=("PATTERN", "OUT", "WITH_STAGE"))
    ap.add_argument("--render-only", action="store_true", help="rewrite the section from the last run's results")
    args, beam_args = ap.parse_known_args(list(argv) if argv is not None else None)
    if args.stage_run:
        pattern, out_dir, with_stage = args.stage_run
        stage_pipeline(pattern, out_dir, with_stage == "1", beam_args)
        return
    if args.render_only:
        render_only(args.out)
        return
    WORK.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    print("quality ...", flush=True)
    qc = make_corpus(args.quality_pairs, args.quality_pairs, seed=2024)
    results["quality"] = q = quality(qc)
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "curve"} for k, v in q["by_num_perm"].items()}),
          flush=True)
    print("agreement with datasketch ...", flush=True)
    results["agreement"] = agree = agreement(qc)
    print(json.dumps(agree), flush=True)
    print("throughput ...", flush=True)
    results["throughput"] = thr = throughput(list(qc.docs.values())[:3000])
    print(json.dumps(thr), flush=True)
    stages, dts, corpora = [], {}, {}
    for size in (int(s) for s in args.sizes.split(",") if s):
        print(f"stage at {size} ...", flush=True)
        corpora[size] = corpus = stage_corpus(size)
        shard_dir = WORK / f"corpus-{size}"
        pattern = write_shards(corpus, shard_dir, 8)
        st = stage_runs(size, corpus, pattern)
        stages.append(st)
        print(json.dumps({k: v for k, v in st.items() if k != "removed"}), flush=True)
        if not args.no_datatrove:
            print(f"datatrove at {size} ...", flush=True)
            dts[size] = datatrove_run(size, shard_dir, 8)
            print(json.dumps({k: v for k, v in dts[size].items() if k not in ("removed", "clusters")}), flush=True)
    (WORK / "results.json").write_text(json.dumps({
        **results, "stages": [{k: v for k, v in s.items() if k != "removed"} for s in stages],
        "datatrove": {n: {k: v for k, v in d.items() if k not in ("removed", "clusters")} for n, d in dts.items()},
    }, default=str, indent=1))
    write_section(args.out, render(q, agree, thr, stages, dts, corpora, qc))
    print(f"wrote {args.out} and {PLOT}")


if __name__ == "__main__":
    main()
