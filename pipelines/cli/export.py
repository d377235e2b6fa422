"""``toxsieve export``: training-ready detoxification views from a run's stored toxicity scores.

No model runs. Three views of the documents that passed every filter other than toxicity (kept
documents, plus, in a filter-mode run, those removed *only* for toxicity):

- ``dapt``: scored documents below the toxicity threshold (per language; domain-adaptive
  pretraining on the non-toxic part, Gururangan et al. 2020 / Gehman et al. 2020);
- ``conditioned``: every such document with a control token from score bins
  (``<|toxicity:low|>`` ...; CTRL, Keskar et al. 2019) as a column, optionally prepended to the text;
- ``toxic``: scored documents at or above the threshold, with their scores (anti-experts, DExperts).

Documents without a score (a language the model does not support) are never silently mixed in:
``dapt`` and ``toxic`` leave them out and count them; ``conditioned`` gives them
``<|toxicity:unknown|>`` (or leaves them out with ``--unknown exclude``), counted either way.

Texts come from ``kept/``; documents removed for toxicity come from ``removed/`` and only when it
stored their full text (else the export stops, exit 2, before writing anything). The export
streams Parquet record batches (memory bounded by a batch and a shard writer), writes shards
under ``DIR/data/``, a Hugging Face dataset card ``DIR/README.md``, the score histogram
``DIR/score_histogram.svg`` and ``DIR/export.json``. Same run and options: the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash

from toxsieve.pipelines.cli.audit import SCORE_BINS, record_batches, score_bins
from toxsieve.pipelines.cli.charts import fmt_int, fmt_score, fmt_share, histogram

VIEWS = ("dapt", "conditioned", "toxic")
OWN_OUTPUTS = ("data", "README.md", "score_histogram.svg", "export.json")
CHARS_PER_TOKEN = 4  # token estimate: ceil(characters / 4), the usual rule of thumb for English BPE vocabularies
SCORE_DECIMALS = 6  # scores are compared as ScoreToxicity compared them (rounded to 6 decimals)
UNKNOWN = "unknown"
NO_LANGUAGE = ""
BATCH_ROWS = 8192
TOXICITY = "toxicity"
KEEP_COLUMNS = ["doc_id", "text", "url", "crawl_date", "language", "toxicity_score", "source_path", "source_offset"]
REMOVED_COLUMNS = ["doc_id", "url", "language", "score", "source_path", "source_offset", "text_truncated", "stage"]


class ExportError(ValueError):
    """A problem the user must fix (exit status 2); nothing has been written when it is raised."""


@dataclass(frozen=True)
class Bins:
    """Score bins for control tokens: ``names[i]`` for scores below ``edges[i]``, the last name above."""

    names: tuple[str, ...]
    edges: tuple[float, ...]  # empty: two bins split at each document's threshold

    def describe(self, threshold: str) -> list[str]:
        if not self.edges:
            return [f"{self.names[0]}: score < {threshold}", f"{self.names[1]}: score >= {threshold}"]
        lows = (0.0, *self.edges)
        highs = (*self.edges, None)
        return [f"{n}: {fmt_score(lo)} <= score" + (f" < {fmt_score(hi)}" if hi is not None else "")
                for n, lo, hi in zip(self.names, lows, highs, strict=True)]


def parse_bins(spec: str | None) -> Bins:
    """``low:0.5,medium:0.9,high``: each name with the score it ends below, the last one open."""
    if not spec:
        return Bins(("low", "high"), ())
    names: list[str] = []
    edges: list[float] = []
    parts = [p.strip() for p in spec.split(",")]
    for i, part in enumerate(parts):
        name, sep, edge = part.partition(":")
        if not name or not name.replace("_", "").replace("-", "").isalnum():
            raise ExportError(f"--bins: bad bin name {name!r} in {spec!r} (letters, digits, - and _)")
        names.append(name)
        if i < len(parts) - 1:
            try:
                edges.append(float(edge))
            except ValueError:
                raise ExportError(f"--bins expects NAME:UPPER,...,NAME (e.g. low:0.5,high), not {spec!r}") from None
        elif sep:
            raise ExportError(f"--bins: the last bin ({name}) has no upper edge, in {spec!r}")
    if len(names) < 2 or len(set(names)) != len(names) or UNKNOWN in names:
        raise ExportError(f"--bins needs two or more distinct names other than {UNKNOWN!r}: {spec!r}")
    if any(not 0.0 < e < 1.0 for e in edges) or edges != sorted(set(edges)):
        raise ExportError(f"--bins: edges must increase strictly inside (0, 1): {spec!r}")
    return Bins(tuple(names), tuple(edges))



def control_token(name: str) -> str:
    return f"<|toxicity:{name}|>"


@dataclass
class ExportOptions:
    view: str
    threshold: float | None = None
    per_language: dict[str, float] | None = None
    bins: Bins = field(default_factory=lambda: parse_bins(None))
    languages: tuple[str, ...] = ()
    prepend_token: bool = False
    unknown: str = "token"  # conditioned: "token" (<|toxicity:unknown|>) or "exclude"
    overwrite: bool = False
    license: str = "other"
    shard_bytes: int = 128 * 1024 * 1024


@dataclass
class Tally:
    documents: Counter[tuple[str, str]] = field(default_factory=Counter)  # (bin, language) -> documents
    tokens: Counter[tuple[str, str]] = field(default_factory=Counter)
    excluded: Counter[str] = field(default_factory=Counter)  # why -> documents
    unscored: Counter[str] = field(default_factory=Counter)  # language -> documents without a score
    histogram: list[int] = field(default_factory=lambda: [0] * SCORE_BINS)
    from_removed: int = 0


class _Shards:
    """Parquet shards of about ``target_bytes`` of text each, under temporary names until ``close``."""

    def __init__(self, directory: Path, schema: pa.Schema, target_bytes: int) -> None:
        self.directory, self.schema, self.target = directory, schema, target_bytes
        self.paths: list[Path] = []
        self._writer: pq.ParquetWriter | None = None
        self._bytes = 0
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        if self._writer is None:
            path = self.directory / f".part-{len(self.paths):05d}.parquet"
            self.paths.append(path)
            self._writer = pq.ParquetWriter(path, self.schema, compression="zstd")
        self._writer.write_table(table, row_group_size=BATCH_ROWS)
        self.rows += table.num_rows
        self._bytes += table.nbytes
        if self._bytes >= self.target:
            self._writer.close()
            self._writer, self._bytes = None, 0

    def close(self) -> list[Path]:
        if self._writer is not None:
            self._writer.close()
        if not self.paths:  # an empty view is still a loadable dataset
            path = self.directory / ".part-00000.parquet"
            pq.write_table(self.schema.empty_table(), path, compression="zstd")
            self.paths.append(path)
        final = []
        for i, path in enumerate(self.paths):
            target = self.directory / f"train-{i:05d}-of-{len(self.paths):05d}.parquet"
            os.replace(path, target)
            final.append(target)
        return final


def output_schema(view: str) -> pa.Schema:
    fields = [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("text", pa.large_string(), nullable=False),
        pa.field("url", pa.string()),
        pa.field("crawl_date", pa.string()),
        pa.field("language", pa.string()),
        pa.field("toxicity_score", pa.float32()),  # null: the model does not support the language
        pa.field("toxicity_threshold", pa.float32()),  # the threshold the view compared the score with
    ]
    if view == "conditioned":
        fields += [pa.field("toxicity_bin", pa.string(), nullable=False),
                   pa.field("control_token", pa.string(), nullable=False)]
    fields += [pa.field("token_estimate", pa.int64(), nullable=False),
               pa.field("source_path", pa.string(), nullable=False),
               pa.field("source_offset", pa.int64(), nullable=False)]
    return pa.schema(fields, metadata={"toxsieve.schema": f"export_{view}", "toxsieve.schema_version": "1"})


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.parquet") if not p.name.startswith("."))


def _key_hash(doc_ids: list[str], paths: list[str], offsets: list[int]) -> np.ndarray:
    return np.array([xxhash.xxh3_64_intdigest(f"{d}\0{p}\0{o}".encode()) for d, p, o in zip(doc_ids, paths, offsets, strict=True)],
                    dtype=np.uint64)


class _Decider:
    """The thresholds of the export, as the run applied them: per language, and in a cascade the
    second model's own threshold for the documents it decided (those with a stored fast score)."""

    def __init__(self, tox: dict[str, Any], options: ExportOptions, cascaded: np.ndarray) -> None:
        self.threshold = float(tox.get("threshold", 0.9) if options.threshold is None else options.threshold)
        self.per_language = dict(tox.get("threshold_per_language") or {}) if options.per_language is None \
            else dict(options.per_language)
        self.cascade_threshold = float(tox.get("cascade_threshold", 0.5)) if tox.get("cascade_model") else None
        self.cascaded = cascaded  # sorted xxh3 of the keys of documents the cascade's second model decided

    def thresholds(self, batch: pa.RecordBatch, languages: np.ndarray, names: list[str]) -> np.ndarray:
        per_name = np.array([self.per_language.get(n, self.threshold) for n in names] or [self.threshold])
        thr = per_name[languages].astype(np.float64)
        if self.cascade_threshold is not None and len(self.cascaded):
            keys = _key_hash(batch.column("doc_id").to_pylist(), batch.column("source_path").to_pylist(),
                             batch.column("source_offset").to_pylist())
            pos = np.minimum(np.searchsorted(self.cascaded, keys), len(self.cascaded) - 1)
            thr[self.cascaded[pos] == keys] = self.cascade_threshold
        return thr


def _cascaded_keys(src: Path, tox: dict[str, Any]) -> np.ndarray:
    if not tox.get("cascade_model"):
        return np.zeros(0, np.uint64)
    parts = []
    for batch in record_batches(_files(src / "metadata"), ["doc_id", "source_path", "source_offset",
                                                            "toxicity_fast_score"]):
        sent = batch.filter(pc.is_valid(batch.column("toxicity_fast_score")))
        if sent.num_rows:
            parts.append(_key_hash(sent.column("doc_id").to_pylist(), sent.column("source_path").to_pylist(),
                                   sent.column("source_offset").to_pylist()))
    return np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.uint64)


def _selection(view: str, options: ExportOptions, score: np.ndarray, thr: np.ndarray,
               languages: list[str], tally: Tally | None) -> tuple[np.ndarray, np.ndarray]:
    """(selected rows, bin index per row; -1 = unknown) for one batch, and the exclusion counts."""
    n = len(score)
    unknown = np.isnan(score)
    wanted = np.ones(n, bool)
    if options.languages:
        wanted = np.isin(np.array(languages, dtype=object), list(options.languages))
    if view == "dapt":
        chosen = ~unknown & (score < thr)
    elif view == "toxic":
        chosen = ~unknown & (score >= thr)
    else:
        chosen = ~unknown | (options.unknown == "token")
    bins = np.full(n, -1, np.int64)
    known = ~unknown
    if options.bins.edges:
        bins[known] = np.searchsorted(np.array(options.bins.edges), score[known], side="right")
    else:
        bins[known] = (score[known] >= thr[known]).astype(np.int64)
    if tally is not None:
        tally.excluded["language not asked for (--language)"] += int((~wanted).sum())
        for lang in np.array(languages, dtype=object)[wanted & unknown]:
            tally.unscored[lang or "(none)"] += 1
        if view != "conditioned":
            tally.excluded["no toxicity score (language not supported by the model)"] += int((wanted & unknown).sum())
            other = "at or above the threshold" if view == "dapt" else "below the threshold"
            tally.excluded[other] += int((wanted & ~unknown & ~chosen).sum())
        elif options.unknown == "exclude":
            tally.excluded["no toxicity score (--unknown exclude)"] += int((wanted & unknown).sum())
    return wanted & chosen, bins


def _batch_arrays(batch: pa.RecordBatch, score_column: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    lang = pc.fill_null(batch.column("language"), NO_LANGUAGE).dictionary_encode()
    score = pc.cast(batch.column(score_column), pa.float64()).to_numpy(zero_copy_only=False)
    return np.round(score, SCORE_DECIMALS), lang.indices.to_numpy(zero_copy_only=False), lang.dictionary.to_pylist()


def _bin_labels(view: str, options: ExportOptions) -> list[str]:
    """The label of each bin code; in ``conditioned`` the last one is for documents without a score."""
    if view == "dapt":
        return ["below_threshold"]
    if view == "toxic":
        return ["at_or_above_threshold"]
    return [*options.bins.names, UNKNOWN]


def _output_table(view: str, options: ExportOptions, batch: pa.RecordBatch, texts: pa.Array, score: np.ndarray,
                  thr: np.ndarray, bins: np.ndarray, mask: np.ndarray, tally: Tally,
                  lang_codes: np.ndarray, lang_names: list[str]) -> pa.Table:
    idx = np.flatnonzero(mask)
    take = pa.array(idx, pa.int64())
    text = pc.cast(texts.take(take), pa.large_string())
    lang = batch.column("language").take(take)
    chosen_scores = score[idx]
    names = _bin_labels(view, options)
    codes = np.zeros(len(idx), np.int64) if view != "conditioned" else np.where(bins[idx] < 0, len(names) - 1, bins[idx])
    n_chars = pc.utf8_length(text).to_numpy(zero_copy_only=False)
    tokens = np.ceil(n_chars / CHARS_PER_TOKEN).astype(np.int64)
    valid = ~np.isnan(chosen_scores)
    k = max(len(lang_names), 1)
    key = codes * k + lang_codes[idx]
    documents = np.bincount(key, minlength=len(names) * k)
    token_sums = np.bincount(key, weights=tokens, minlength=len(names) * k)
    for c in np.flatnonzero(documents).tolist():
        label = (names[c // k], lang_names[c % k] or "(none)")
        tally.documents[label] += int(documents[c])
        tally.tokens[label] += int(round(token_sums[c]))
    for b, n in enumerate(np.bincount(score_bins(chosen_scores[valid]), minlength=SCORE_BINS).tolist()):
        tally.histogram[b] += n
    columns: dict[str, Any] = {
        "doc_id": batch.column("doc_id").take(take),
        "text": text,
        "url": batch.column("url").take(take),
        "crawl_date": batch.column("crawl_date").take(take) if "crawl_date" in batch.schema.names
        else pa.nulls(len(idx), pa.string()),
        "language": lang,
        "toxicity_score": pa.array(np.where(valid, chosen_scores, 0.0), pa.float32(), mask=~valid),
        "toxicity_threshold": pa.array(thr[idx], pa.float32()),
    }
    if view == "conditioned":
        code_array = pa.array(codes, pa.int64())
        columns["toxicity_bin"] = pa.array(names, pa.string()).take(code_array)
        tokens_col = pa.array([control_token(n) for n in names], pa.large_string()).take(code_array)
        columns["control_token"] = pc.cast(tokens_col, pa.string())
        if options.prepend_token:
            columns["text"] = pc.binary_join_element_wise(tokens_col, text, pa.scalar("", pa.large_string()))
    columns["token_estimate"] = pa.array(tokens, pa.int64())
    columns["source_path"] = batch.column("source_path").take(take)
    columns["source_offset"] = batch.column("source_offset").take(take)
    return pa.Table.from_pydict(columns, schema=output_schema(view))


def _removed_batches(src: Path, columns: list[str]) -> Iterator[pa.RecordBatch]:
    for batch in record_batches(_files(src / "removed"), columns, BATCH_ROWS):
        batch = batch.filter(pc.equal(batch.column("stage"), TOXICITY))
        if batch.num_rows:
            yield batch


def _removed_crawl_dates(src: Path) -> dict[tuple[str, str, int], str | None]:
    """removed/ does not store the crawl date: take it from metadata/ (only the toxicity removals)."""
    out: dict[tuple[str, str, int], str | None] = {}
    for path in _files(src / "metadata"):
        table = pq.read_table(path, columns=["doc_id", "source_path", "source_offset", "crawl_date"],
                              filters=[("stage", "=", TOXICITY)])
        for row in table.to_pylist():
            out[(row["doc_id"], row["source_path"], row["source_offset"])] = row["crawl_date"]
    return out


def _prepare_dir(dst: Path, src: Path, overwrite: bool) -> None:
    if dst.resolve() == src.resolve() or src.resolve().is_relative_to(dst.resolve()):
        raise ExportError(f"--output {dst} would hold the source run {src}: choose another directory")
    if dst.exists() and not dst.is_dir():
        raise ExportError(f"--output {dst} exists and is not a directory")
    existing = sorted(dst.iterdir()) if dst.is_dir() else []
    if not existing:
        return
    if not overwrite:
        raise ExportError(f"output directory {dst} is not empty; pass --overwrite to replace a previous export")
    foreign = [p for p in existing if p.name not in OWN_OUTPUTS]
    if foreign:
        raise ExportError(f"output directory {dst} holds files that are not a toxsieve export (e.g. {foreign[0]}); "
                          "refusing to overwrite")
    for p in existing:
        shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()


def export(source: str | Path, output: str | Path, options: ExportOptions) -> dict[str, Any]:
    if options.view not in VIEWS:
        raise ExportError(f"--view must be one of {', '.join(VIEWS)}, not {options.view!r}")
    if "://" in f"{source}{output}":
        raise ExportError("export reads and writes local directories only (copy the run's outputs first)")
    src, dst = Path(source), Path(output)
    manifest_path = src / "manifest.json"
    if not manifest_path.is_file():
        raise ExportError(f"{src} has no manifest.json: not a complete toxsieve run")
    manifest_bytes = manifest_path.read_bytes()
    manifest = json.loads(manifest_bytes)
    config = manifest.get("config") or {}
    tox = config.get("toxicity") or {}
    if not tox.get("enabled", False):
        raise ExportError(f"{src} was run with toxicity disabled: there are no stored scores to export from")
    for name, value in [("--threshold", options.threshold), *(
            (f"--threshold-per-language {k}", v) for k, v in (options.per_language or {}).items())]:
        if value is not None and not 0.0 < value <= 1.0:
            raise ExportError(f"{name} must lie in (0, 1], not {value}")
    decider = _Decider(tox, options, _cascaded_keys(src, tox))
    removed_text = (config.get("output") or {}).get("removed_text", "truncated")

    # Before writing anything: documents removed for toxicity that the view needs must have their full text.
    missing = needs_removed = 0
    for batch in _removed_batches(src, REMOVED_COLUMNS):
        score, codes, names = _batch_arrays(batch, "score")
        thr = decider.thresholds(batch, codes, names)
        mask, _ = _selection(options.view, options, score, thr, [names[c] for c in codes], None)
        needs_removed += int(mask.sum())
        if removed_text == "none":
            missing += int(mask.sum())
        else:
            missing += int((mask & pc.fill_null(batch.column("text_truncated"), True)
                            .to_numpy(zero_copy_only=False)).sum())
    if missing:
        raise ExportError(
            f"{fmt_int(missing)} document(s) this view needs were removed for toxicity and {src}/removed/ holds only "
            f"a {'missing' if removed_text == 'none' else 'truncated'} text for them (output.removed_text: "
            f"{removed_text}); run the source with toxicity.mode: annotate (the default) or output.removed_text: "
            "full, or export with a threshold that leaves them out")

    _prepare_dir(dst, src, options.overwrite)
    data = dst / "data"
    data.mkdir(parents=True, exist_ok=True)
    shards = _Shards(data, output_schema(options.view), options.shard_bytes)
    tally = Tally()
    for batch in record_batches(_files(src / "kept"), KEEP_COLUMNS, BATCH_ROWS):
        score, codes, names = _batch_arrays(batch, "toxicity_score")
        thr = decider.thresholds(batch, codes, names)
        mask, bins = _selection(options.view, options, score, thr, [names[c] for c in codes], tally)
        shards.write(_output_table(options.view, options, batch, batch.column("text"), score, thr, bins, mask, tally,
                                   codes, names))
    crawl_dates = _removed_crawl_dates(src) if needs_removed else {}
    for batch in _removed_batches(src, [*REMOVED_COLUMNS, "text"]):
        keys = zip(batch.column("doc_id").to_pylist(), batch.column("source_path").to_pylist(),
                   batch.column("source_offset").to_pylist(), strict=True)
        batch = batch.append_column("crawl_date", pa.array([crawl_dates.get(k) for k in keys], pa.string()))
        score, codes, names = _batch_arrays(batch, "score")
        thr = decider.thresholds(batch, codes, names)
        mask, bins = _selection(options.view, options, score, thr, [names[c] for c in codes], tally)
        tally.from_removed += int(mask.sum())
        shards.write(_output_table(options.view, options, batch, batch.column("text"), score, thr, bins, mask, tally,
                                   codes, names))
    files = shards.close()

    summary = _summary(src, manifest, hashlib.sha256(manifest_bytes).hexdigest(), options, decider, tally, files, dst)
    (dst / "score_histogram.svg").write_text(_histogram_svg(options, decider, tally), encoding="utf-8")
    (dst / "README.md").write_text(dataset_card(summary, manifest, src), encoding="utf-8")
    (dst / "export.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return summary


def _summary(src: Path, manifest: dict[str, Any], manifest_sha: str, options: ExportOptions, decider: _Decider,
             tally: Tally, files: list[Path], dst: Path) -> dict[str, Any]:
    per = [{"bin": b, "language": lang, "documents": n, "token_estimate": tally.tokens[(b, lang)]}
           for (b, lang), n in sorted(tally.documents.items())]
    return {
        "view": options.view,
        "source": {"output": str(src), "run_id": manifest.get("run_id"), "manifest_sha256": manifest_sha,
                   "git_sha": manifest.get("git_sha"), "toxsieve_version": manifest.get("toxsieve_version")},
        "threshold": decider.threshold, "threshold_per_language": dict(sorted(decider.per_language.items())),
        "cascade_threshold": decider.cascade_threshold,
        "bins": (None if options.view != "conditioned" else
                 {"names": list(options.bins.names), "edges": list(options.bins.edges),
                  "tokens": [control_token(n) for n in (*options.bins.names, UNKNOWN)],
                  "description": options.bins.describe("the document's threshold"),
                  "prepended": options.prepend_token, "unknown": options.unknown}),
        "languages": list(options.languages),
        "documents": sum(tally.documents.values()),
        "token_estimate": sum(tally.tokens.values()),
        "token_estimate_rule": f"ceil(characters / {CHARS_PER_TOKEN}) of the exported text (before any control token)",
        "from_removed": tally.from_removed,
        "per_bin_language": per,
        "excluded": {k: v for k, v in sorted(tally.excluded.items()) if v},
        "unscored_by_language": dict(sorted(tally.unscored.items())),
        "score_histogram": {"bins": SCORE_BINS, "counts": tally.histogram},
        "files": [str(p.relative_to(dst)) for p in files],
        "license": options.license,
    }


def _histogram_svg(options: ExportOptions, decider: _Decider, tally: Tally) -> str:
    if options.view == "conditioned" and options.bins.edges:
        markers = [(e, f"{options.bins.names[i]} | {options.bins.names[i + 1]}") for i, e in enumerate(options.bins.edges)]
    else:
        markers = [(decider.threshold, f"threshold {fmt_score(decider.threshold)}")]
    return histogram(f"Toxicity scores of the exported documents ({options.view})", tally.histogram,
                     markers=markers, height=200, x_label="stored toxicity score")


def _notices(directory: Path) -> list[str]:
    """License/provenance files beside an input or a list, with their first line."""
    out = []
    for p in sorted(directory.glob("*")):
        if p.is_file() and p.name.split(".")[0].upper() in ("LICENSE", "LICENCE", "NOTICE", "COPYING", "PROVENANCE"):
            first = next((ln.strip(" #") for ln in p.read_text(errors="replace").splitlines() if ln.strip()), "")
            out.append(f"`{p}`: {first[:160]}")
    return out


def _provenance(manifest: dict[str, Any], src: Path) -> list[str]:
    lines = ["### Inputs", ""]
    files = (manifest.get("inputs") or {}).get("files") or []
    patterns = (manifest.get("inputs") or {}).get("patterns") or []
    lines.append(f"{fmt_int(len(files))} input file(s) matched by: " + ", ".join(f"`{p}`" for p in patterns) + ".")
    lines.append("")
    seen: dict[Path, list[str]] = {}
    for f in files:
        path = Path(str(f.get("path", "")))
        if "://" in str(path):
            continue
        directory = path.parent if path.is_absolute() else (Path.cwd() / path).parent
        if directory not in seen and directory.is_dir() and len(seen) < 20:
            seen[directory] = _notices(directory)
    for directory, notices in seen.items():
        lines.append(f"- `{directory}`: " + ("; ".join(notices) if notices else "no license or provenance file found"))
    lines += ["", "The text is web content under the terms of its sources (e.g. Common Crawl's terms of use and "
              "each page's own license); check them before use. toxsieve adds no rights.", "",
              "### Models and lists used by the source run", ""]
    for m in manifest.get("models") or []:
        card = Path(str(m.get("path", ""))).parent
        notes = [f"`{p}`" for p in sorted(card.glob("*.md"))] if card.is_dir() else []
        lines.append(f"- model {m.get('role')}: `{m.get('name')}` sha256 `{m.get('sha256')}`"
                     + (" (card, training sources and licenses: " + ", ".join(notes) + ")" if notes else ""))
    groups: dict[str, int] = Counter()
    for item in manifest.get("lists") or []:
        name = str(item.get("path", ""))
        groups[name.split("/")[0] if name.startswith("builtin:") else name] += 1
    for name, n in sorted(groups.items()):
        lines.append(f"- list `{name}` ({fmt_int(n)} file(s); sha256 of each in the source run's manifest.json)")
    return lines


def dataset_card(summary: dict[str, Any], manifest: dict[str, Any], src: Path) -> str:
    view = summary["view"]
    languages = sorted({row["language"] for row in summary["per_bin_language"] if row["language"] != "(none)"})
    n = summary["documents"]
    size = ("n<1K" if n < 1_000 else "1K<n<10K" if n < 10_000 else "10K<n<100K" if n < 100_000
            else "100K<n<1M" if n < 1_000_000 else "1M<n<10M" if n < 10_000_000 else "n>10M")
    front = ["---", f"license: {summary['license']}"]
    if summary["license"] == "other":  # web text: the terms of each source apply (see "Provenance and licenses")
        front.append("license_name: terms-of-the-crawled-sources")
    front += ["language:", *(f"- {json.dumps(lang)}" for lang in languages)] if languages else []
    pretty = f"toxsieve {view} export of run {summary['source']['run_id']}"
    front += [f"pretty_name: {json.dumps(pretty)}",
              "size_categories:", f"- {size}", "task_categories:", "- text-generation",
              "tags:", "- toxsieve", "- detoxification", f"- {view}",
              "configs:", "- config_name: default", "  data_files:", "  - split: train", "    path: data/*.parquet",
              "---", ""]
    src_info = summary["source"]
    purpose = {
        "dapt": "documents whose stored toxicity score is below the threshold, every other filter of the run "
                "applied: a corpus for domain-adaptive pretraining on the non-toxic part (Gururangan et al. 2020; "
                "Gehman et al. 2020).",
        "conditioned": "every document that passed the run's non-toxicity filters, with a control token from "
                       "its toxicity score bin (CTRL-style attribute conditioning, Keskar et al. 2019).",
        "toxic": "documents whose stored toxicity score is at or above the threshold, with their scores: "
                 "training data for anti-experts (DExperts, Liu et al. 2021) or classifiers. Contains offensive text.",
    }[view]
    thr = f"{fmt_score(summary['threshold'])}" + ("" if not summary["threshold_per_language"] else " (per language: "
          + ", ".join(f"{k} {fmt_score(v)}" for k, v in summary["threshold_per_language"].items()) + ")")
    body = [f"# toxsieve `{view}` export", "", f"The **{view}** view: {purpose}", "",
            "Built by `toxsieve export` from a run's stored scores; no model ran for it.", "",
            "## Source", "",
            f"- run id: `{src_info['run_id']}`",
            f"- run output: `{src_info['output']}`",
            f"- manifest.json sha256: `{src_info['manifest_sha256']}`",
            f"- toxsieve {src_info.get('toxsieve_version')}, git `{src_info.get('git_sha')}`", "",
            "## Selection", "", f"- threshold: {thr}"]
    if summary["cascade_threshold"] is not None:
        body.append(f"- documents decided by the cascade's second model: threshold {fmt_score(summary['cascade_threshold'])}")
    if summary["bins"]:
        b = summary["bins"]
        body.append("- bins: " + "; ".join(b["description"]) + "; no score: "
                    + ("`<|toxicity:unknown|>`" if b["unknown"] == "token" else "left out"))
        body.append("- control token in the `control_token` column" + (", also prepended to `text` (no separator)"
                                                                         if b["prepended"] else ""))
    if summary["languages"]:
        body.append("- languages: " + ", ".join(summary["languages"]))
    body.append("- documents without a toxicity score (a language the model does not support): "
                + ("left out of this view" if view != "conditioned" or (summary["bins"] or {}).get("unknown") == "exclude"
                   else "kept, with `<|toxicity:unknown|>`"))
    body += ["", "## Counts", "",
             f"{fmt_int(summary['documents'])} documents, about {fmt_int(summary['token_estimate'])} tokens "
             f"(estimate: {summary['token_estimate_rule']}; scripts without spaces, such as Chinese, take more "
             "tokens per character, so read per-language figures as rough).", ""]
    if summary["from_removed"]:
        body += [f"{fmt_int(summary['from_removed'])} of them were removed for toxicity by the source run "
                 "(filter mode); their full text came from its removed/.", ""]
    body += ["| bin | language | documents | token estimate |", "|---|---|---:|---:|"]
    body += [f"| {r['bin']} | {r['language']} | {fmt_int(r['documents'])} | {fmt_int(r['token_estimate'])} |"
             for r in summary["per_bin_language"]]
    if summary["excluded"]:
        body += ["", "Left out:", ""]
        body += [f"- {why}: {fmt_int(k)}" for why, k in summary["excluded"].items()]
    if summary["unscored_by_language"]:
        body += ["", "Documents without a toxicity score, by language: " + ", ".join(
            f"{k} {fmt_int(v)}" for k, v in summary["unscored_by_language"].items())]
    total = sum(summary["score_histogram"]["counts"])
    body += ["", "## Score distribution", "", "![Toxicity scores of the exported documents](score_histogram.svg)", "",
             f"{fmt_int(total)} scored documents in {SCORE_BINS} bins of width {fmt_score(1 / SCORE_BINS)}; "
             f"{fmt_share(sum(summary['score_histogram']['counts'][SCORE_BINS // 2:]), total)} at or above 0.5.", "",
             "## Files", "", *(f"- `{f}`" for f in summary["files"]), "",
             "Columns: `doc_id`, `text`, `url`, `crawl_date`, `language`, `toxicity_score` (stored, max over chunks; "
             "null without a score), `toxicity_threshold`, "
             + ("`toxicity_bin`, `control_token`, " if view == "conditioned" else "")
             + "`token_estimate`, `source_path`, `source_offset`. Machine-readable summary: `export.json`.", "",
             "## Provenance and licenses", "", *_provenance(manifest, src), ""]
    return "\n".join(front + body)
