"""`toxsieve run` with near-duplicates planted in the input: removed/, metadata/ and stats.json."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from toxsieve.pipelines.cli.main import main

pytestmark = pytest.mark.e2e

_SUBJECTS = ["The council", "Our neighbour", "The small bakery", "A local teacher", "The city library",
             "My grandmother", "The football club", "A young engineer", "The museum", "The village school"]
_VERBS = ["announced", "repaired", "painted", "visited", "reviewed", "celebrated", "described", "organised"]
_OBJECTS = ["the old bridge", "a new garden", "the summer festival", "the reading room", "the harbour wall",
            "a charity concert", "the bus timetable", "the community kitchen", "the river path"]
_TAILS = ["after a long winter", "with help from volunteers", "before the holidays", "on a rainy Tuesday",
          "to the surprise of everyone", "for the third time this year", "despite the tight budget"]


def _sentences(rng: random.Random, n: int) -> list[str]:
    return [f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} {rng.choice(_TAILS)}."
            for _ in range(n)]


def test_near_duplicates_are_removed_with_cluster_metadata_and_audit_evidence(tmp_path: Path) -> None:
    rng = random.Random(4)
    base = _sentences(rng, 40)
    variant = list(base)
    variant[17] = "An entirely different sentence about quantum physics appears in this copy of the page."
    other = _sentences(random.Random(99), 40)
    records = [
        {"id": "page-b", "text": " ".join(variant)},
        {"id": "page-a", "text": " ".join(base)},
        {"id": "page-c", "text": " ".join(base)},  # exact copy: exact dedup removes it first
        {"id": "page-d", "text": " ".join(other)},
    ]
    src = tmp_path / "in"
    src.mkdir()
    (src / "docs.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    out = tmp_path / "out"
    assert main(["run", "--input", str(src / "*.jsonl"), "--output", str(out), "--quiet", "--run-id", "nd"]) == 0

    stats = json.loads((out / "stats.json").read_text())
    assert stats["removed_by_stage"]["near_dedup"] == {"near_duplicate": 1}
    assert stats["removed_by_stage"]["exact_dedup"] == {"exact_duplicate": 1}
    assert stats["kept"] == 2 and stats["conservation"]["ok"] is True
    (audit,) = [r for r in pq.read_table(out / "removed").to_pylist() if r["stage"] == "near_dedup"]
    assert (audit["doc_id"], audit["reason"], audit["duplicate_of"]) == ("page-b", "near_duplicate", "page-a")
    assert audit["threshold"] == 0.8 and 0.8 <= audit["score"] < 1.0 and "page-a" in audit["detail"]
    meta = {r["doc_id"]: r for r in pq.read_table(out / "metadata").to_pylist()}
    assert (meta["page-b"]["near_dup_cluster"], meta["page-b"]["near_dup_cluster_size"]) == ("page-a", 2)
    assert meta["page-b"]["near_dup_similarity"] == pytest.approx(audit["score"])
    assert (meta["page-a"]["near_dup_cluster"], meta["page-a"]["near_dup_cluster_size"],
            meta["page-a"]["near_dup_similarity"]) == ("page-a", 2, 1.0)
    assert (meta["page-d"]["near_dup_cluster"], meta["page-d"]["near_dup_cluster_size"]) == ("page-d", 1)
    assert meta["page-c"]["near_dup_cluster"] is None  # removed before the stage
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["near_dedup"]["num_perm"] == 256
