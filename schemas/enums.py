"""Stages and reason codes. Their string values are stored in Parquet and are part of the schema."""

from __future__ import annotations

from enum import StrEnum

from toxsieve.pipelines.stages import STAGES as _DECLARED


class Stage(StrEnum):
    """The pipeline stage that made a decision about a document."""

    READ = "read"
    EXTRACT = "extract"
    EXACT_DEDUP = "exact_dedup"
    NEAR_DEDUP = "near_dedup"
    TOXICITY = "toxicity"


class Reason(StrEnum):
    """Why a document was removed. One reason per removal; the evidence goes in typed columns."""

    NOT_HTML = "not_html"  # WARC response whose Content-Type is not HTML/XHTML
    HTTP_STATUS = "http_status"  # WARC response with a status other than 200
    EMPTY_TEXT = "empty_text"  # nothing left after extraction / normalisation
    TOO_SHORT = "too_short"  # normalised text below extract.min_chars
    EXACT_DUPLICATE = "exact_duplicate"
    NEAR_DUPLICATE = "near_duplicate"  # MinHash-LSH cluster member other than the keeper
    TOXICITY_ABOVE_THRESHOLD = "toxicity_above_threshold"
    # issue #10: per-record resource bounds (limits.* in the config; the bound is the threshold)
    BINARY_CONTENT = "binary_content"  # a body labelled HTML/text that is binary (magic bytes, control bytes)
    HTML_TOO_COMPLEX = "html_too_complex"  # past limits.max_html_bytes / max_html_depth / extract_timeout_s
    EXTRACTION_FAILED = "extraction_failed"  # the extractor raised or its process died on this page
    TEXT_TOO_LONG = "text_too_long"  # normalised text longer than limits.max_text_chars


# Which stage may emit which reason, in pipeline order: validates audit records, orders the funnel.
REASONS_BY_STAGE: dict[Stage, tuple[Reason, ...]] = {
    Stage.READ: (Reason.NOT_HTML, Reason.HTTP_STATUS, Reason.BINARY_CONTENT),
    Stage.EXTRACT: (Reason.EMPTY_TEXT, Reason.TOO_SHORT, Reason.HTML_TOO_COMPLEX, Reason.EXTRACTION_FAILED,
                    Reason.TEXT_TOO_LONG),
    Stage.EXACT_DEDUP: (Reason.EXACT_DUPLICATE,),
    Stage.NEAR_DEDUP: (Reason.NEAR_DUPLICATE,),
    Stage.TOXICITY: (Reason.TOXICITY_ABOVE_THRESHOLD,),
}

# Declared stages (pipelines/stages/) add their own stage and reason values: the enums above are
# rebuilt with them, each declared stage placed where the pipeline runs it (phase "url" after READ,
# phase "text", LANGUAGE first, after EXTRACT).
_AFTER = {"url": "read", "text": "extract"}
_stage_values = [s.value for s in Stage]
for _phase, _after in _AFTER.items():
    _at = _stage_values.index(_after) + 1
    _stage_values[_at:_at] = [d.name for d in _DECLARED if d.phase == _phase]
_reasons = {s.value: tuple(r.value for r in rs) for s, rs in REASONS_BY_STAGE.items()}
_reasons |= {d.name: tuple(r for r, _ in d.reasons) for d in _DECLARED}
Stage = StrEnum("Stage", [(v.upper(), v) for v in _stage_values], module=__name__)  # type: ignore[misc]
Stage.__doc__ = "The pipeline stage that made a decision about a document."
Reason = StrEnum(  # type: ignore[misc]
    "Reason", [(r.name, r.value) for r in Reason] + [(v.upper(), v) for d in _DECLARED for v, _ in d.reasons],
    module=__name__)
Reason.__doc__ = "Why a document was removed. One reason per removal; the evidence goes in typed columns."
REASONS_BY_STAGE = {Stage(v): tuple(Reason(r) for r in _reasons[v]) for v in _stage_values}


class Decision(StrEnum):
    KEPT = "kept"
    REMOVED = "removed"
