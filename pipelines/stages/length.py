"""The length floor, after language ID, in a unit comparable across scripts; the token estimate.

A character floor before language ID (the old ``extract.min_chars: 200``) removed Chinese and
Japanese documents for being written in their script: 150 Chinese characters carry about as much
as 100 English words. Here length is counted in words (``pipelines/stages/text.py``: spaced words,
Han/kana characters / 1.5, Thai-like characters / 4), with per-language overrides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from toxsieve.pipelines.stages import text as T
from toxsieve.pipelines.stages.base import DeclaredStage, Signal, StageConfig, check_mode, check_non_negative


@dataclass(frozen=True)
class LengthConfig(StageConfig):
    enabled: bool = True
    # 30 words ~ the old 200-character floor for English (~6.5 characters per word with its space);
    # on the crawl samples it removes the same stubs (docs/quality.md)
    min_words: float = 30.0
    min_words_per_language: Mapping[str, float] = field(default_factory=dict)  # e.g. {th: 20}

    def validate(self, key: str) -> None:
        check_mode(key, self)
        check_non_negative(f"{key}.min_words", self.min_words)
        for lang, value in self.min_words_per_language.items():
            check_non_negative(f"{key}.min_words_per_language.{lang}", value)

    def floor_for(self, language: str | None) -> float:
        return self.min_words_per_language.get(language or "", self.min_words)


def score(doc: Any, cfg: LengthConfig) -> dict[str, Any]:
    text = doc.text or ""
    tokens = T.words(text)
    return {
        "words": round(T.word_units(tokens), 2),
        "unspaced_share": round(T.unspaced_share(tokens), 3),
        "tokens": T.estimate_tokens(text),
    }


def decide(signals: Mapping[str, Any], cfg: LengthConfig) -> Any:
    language = signals["language"]
    floor = cfg.floor_for(language)
    if signals["words"] < floor:
        return STAGE.remove("below_length_floor", score=signals["words"], threshold=floor,
                            matched=(language,) if language else (),
                            detail=f"{signals['words']:g} words < {floor:g} "
                                   f"(quality.length, language {language or 'und'})")
    return None


STAGE = DeclaredStage(
    name="length",
    transform="ApplyLengthFloor",
    doc=__doc__ or "",
    config=LengthConfig,
    reasons=(("below_length_floor", "fewer words (comparable units) than quality.length allows for its language"),),
    signals=(
        Signal("words", pa.float64(), "length in words: spaced words + Han/kana chars / 1.5 + Thai-like chars / 4"),
        Signal("unspaced_share", pa.float64(), "share of those words from unspaced scripts (Han, kana, Thai, ...)"),
        Signal("tokens", pa.int64(), "estimated tokens: ceil(UTF-8 bytes / 4)"),
    ),
    score=score,
    decide=decide,
)
