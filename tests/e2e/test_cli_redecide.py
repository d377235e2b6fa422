"""`toxsieve redecide` gives what a fresh run at the new settings gives, per stage, without running a
model or reading the input; it refuses what the stored signals cannot decide."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from tests.conftest import CRAWL, DEMO_CONFIG, run_on_sample, warc_record
from toxsieve.pipelines.cli.main import main
from toxsieve.pipelines.config import merge_config, parse_overrides

pytestmark = pytest.mark.e2e

# The source run: the demo config with the word lists and Gopher's quality rules in annotate mode
# (signals on every document, nothing removed), toxicity in annotate mode (the default), and removed
# texts stored whole (so that a re-decision may restore what a run removed).
SOURCE = ["blocklists.words.mode=annotate", "quality.gopher_quality.mode=annotate", "output.removed_text=full",
          "quality.gopher_repetition.enabled=true", "quality.gopher_repetition.mode=annotate"]
CASES = {  # stage -> the --set settings redecide gets and a fresh run is configured with
    "language": ["language.min_score=0.7"],
    "word_blocklist": ["blocklists.words.mode=filter", "blocklists.words.policy.min_distinct_terms=3"],
    "length": ["quality.length.min_words=60", "quality.length.min_words_per_language.zh=40"],
    "gopher_repetition": ["quality.gopher_repetition.mode=filter", "quality.gopher_repetition.max_dup_line_frac=0.2"],
    "gopher_quality": ["quality.gopher_quality.mode=filter", "quality.gopher_quality.min_alpha_words_frac=0.85"],
    "c4": ["quality.c4.min_sentences=2"],  # annotate mode (its filter mode rewrites the text): the flags change
    "fineweb": ["quality.fineweb.mode=filter", "quality.fineweb.min_line_punct_frac=0.15"],
    "toxicity": ["toxicity.mode=filter", "toxicity.threshold=0.95", "toxicity.threshold_per_language.zh=0.5"],
}
FLAGS_ONLY = {"c4"}  # cases whose new settings change flags, not removals


def _config(tmp: Path, name: str, settings: list[str]) -> Path:
    raw = merge_config(yaml.safe_load(DEMO_CONFIG.read_text()), parse_overrides(settings))
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _run(out: Path, config: Path) -> None:
    assert run_on_sample(out, config) == 0


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("redecide")
    out = {"tmp": tmp, "source": tmp / "source"}
    _run(out["source"], _config(tmp, "source", SOURCE))
    for stage, settings in CASES.items():
        out[stage] = tmp / f"fresh-{stage}"
        _run(out[stage], _config(tmp, stage, SOURCE + settings))
    return out


def _table(out: Path, name: str) -> list[dict]:
    rows = pq.read_table(out / name).to_pylist()
    for row in rows:
        row.pop("run_id", None)
        if name == "removed" and row["score"] is not None:
            # the measured value: a language score is stored as float32, the live run compared the float64
            row["score"] = round(row["score"], 6)
    return sorted(rows, key=lambda r: (r.get("doc_id") or "", r["source_path"], r["source_offset"]))


@pytest.mark.parametrize("stage", sorted(CASES))
def test_redecide_equals_a_fresh_run(runs: dict[str, Path], stage: str, capsys: pytest.CaptureFixture[str]) -> None:
    new = runs["tmp"] / f"redecided-{stage}"
    argv = ["redecide", str(runs["source"]), "--output", str(new), "--run-id", "r"]
    for setting in CASES[stage]:
        argv += ["--set", setting]
    assert main(argv) == 0
    assert "without running a model" in capsys.readouterr().out
    fresh = runs[stage]
    for name in ("kept", "metadata", "removed", "dead_letter"):
        assert _table(new, name) == _table(fresh, name), name
    stats_new, stats_fresh = (json.loads((d / "stats.json").read_text()) for d in (new, fresh))
    for key in ("read", "kept", "removed", "dead_lettered", "removed_by_stage", "languages", "funnel",
                "flagged_by_stage", "tokens", "toxicity"):
        assert stats_new[key] == stats_fresh[key], key
    assert stats_new["conservation"]["ok"]
    if stage in FLAGS_ONLY:
        stats_src = json.loads((runs["source"] / "stats.json").read_text())
        assert stats_new["flagged_by_stage"][stage] != stats_src["flagged_by_stage"][stage]
        assert stats_new["redecide"]["newly_removed"] == 0
    else:
        assert stats_new["removed_by_stage"][stage], f"the new {stage} settings remove something on the sample"
        assert stats_new["redecide"]["newly_removed"] > 0 and stats_new["redecide"]["restored"] == 0
    manifest = json.loads((new / "manifest.json").read_text())
    assert manifest["derived_from"]["run_id"] == "source" and manifest["derived_from"]["models_run"] is False
    assert sorted(manifest["derived_from"]["changed"]) == sorted(s.split("=")[0] for s in CASES[stage])


def test_restoring_what_the_last_stage_removed(runs: dict[str, Path]) -> None:
    """Back from the toxicity-filtered run to annotate mode (settings from a file and --set, a mapping
    value replacing the per-language table): the source run again, with the removed texts restored."""
    overlay = runs["tmp"] / "overlay.yaml"
    overlay.write_text("toxicity:\n  mode: annotate\n  threshold: 0.5\n")
    back = runs["tmp"] / "back"
    assert main(["redecide", str(runs["toxicity"]), "--output", str(back), "--config", str(overlay),
                 "--set", "toxicity.threshold=0.9", "--set", "toxicity.threshold_per_language={}"]) == 0
    for name in ("kept", "metadata", "removed"):
        assert _table(back, name) == _table(runs["source"], name), name
    stats = json.loads((back / "stats.json").read_text())
    assert stats["redecide"]["restored"] == json.loads((runs["toxicity"] / "stats.json").read_text())[
        "removed_by_stage"]["toxicity"]["toxicity_above_threshold"] > 0
    assert json.loads((back / "manifest.json").read_text())["config"] == json.loads(
        (runs["source"] / "manifest.json").read_text())["config"]


@pytest.mark.parametrize(("source", "settings", "message"), [
    # loosening language when the documents it removed never got word-list, quality or toxicity signals
    ("language", ["language.min_score=0.5"], "would reach word_blocklist (source: language)"),
    # disabling a stage that removed documents in front of later stages
    ("gopher_quality", ["quality.gopher_quality.enabled=false"], "(source: gopher_quality)"),
    ("source", ["toxicity.model=minilm"], "toxicity.model changed"),
    ("source", ["near_dedup.threshold=0.5", "exact_dedup.enabled=false"], "exact_dedup.enabled, near_dedup.threshold"),
    ("source", ["quality.fineweb.short_line_length=10"], "quality.fineweb.short_line_length changed"),
    ("source", ["language.model_path=/x.ftz"], "language.model_path changed"),
    # every later stage reads the language: LID cannot be switched off (annotate mode removes nothing)
    ("source", ["language.enabled=false"], "'language.enabled' cannot be false"),
    ("source", ["output.removed_text=truncated"], "output.removed_text changed"),
    ("source", ["blocklists.words.lists=[/tmp/words]"], "blocklists.words.lists changed"),
    ("source", ["blocklists.url.lists=[/tmp/ut1]"], "blocklists.url.lists changed"),
    ("source", ["quality.c4.mode=filter"], "rewrites the text"),
    ("source", ["language.min_scor=0.7"], "unknown config key 'language.min_scor' (did you mean 'language.min_score'?)"),
    ("source", ["language.min_score=1.5"], "language.min_score' must be between 0 and 1"),
    ("source", ["language.min_score"], "--set expects KEY=VALUE"),
    ("source", ["gopher_repetition.enabled=true"], "unknown config key 'gopher_repetition'"),
])
def test_what_stored_signals_cannot_decide_is_refused(runs: dict[str, Path], source: str, settings: list[str],
                                                      message: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = runs["tmp"] / "refused"
    argv = ["redecide", str(runs[source]), "--output", str(out)]
    for setting in settings:
        argv += ["--set", setting]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()  # refused before anything is written


def test_a_run_of_another_schema_version_is_refused(runs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    # a run written by an earlier toxsieve has other metadata/ columns (schema 2: no word_blocklist_flag)
    old = runs["tmp"] / "schema-2"
    shutil.copytree(runs["source"], old)
    manifest = json.loads((old / "manifest.json").read_text())
    for entry in manifest["schemas"].values():
        entry["version"] = 2
    (old / "manifest.json").write_text(json.dumps(manifest))
    out = runs["tmp"] / "from-schema-2"
    assert main(["redecide", str(old), "--output", str(out), "--set", "language.min_score=0.8"]) == 2
    assert "written with output schema version 2" in capsys.readouterr().err
    assert not out.exists()


def test_tightening_a_filtered_run_is_always_possible(runs: dict[str, Path]) -> None:
    out = runs["tmp"] / "tighter"
    assert main(["redecide", str(runs["language"]), "--output", str(out), "--set", "language.min_score=0.8",
                 "--set", "quality.length.min_words=60"]) == 0
    stats = json.loads((out / "stats.json").read_text())
    before = json.loads((runs["language"] / "stats.json").read_text())
    assert stats["conservation"]["ok"] and stats["kept"] < before["kept"]
    assert stats["removed_by_stage"]["length"]["below_length_floor"] > before["removed_by_stage"]["length"].get(
        "below_length_floor", 0)


def test_removing_part_of_a_near_duplicate_cluster_is_refused(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """A page and a shorter copy of it are near-duplicates; a length floor between their lengths would
    remove one before near-dedup, and which one near-dedup keeps then is not in the stored signals."""
    import gzip

    shard = CRAWL / "dolma_tests" / "multiple_files__cc_en_head-0091.jsonl.gz"
    with gzip.open(shard, "rt", encoding="utf-8") as fh:
        page = next(json.loads(line) for line in fh if 200 < len(json.loads(line)["text"].split()) < 400)
    words = page["text"].split(" ")
    docs = [{"id": "a-full", "text": page["text"], "metadata": {"url": page["id"]}},
            {"id": "b-short", "text": " ".join(words[:-15]), "metadata": {"url": page["id"] + "?copy"}}]
    data = tmp_path / "pages.jsonl"
    data.write_text("".join(json.dumps(d) + "\n" for d in docs))
    source = tmp_path / "source"
    assert main(["run", "--output", str(source), "--quiet", "--config", str(DEMO_CONFIG), "--input", str(data)]) == 0
    meta = {r["doc_id"]: r for r in pq.read_table(source / "metadata").to_pylist()}
    assert meta["a-full"]["near_dup_cluster_size"] == 2 and meta["b-short"]["stage"] == "near_dedup"
    floor = (meta["a-full"]["length_words"] + meta["b-short"]["length_words"]) / 2
    out = tmp_path / "new"
    assert main(["redecide", str(source), "--output", str(out), "--set", f"quality.length.min_words={floor}"]) == 2
    assert "1 document(s) in near-duplicate clusters" in capsys.readouterr().err and not out.exists()
    # a floor both pass, or one that removes both, leaves near-dedup's input as it was
    assert main(["redecide", str(source), "--output", str(out), "--set", "quality.length.min_words=40"]) == 0


def test_url_lists_in_annotate_mode_then_filter_equal_a_fresh_run(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """The URL lists run before extraction: in annotate mode a listed page is still extracted and goes on,
    with its match in metadata/; re-decided to filter mode it is removed as a fresh run removes it (never
    parsed: no text, no language); a filter run cannot be loosened (the removed pages were never parsed)."""
    src = tmp_path / "in"
    src.mkdir()
    prose = b"Plain prose about cooking pasta at home with fresh tomatoes and basil. " * 10
    pages = [("http://www.0-1avsex.com/page", b"first"), ("http://example.com/free-porn-videos", b"second"),
             ("http://cooking.example/", b"third")]
    warc = b"".join(warc_record(url, 200, "text/html", b"<html><body><p>" + prose + tag + b"</p></body></html>",
                                f"00000000-0000-0000-0000-00000000000{i}") for i, (url, tag) in enumerate(pages))
    (src / "urls.warc.gz").write_bytes(gzip.compress(warc))
    base = ["near_dedup.enabled=false", "output.removed_text=full"]

    def run(name: str, settings: list[str]) -> Path:
        cfg = tmp_path / f"{name}.yaml"
        cfg.write_text(yaml.safe_dump(merge_config({}, parse_overrides(base + settings))))
        out = tmp_path / name
        assert main(["run", "--output", str(out), "--quiet", "--run-id", name, "--config", str(cfg),
                     "--input", str(src / "*.warc.gz")]) == 0
        return out

    annotated = run("annotate", ["blocklists.url.mode=annotate"])
    fresh = run("filter", [])
    meta = {m["url"]: m for m in pq.read_table(annotated / "metadata").to_pylist()}
    assert [meta[url]["url_blocklist_flag"] for url, _ in pages] == ["url_blocklisted", "url_banned_word", None]
    assert meta[pages[0][0]]["url_blocklist_entry"] == "0-1avsex.com"
    assert meta[pages[1][0]]["url_banned_words"] == ["porn"]
    assert all(m["decision"] == "kept" and m["language"] == "en" and m["n_chars"] for m in meta.values())
    stats = json.loads((annotated / "stats.json").read_text())
    assert stats["flagged_by_stage"]["url_blocklist"] == {"url_blocklisted": 1, "url_banned_word": 1}
    removed = {r["url"]: r for r in pq.read_table(fresh / "removed").to_pylist()}
    assert sorted(removed) == sorted(url for url, _ in pages[:2])
    assert all(r["text"] is None and r["language"] is None for r in removed.values())  # never parsed

    new = tmp_path / "redecided"
    assert main(["redecide", str(annotated), "--output", str(new), "--run-id", "filter",
                 "--set", "blocklists.url.mode=filter"]) == 0
    for name in ("kept", "metadata", "removed", "dead_letter"):
        assert _table(new, name) == _table(fresh, name), name
    stats_new, stats_fresh = (json.loads((d / "stats.json").read_text()) for d in (new, fresh))
    for key in ("read", "kept", "removed", "removed_by_stage", "languages", "funnel", "flagged_by_stage", "tokens"):
        assert stats_new[key] == stats_fresh[key], key

    capsys.readouterr()
    refused = tmp_path / "refused"
    assert main(["redecide", str(fresh), "--output", str(refused), "--set", "blocklists.url.mode=annotate"]) == 2
    assert "2 document(s) would now reach a stage" in capsys.readouterr().err
    assert not refused.exists()
    # a stage that never ran in the source (Gopher repetition is off by default) has no signals
    assert main(["redecide", str(fresh), "--output", str(refused), "--set", "quality.gopher_repetition.enabled=true"]) == 2
    assert "would reach gopher_repetition (source: " in capsys.readouterr().err
    assert not refused.exists()
