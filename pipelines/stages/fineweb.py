"""FineWeb's extra rules (Penedo et al. 2024, "The FineWeb Datasets"; datatrove's FineWebQualityFilter).

Share of lines ending in terminal punctuation (>= 0.12), share of short lines (<= 30 characters;
at most 0.67), share of characters in duplicated lines (at most 0.01) and newlines per word (at
most 0.3: list-like pages). Thresholds are FineWeb's, chosen on English. Limits: line length is
measured in Latin-equivalent characters (a Han/kana character counts 3, ``text.latin_length``),
words in comparable units, and terminal punctuation includes CJK, Devanagari and Arabic marks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from toxsieve.pipelines.stages import text as T
from toxsieve.pipelines.stages.base import (
    DeclaredStage,
    Signal,
    StageConfig,
    check_mode,
    check_non_negative,
    check_unit,
)


@dataclass(frozen=True)
class FineWebConfig(StageConfig):
    # annotate: on the crawl samples it flags 23 of 72 pages, list-like homepages and a Wikipedia article among them
    enabled: bool = True
    mode: str = "annotate"
    short_line_length: int = 30  # measurement: a line this long or shorter is short
    min_line_punct_frac: float | None = 0.12  # bounds: null switches the rule off
    max_short_line_frac: float | None = 0.67
    max_dup_line_char_frac: float | None = 0.01
    max_newlines_per_word: float | None = 0.3

    def validate(self, key: str) -> None:
        check_mode(key, self)
        check_non_negative(f"{key}.short_line_length", self.short_line_length)
        check_non_negative(f"{key}.max_newlines_per_word", self.max_newlines_per_word)
        for name in ("min_line_punct_frac", "max_short_line_frac", "max_dup_line_char_frac"):
            check_unit(f"{key}.{name}", getattr(self, name))


def score(doc: Any, cfg: FineWebConfig) -> dict[str, Any]:
    text = doc.text or ""
    lines = T.lines(text)
    n = max(1, len(lines))
    seen: set[str] = set()
    dup_chars = 0
    for line in lines:
        if line in seen:
            dup_chars += len(line)
        else:
            seen.add(line)
    n_words = T.word_units(T.words(text))
    return {
        "line_punct_frac": round(sum(line.endswith(T.TERMINAL_PUNCTUATION) for line in lines) / n, 4),
        "short_line_frac": round(sum(T.latin_length(line) <= cfg.short_line_length for line in lines) / n, 4),
        "dup_line_char_frac": round(dup_chars / max(1, len(text)), 4),
        "newlines_per_word": round(text.count("\n") / max(1.0, n_words), 4),
    }


def decide(signals: Mapping[str, Any], cfg: FineWebConfig) -> Any:
    return STAGE.first_out_of_bounds(signals, (
        ("fineweb_line_punct", "line_punct_frac", cfg.min_line_punct_frac, "<"),
        ("fineweb_short_lines", "short_line_frac", cfg.max_short_line_frac, ">"),
        ("fineweb_dup_line_chars", "dup_line_char_frac", cfg.max_dup_line_char_frac, ">"),
        ("fineweb_list_like", "newlines_per_word", cfg.max_newlines_per_word, ">"),
    ))


STAGE = DeclaredStage(
    name="fineweb",
    transform="FilterFineWebRules",
    doc=__doc__ or "",
    config=FineWebConfig,
    reasons=(
        ("fineweb_line_punct", "too few lines end in terminal punctuation"),
        ("fineweb_short_lines", "too many short lines"),
        ("fineweb_dup_line_chars", "too many characters in duplicated lines"),
        ("fineweb_list_like", "too many newlines per word (a list, not prose)"),
    ),
    signals=(
        Signal("line_punct_frac", pa.float64(), "share of lines ending in terminal punctuation"),
        Signal("short_line_frac", pa.float64(), "share of lines of at most short_line_length Latin-equivalent chars"),
        Signal("dup_line_char_frac", pa.float64(), "share of the text's characters in lines seen before"),
        Signal("newlines_per_word", pa.float64(), "newlines / words (comparable units)"),
    ),
    score=score,
    decide=decide,
    measure=("short_line_length",),
)
