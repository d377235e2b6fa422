"""Language identification: fastText LID-176 (the shipped ``lid.176.ftz`` or a user-given model) on the
extracted text; the allowed languages and per-language confidence floors decide.

The first stage of phase ``text``: its signals are the ``Document`` fields ``language`` and
``language_score`` (``Signal.field``), which every later stage reads (word lists and length floor per
language, toxicity routing) and which ``kept/`` and ``removed/`` carry too. In ``annotate`` mode a
document in a language that is not allowed, or below its floor, is flagged (``language_flag``) and
goes on. The model loads once per worker process (``load``).

Config ``language``: the key this stage had before stages were declared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from toxsieve.pipelines.stages.base import (
    DeclaredStage,
    Signal,
    StageConfig,
    check_mode,
    check_positive,
    check_unit,
    config_error,
)


@dataclass(frozen=True)
class LanguageConfig(StageConfig):
    enabled: bool = True  # must stay true: every later stage reads the language (annotate mode removes nothing)
    mode: str = "filter"  # filter | annotate (record the flag, remove nothing)
    model_path: str | None = None  # default: the shipped fastText lid.176.ftz
    allowed: tuple[str, ...] = ()  # ISO codes as LID-176 emits them; empty = all
    min_score: float = 0.5  # global floor on the top label's probability
    min_score_per_language: Mapping[str, float] = field(default_factory=dict)
    max_chars: int = 10_000  # LID reads at most this many characters of a document

    def validate(self, key: str = "language") -> None:
        if not self.enabled:
            raise config_error(
                f"config key '{key}.enabled' cannot be false: the word lists, the length floor, the quality "
                f"rules and toxicity routing all read the language; set {key}.mode: annotate to remove nothing")
        check_mode(key, self)
        check_unit(f"{key}.min_score", self.min_score)
        for lang, score in self.min_score_per_language.items():
            check_unit(f"{key}.min_score_per_language.{lang}", score)
        check_positive(f"{key}.max_chars", self.max_chars)

    def threshold_for(self, language: str) -> float:
        return self.min_score_per_language.get(language, self.min_score)


def load(cfg: LanguageConfig) -> Any:
    from toxsieve.classifiers.langid import FastTextLanguageIdentifier

    return FastTextLanguageIdentifier(cfg.model_path, cfg.max_chars)


def score(doc: Any, cfg: LanguageConfig, lid: Any) -> dict[str, Any]:
    """The top language and its probability (``und``/0.0 for a document without text)."""
    ((language, probability),) = lid.predict([doc.text or ""])
    return {"language": language, "score": float(probability)}


def decide(signals: Mapping[str, Any], cfg: LanguageConfig) -> Any:
    """The one language rule: the language must be allowed, then reach its confidence floor."""
    language, probability = signals["language"], signals["score"]
    if cfg.allowed and language not in cfg.allowed:
        return STAGE.remove("language_not_allowed", score=probability, matched=(language,),
                            detail=f"language {language} not in language.allowed")
    threshold = cfg.threshold_for(language)
    if probability < threshold:
        return STAGE.remove("low_language_confidence", score=probability, threshold=threshold, matched=(language,),
                            detail=f"{language} with probability {probability:.3f} < {threshold:.3f}")
    return None


STAGE = DeclaredStage(
    name="language",
    transform="IdentifyLanguage",
    doc=__doc__ or "",
    config=LanguageConfig,
    reasons=(
        ("language_not_allowed", "the detected language is not in language.allowed"),
        ("low_language_confidence", "the top language's probability is below its floor"),
    ),
    signals=(
        Signal("language", pa.string(), "LID-176 code of the top language (und: no text)", nullable=True,
               column="language", field=True),
        Signal("score", pa.float32(), "probability of the top language", column="language_score", field=True),
    ),
    score=score,
    decide=decide,
    load=load,
    measure=("enabled", "model_path", "max_chars"),  # the model and what it reads change the stored language
    section="language",
)
