"""IdentifyLanguage's decision rule: allowed languages and per-language confidence floors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from toxsieve.pipelines.config import LanguageConfig
from toxsieve.pipelines.document import Document, Removal
from toxsieve.schemas import Reason, Stage

# The metadata/ columns decide_language reads (toxsieve redecide passes the stored ones).
SIGNALS = ("language", "language_score")


def decide_language(signals: Mapping[str, Any], cfg: LanguageConfig) -> Removal | None:
    """The one language rule, on the stored signals ``language`` and ``language_score``."""
    language, score = signals["language"], signals["language_score"]
    if cfg.allowed and language not in cfg.allowed:
        return Removal(Stage.LANGUAGE, Reason.LANGUAGE_NOT_ALLOWED, score=score, matched=(language,),
                       detail=f"language {language} not in language.allowed")
    threshold = cfg.threshold_for(language)
    if score < threshold:
        return Removal(Stage.LANGUAGE, Reason.LOW_LANGUAGE_CONFIDENCE, score=score, threshold=threshold,
                       matched=(language,), detail=f"{language} with probability {score:.3f} < {threshold:.3f}")
    return None


def apply_language(doc: Document, language: str, score: float, cfg: LanguageConfig) -> Document:
    """Annotate ``doc`` with its language; remove it if the language or the confidence fails the config."""
    doc = replace(doc, language=language, language_score=score)
    removal = decide_language({"language": language, "language_score": score}, cfg)
    return doc if removal is None else doc.removed(removal)
