"""The length floor and token counts through `toxsieve run`: the same passage in three languages."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.unit.test_declared_stages import PASSAGES
from toxsieve.pipelines.cli.main import main

pytestmark = pytest.mark.e2e

FAST = "toxicity: {enabled: false}\nnear_dedup: {enabled: false}\n"


def _run(tmp_path: Path, name: str, config: str) -> dict:
    src = tmp_path / "passages.jsonl"
    src.write_text("".join(json.dumps({"id": lang, "text": text}, ensure_ascii=False) + "\n"
                           for lang, text in PASSAGES.items()), encoding="utf-8")
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(FAST + config, encoding="utf-8")
    out = tmp_path / name
    assert main(["run", "--input", str(src), "--output", str(out), "--config", str(cfg), "--quiet"]) == 0
    return {r["doc_id"]: r for r in pq.read_table(out / "metadata").to_pylist()} | {
        "_stats": json.loads((out / "stats.json").read_text())}


def test_english_german_and_chinese_passages_are_kept_alike_and_removed_alike(tmp_path: Path) -> None:
    rows = _run(tmp_path, "default", "")
    stats = rows.pop("_stats")
    assert {lang: (r["language"], r["decision"]) for lang, r in rows.items()} == {
        lang: (lang, "kept") for lang in PASSAGES}
    # every kept document has a token estimate, summed per language in stats.json
    assert stats["tokens"]["kept_by_language"] == {lang: r["length_tokens"] for lang, r in rows.items()}
    assert stats["tokens"]["kept_total"] == sum(r["length_tokens"] for r in rows.values()) > 0

    rows = _run(tmp_path, "raised", "quality: {length: {min_words: 100}}\n")
    stats = rows.pop("_stats")
    assert {lang: r["reason"] for lang, r in rows.items()} == dict.fromkeys(PASSAGES, "below_length_floor")
    assert stats["removed_by_stage"]["length"] == {"below_length_floor": 3}

    # a per-language override moves only that language
    rows = _run(tmp_path, "zh_only", "quality: {length: {min_words_per_language: {zh: 100}}}\n")
    rows.pop("_stats")
    assert {lang: r["decision"] for lang, r in rows.items()} == {"en": "kept", "de": "kept", "zh": "removed"}
