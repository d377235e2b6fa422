"""Output schemas against their golden snapshots, and the stage/reason enums stored in them.

A deliberate schema change: edit ``schemas/``, bump ``SCHEMA_VERSION``, then run

    TOXSIEVE_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_schemas.py

and commit the rewritten ``tests/golden/schemas/*.json`` with the change.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pytest

from toxsieve.schemas import SCHEMA_VERSION, SCHEMAS, Decision, Reason, Stage, schema_to_dict
from toxsieve.schemas.enums import REASONS_BY_STAGE

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "schemas"
UPDATE = os.environ.get("TOXSIEVE_UPDATE_GOLDEN") == "1"
HOW_TO_UPDATE = (
    "If the change is deliberate: bump SCHEMA_VERSION in schemas/v1.py, run "
    "`TOXSIEVE_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_schemas.py` "
    "and commit tests/golden/schemas/ with the change."
)


def _version(snapshot: dict) -> str:
    return snapshot["metadata"]["toxsieve.schema_version"]


def test_every_output_has_a_golden_snapshot() -> None:
    assert sorted(SCHEMAS) == ["dead_letter", "kept", "metadata", "removed"]
    assert sorted(p.stem for p in GOLDEN.glob("*.json")) == sorted(SCHEMAS)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_schema_matches_golden_snapshot(name: str) -> None:
    current = schema_to_dict(SCHEMAS[name])
    path = GOLDEN / f"{name}.json"
    golden = json.loads(path.read_text(encoding="utf-8"))
    if current == golden:
        return
    if UPDATE:
        assert _version(current) != _version(golden), (
            f"schema '{name}' changed but SCHEMA_VERSION is still {_version(golden)}: bump it first")
        path.write_text(json.dumps(current, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return
    golden_fields = {f["name"]: f for f in golden["fields"]}
    current_fields = {f["name"]: f for f in current["fields"]}
    changes = [f"- {n}" for n in golden_fields if n not in current_fields]
    changes += [f"+ {n}" for n in current_fields if n not in golden_fields]
    changes += [f"~ {n}: {golden_fields[n]} -> {current_fields[n]}" for n in golden_fields
                if n in current_fields and golden_fields[n] != current_fields[n]]
    if [f["name"] for f in golden["fields"]] != [f["name"] for f in current["fields"]] and not changes:
        changes.append("column order changed")
    if golden["metadata"] != current["metadata"]:
        changes.append(f"metadata {golden['metadata']} -> {current['metadata']}")
    pytest.fail(f"schema '{name}' differs from {path}:\n  " + "\n  ".join(changes) + f"\n{HOW_TO_UPDATE}")


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_schemas_carry_name_and_version(name: str) -> None:
    meta = SCHEMAS[name].metadata
    assert meta[b"toxsieve.schema_version"] == str(SCHEMA_VERSION).encode()
    assert meta[b"toxsieve.schema"]
    assert len({s.metadata[b"toxsieve.schema"] for s in SCHEMAS.values()}) == len(SCHEMAS)


def test_schema_to_dict_is_json_and_complete() -> None:
    for schema in SCHEMAS.values():
        described = json.loads(json.dumps(schema_to_dict(schema)))
        assert [f["name"] for f in described["fields"]] == schema.names
        assert all(isinstance(f["nullable"], bool) for f in described["fields"])


def test_every_row_is_traceable_to_its_source() -> None:
    for name, schema in SCHEMAS.items():
        for column in ("source_path", "source_offset", "source_format"):
            assert not schema.field(column).nullable, (name, column)


def test_documents_are_keyed_by_a_non_null_doc_id() -> None:
    for name in ("kept", "metadata", "removed"):
        assert SCHEMAS[name].field("doc_id").type == pa.string()
        assert not SCHEMAS[name].field("doc_id").nullable


# --- enums ------------------------------------------------------------------


def test_every_reason_belongs_to_exactly_one_stage() -> None:
    owners = {reason: [stage for stage, reasons in REASONS_BY_STAGE.items() if reason in reasons]
              for reason in Reason}
    assert {reason: len(stages) for reason, stages in owners.items()} == dict.fromkeys(Reason, 1)
    listed = [reason for reasons in REASONS_BY_STAGE.values() for reason in reasons]
    assert len(listed) == len(set(listed)) == len(Reason)


def test_every_stage_has_reasons() -> None:
    assert set(REASONS_BY_STAGE) == set(Stage)
    assert all(REASONS_BY_STAGE[stage] for stage in Stage)


# Values already written by earlier runs: a later release may add to these, never rename or drop.
RELEASED_STAGES = {"READ": "read", "EXTRACT": "extract", "LANGUAGE": "language", "EXACT_DEDUP": "exact_dedup",
                   "WORD_BLOCKLIST": "word_blocklist"}  # word_blocklist: declared since schema 3, same value
RELEASED_REASONS = {
    "NOT_HTML": "not_html", "HTTP_STATUS": "http_status", "EMPTY_TEXT": "empty_text", "TOO_SHORT": "too_short",
    "LANGUAGE_NOT_ALLOWED": "language_not_allowed", "LOW_LANGUAGE_CONFIDENCE": "low_language_confidence",
    "EXACT_DUPLICATE": "exact_duplicate", "WORD_BLOCKLIST": "word_blocklist",
}


def test_released_enum_values_are_stable() -> None:
    # These strings are stored in Parquet (stage, reason, decision columns); renaming one breaks
    # every query over earlier runs.
    stages = {s.name: s.value for s in Stage}
    reasons = {r.name: r.value for r in Reason}
    assert {k: stages.get(k) for k in RELEASED_STAGES} == RELEASED_STAGES
    assert {k: reasons.get(k) for k in RELEASED_REASONS} == RELEASED_REASONS
    assert {d.value for d in Decision} == {"kept", "removed"}


def test_enum_values_are_unique_snake_case() -> None:
    for enum in (Stage, Reason, Decision):
        values = [m.value for m in enum]
        assert len(values) == len(set(values))
        assert all(v.isascii() and v == v.lower() and " " not in v for v in values)


def test_funnel_order_is_the_pipeline_order() -> None:
    # REASONS_BY_STAGE orders the funnel in stats; Stage is declared in pipeline order.
    assert list(REASONS_BY_STAGE) == list(Stage)
    assert list(REASONS_BY_STAGE)[0] == Stage.READ
