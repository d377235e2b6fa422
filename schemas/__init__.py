"""Versioned pyarrow schemas for everything toxsieve writes, and the enums stored in them.

A change to any schema here is deliberate: bump its version and update the golden
snapshot in ``tests/golden/``.
"""

from toxsieve.schemas.enums import Decision, Reason, Stage
from toxsieve.schemas.v1 import (
    AUDIT_SCHEMA,
    CURATED_SCHEMA,
    DEAD_LETTER_SCHEMA,
    METADATA_SCHEMA,
    SCHEMA_VERSION,
    SCHEMAS,
    schema_to_dict,
)

__all__ = [
    "AUDIT_SCHEMA",
    "CURATED_SCHEMA",
    "DEAD_LETTER_SCHEMA",
    "METADATA_SCHEMA",
    "SCHEMAS",
    "SCHEMA_VERSION",
    "Decision",
    "Reason",
    "Stage",
    "schema_to_dict",
]
