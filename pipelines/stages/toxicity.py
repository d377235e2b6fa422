"""ScoreToxicity's decision rule: annotate every document, remove at or above the threshold in filter mode."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

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


# The metadata/ columns decide_toxicity reads (toxsieve redecide passes the stored ones).
SIGNALS = ("language", "toxicity_score", "toxicity_label_scores", "toxicity_model", "toxicity_fast_score",
           "toxicity_n_chunks", "toxicity_supported")


def stored_score(value: float) -> float:
    """A score as the decision compares it: rounded to SCORE_DECIMALS (float32 storage keeps them)."""
    return round(float(value), SCORE_DECIMALS)


def flagged_at(score: float, threshold: float) -> bool:
    """The toxicity rule's comparison, the one copy of it: a score as stored flags at or above the threshold."""
    return stored_score(score) >= threshold


def toxicity_threshold(language: str | None, fast_score: float | None, cfg: ToxicityConfig) -> float:
    """The threshold a document is decided at: a cascade's second model decided the documents that carry
    a fast score, at ``cascade_threshold``; every other document at its language's threshold."""
    return cfg.cascade_threshold if fast_score is not None else cfg.threshold_for(language)


def stored_toxic_labels(label_scores: Mapping[str, float], cfg: ToxicityConfig) -> tuple[str, ...]:
    """The toxic labels of a stored score table: the configured ones, else every label but a clean one."""
    from toxsieve.classifiers.transformer import default_toxic_labels

    return tuple(cfg.toxic_labels) or default_toxic_labels(list(label_scores))


def toxicity_flag(signals: Mapping[str, Any], cfg: ToxicityConfig) -> tuple[float | None, bool | None]:
    """(threshold, flagged) of one document from its stored signals; (None, None) when it has no score."""
    if signals["toxicity_score"] is None or signals.get("toxicity_supported") is False:
        return None, None
    threshold = toxicity_threshold(signals["language"], signals["toxicity_fast_score"], cfg)
    return threshold, flagged_at(signals["toxicity_score"], threshold)


def decide_toxicity(signals: Mapping[str, Any], cfg: ToxicityConfig,
                    toxic_labels: Sequence[str] | None = None) -> Removal | None:
    """The one toxicity rule, on the stored signals (``SIGNALS``): the removal a flagged document gets
    (the caller applies it in filter mode only); None when unflagged or unscored (no model for its
    language). ``toxic_labels`` name the top label; default: ``stored_toxic_labels``."""
    threshold, flagged = toxicity_flag(signals, cfg)
    if not flagged or threshold is None:
        return None
    score = stored_score(signals["toxicity_score"])
    labels = {entry[0]: entry[1] for entry in _label_pairs(signals["toxicity_label_scores"])}
    top = top_toxic_label(labels, toxic_labels if toxic_labels is not None else stored_toxic_labels(labels, cfg))
    return Removal(
        Stage.TOXICITY, Reason.TOXICITY_ABOVE_THRESHOLD, score=score, threshold=threshold, matched=(top,),
        detail=(f"{signals['toxicity_model']}: {top}={score:.3f} >= {threshold:.3f} "
                f"(max over {signals['toxicity_n_chunks']} chunk(s))"),
    )


def _label_pairs(stored: Any) -> list[tuple[str, float]]:
    """(label, score) pairs from a Document's tuple or metadata/'s list of {label, score}."""
    out = []
    for entry in stored or ():
        label, value = (entry["label"], entry["score"]) if isinstance(entry, Mapping) else entry
        out.append((label, stored_score(value)))
    return out


def apply_toxicity(doc: Document, label_scores: Mapping[str, float], toxic_labels: Sequence[str],
                   model: str, model_sha256: str, n_chunks: int, cfg: ToxicityConfig,
                   fast_score: float | None = None) -> Document:
    """Record the scores on ``doc``; in filter mode remove it when the score reaches the threshold."""
    score = stored_score(toxic_score(label_scores, toxic_labels))
    doc = replace(
        doc,
        toxicity_score=score,
        toxicity_label_scores=tuple((label, stored_score(v)) for label, v in label_scores.items()),
        toxicity_model=model, toxicity_model_sha256=model_sha256,
        toxicity_fast_score=fast_score, toxicity_n_chunks=n_chunks, toxicity_supported=True,
    )
    signals = {name: getattr(doc, name) for name in SIGNALS}
    threshold, flagged = toxicity_flag(signals, cfg)
    doc = replace(doc, toxicity_threshold=threshold, toxicity_flagged=flagged)
    removal = decide_toxicity(signals, cfg, toxic_labels)
    return doc if removal is None or cfg.mode != "filter" else doc.removed(removal)


def mark_unsupported(doc: Document) -> Document:
    """No model for the document's language: no score, no flag, never removed for toxicity."""
    return replace(doc, toxicity_supported=False)


def in_cascade_band(score: float, cfg: ToxicityConfig) -> bool:
    """True when the fast model is unsure and the cascade model should decide."""
    return cfg.cascade_low <= score <= cfg.cascade_high
