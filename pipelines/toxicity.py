"""ScoreToxicity's decision rule: annotate every document, remove at or above the threshold in filter mode."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from toxsieve.pipelines.config import ToxicityConfig
from toxsieve.pipelines.document import Document, Removal
from toxsieve.schemas import Reason, Stage

# Scores are compared with the threshold after rounding to this many decimals, which float32
# storage keeps: `toxsieve rethreshold` re-decides from the stored score exactly as here.
SCORE_DECIMALS = 6


def toxic_score(label_scores: Mapping[str, float], toxic_labels: Sequence[str]) -> float:
    return max((label_scores[label] for label in toxic_labels if label in label_scores), default=0.0)


def top_toxic_label(label_scores: Mapping[str, float], toxic_labels: Sequence[str]) -> str:
    """The toxic label with the highest score: what a toxicity removal names as matched."""
    return max((label for label in toxic_labels if label in label_scores), key=lambda lb: label_scores[lb],
               default="toxic")


def apply_toxicity(doc: Document, label_scores: Mapping[str, float], toxic_labels: Sequence[str],
                   model: str, model_sha256: str, n_chunks: int, cfg: ToxicityConfig,
                   fast_score: float | None = None) -> Document:
    """Record the scores on ``doc``; in filter mode remove it when the score reaches the threshold."""
    score = round(toxic_score(label_scores, toxic_labels), SCORE_DECIMALS)
    threshold = cfg.threshold_for(doc.language)
    flagged = score >= threshold
    doc = replace(
        doc,
        toxicity_score=score,
        toxicity_label_scores=tuple((label, round(float(v), SCORE_DECIMALS)) for label, v in label_scores.items()),
        toxicity_model=model, toxicity_model_sha256=model_sha256,
        toxicity_fast_score=fast_score, toxicity_threshold=threshold,
        toxicity_n_chunks=n_chunks, toxicity_flagged=flagged, toxicity_supported=True,
    )
    if not flagged or cfg.mode != "filter":
        return doc
    top = top_toxic_label(label_scores, toxic_labels)
    return doc.removed(Removal(
        Stage.TOXICITY, Reason.TOXICITY_ABOVE_THRESHOLD, score=score, threshold=threshold, matched=(top,),
        detail=f"{model}: {top}={score:.3f} >= {threshold:.3f} (max over {n_chunks} chunk(s))",
    ))


def mark_unsupported(doc: Document) -> Document:
    """No model for the document's language: no score, no flag, never removed for toxicity."""
    return replace(doc, toxicity_supported=False)


def in_cascade_band(score: float, cfg: ToxicityConfig) -> bool:
    """True when the fast model is unsure and the cascade model should decide."""
    return cfg.cascade_low <= score <= cfg.cascade_high
