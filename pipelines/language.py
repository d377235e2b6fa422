"""IdentifyLanguage's decision rule: allowed languages and per-language confidence floors."""

from __future__ import annotations

from dataclasses import replace

from toxsieve.pipelines.config import LanguageConfig
from toxsieve.pipelines.document import Document, Removal
from toxsieve.schemas import Reason, Stage


def apply_language(doc: Document, language: str, score: float, cfg: LanguageConfig) -> Document:
    """Annotate ``doc`` with its language; remove it if the language or the confidence fails the config."""
    doc = replace(doc, language=language, language_score=score)
    if cfg.allowed and language not in cfg.allowed:
        return doc.removed(Removal(Stage.LANGUAGE, Reason.LANGUAGE_NOT_ALLOWED, score=score,
                                   matched=(language,),
                                   detail=f"language {language} not in language.allowed"))
    threshold = cfg.threshold_for(language)
    if score < threshold:
        return doc.removed(Removal(Stage.LANGUAGE, Reason.LOW_LANGUAGE_CONFIDENCE, score=score,
                                   threshold=threshold, matched=(language,),
                                   detail=f"{language} with probability {score:.3f} < {threshold:.3f}"))
    return doc
