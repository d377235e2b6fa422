"""Stages and reason codes. Their string values are stored in Parquet and are part of the schema."""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    """The pipeline stage that made a decision about a document."""

    READ = "read"
    EXTRACT = "extract"
    LANGUAGE = "language"
    EXACT_DEDUP = "exact_dedup"


class Reason(StrEnum):
    """Why a document was removed. One reason per removal; the evidence goes in typed columns."""

    NOT_HTML = "not_html"  # WARC response whose Content-Type is not HTML/XHTML
    HTTP_STATUS = "http_status"  # WARC response with a status other than 200
    EMPTY_TEXT = "empty_text"  # nothing left after extraction / normalisation
    TOO_SHORT = "too_short"  # normalised text below extract.min_chars
    LANGUAGE_NOT_ALLOWED = "language_not_allowed"
    LOW_LANGUAGE_CONFIDENCE = "low_language_confidence"
    EXACT_DUPLICATE = "exact_duplicate"


# Which stage may emit which reason: used to validate audit records and to order the funnel.
REASONS_BY_STAGE: dict[Stage, tuple[Reason, ...]] = {
    Stage.READ: (Reason.NOT_HTML, Reason.HTTP_STATUS),
    Stage.EXTRACT: (Reason.EMPTY_TEXT, Reason.TOO_SHORT),
    Stage.LANGUAGE: (Reason.LANGUAGE_NOT_ALLOWED, Reason.LOW_LANGUAGE_CONFIDENCE),
    Stage.EXACT_DEDUP: (Reason.EXACT_DUPLICATE,),
}


class Decision(StrEnum):
    KEPT = "kept"
    REMOVED = "removed"
