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


def test_decisions_do_not_depend_on_how_keys_are_partitioned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The packed keys are shuffled in groups (one per ~16 MiB of input) and the band keys in up to 8
    shuffles: one group and five must give the same tables, on near- and exact duplicates across files."""
    from toxsieve.pipelines.runtime import pipeline

    rng = random.Random(7)
    pages = [" ".join(_sentences(rng, 30)) for _ in range(40)]
    src = tmp_path / "in"
    src.mkdir()
    for f in range(3):
        records = []
        for i, page in enumerate(pages):
            words = page.split()
            if (i + f) % 3 == 0:  # a near-duplicate of the copies in the two other files: a word changed
                words[rng.randrange(len(words))] = "zebra"
            records.append({"id": f"f{f}-{i}", "text": " ".join(words)})
        (src / f"part-{f}.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    tables = []
    for n in (1, 5):
        monkeypatch.setattr(pipeline, "key_partitions", lambda _bytes, n=n: n)
        out = tmp_path / f"out{n}"
        assert main(["run", "--input", str(src / "*.jsonl"), "--output", str(out), "--quiet", "--run-id", "p"]) == 0
        stats = json.loads((out / "stats.json").read_text())
        tables.append({name: pq.read_table(out / name).to_pylist() for name in ("kept", "removed", "metadata")})
        assert stats["removed_by_stage"]["near_dedup"]["near_duplicate"] > 10
        assert stats["removed_by_stage"]["exact_dedup"]["exact_duplicate"] > 10
    assert tables[0] == tables[1]
