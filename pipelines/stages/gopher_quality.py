"""Gopher's quality rules (Rae et al. 2021, "Scaling Language Models", section A.1.1).

Word count and mean word length bounds, hash and ellipsis to word ratios, shares of lines that
start with a bullet or end with an ellipsis, the share of words with a letter, and stop-word
presence. Thresholds are the paper's. English-centric limits, and what we do about them:

* words: ``pipelines/stages/text.py`` (Han/kana characters / 1.5 and Thai-like characters / 4 count
  as words), so the word-count bounds mean the same in every script;
* mean word length (3..10 characters) only applies to spaced scripts: it is null (rule skipped) when
  over half of a text's words are Han/kana/Thai-like. German compounds and agglutinative languages
  (Finnish, Turkish) sit near the upper bound: raise it for them if the funnel shows it;
* stop words: Gopher's list is English; lists for de, fr, es, it, nl, pt, ru are ours (the most
  frequent function words); any other language has no list and the rule is skipped (null).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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

BULLETS = ("•", "●", "◦", "▪", "‣", "-", "*", "·")
STOP_WORDS: dict[str, tuple[str, ...]] = {
    "en": ("the", "be", "to", "of", "and", "that", "have", "with"),  # Gopher's list
    "de": ("der", "die", "das", "und", "ist", "nicht", "mit", "zu", "den", "von"),
    "fr": ("le", "la", "les", "de", "et", "est", "des", "que", "une", "dans"),
    "es": ("el", "la", "de", "que", "y", "los", "las", "del", "por", "una"),
    "it": ("il", "di", "che", "la", "e", "per", "non", "una", "della", "sono"),
    "nl": ("de", "het", "een", "en", "van", "dat", "niet", "met", "voor", "zijn"),
    "pt": ("o", "de", "que", "e", "do", "da", "em", "um", "para", "não"),
    "ru": ("и", "в", "не", "на", "что", "с", "по", "это", "как", "к"),
}


@dataclass(frozen=True)
class GopherQualityConfig(StageConfig):
    # on: on the crawl samples it removes only navigation stubs, teaser lists and tables (docs/quality.md)
    enabled: bool = True
    # a bound of null switches that rule off. The lower word bound is off by default: the length
    # floor is quality.length (one floor, fair to every script); Gopher used 50
    min_words: float | None = None
    max_words: float | None = 100_000
    min_mean_word_length: float | None = 3
    max_mean_word_length: float | None = 10
    max_symbol_word_ratio: float | None = 0.1  # '#' per word, and '...'/'…' per word
    max_bullet_lines_frac: float | None = 0.9
    max_ellipsis_lines_frac: float | None = 0.3
    min_alpha_words_frac: float | None = 0.8
    min_stop_words: int | None = 2
    stop_words: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(STOP_WORDS))

    def validate(self, key: str) -> None:
        check_mode(key, self)
        for name in ("min_words", "max_words", "min_mean_word_length", "max_mean_word_length",
                     "max_symbol_word_ratio", "min_stop_words"):
            check_non_negative(f"{key}.{name}", getattr(self, name))
        for name in ("max_bullet_lines_frac", "max_ellipsis_lines_frac", "min_alpha_words_frac"):
            check_unit(f"{key}.{name}", getattr(self, name))


def score(doc: Any, cfg: GopherQualityConfig) -> dict[str, Any]:
    text = doc.text or ""
    tokens = T.words(text)
    n_words = T.word_units(tokens)
    per_word = max(n_words, 1.0)
    lines = T.lines(text) or [""]
    spaced = [t for t in tokens if not T.is_unspaced(t)] if T.has_unspaced(tokens) else tokens
    stop_list = cfg.stop_words.get(doc.language or "")
    stop = frozenset(stop_list) if stop_list else None
    return {
        "words": round(n_words, 2),
        "mean_word_length": (round(sum(map(len, spaced)) / len(spaced), 3)
                             if spaced and T.unspaced_share(tokens) <= 0.5 else None),
        "hash_ratio": round(text.count("#") / per_word, 4),
        "ellipsis_ratio": round((text.count("...") + text.count("…")) / per_word, 4),
        "bullet_lines_frac": round(sum(line.startswith(BULLETS) for line in lines) / len(lines), 4),
        "ellipsis_lines_frac": round(sum(line.endswith(T.ELLIPSES) for line in lines) / len(lines), 4),
        "alpha_words_frac": round(sum(t.isalpha() or any(c.isalpha() for c in t) for t in tokens) / len(tokens), 4)
        if tokens else 0.0,
        "stop_words": sum(t.lower() in stop for t in tokens) if stop is not None else None,
    }


def decide(signals: Mapping[str, Any], cfg: GopherQualityConfig) -> Any:
    return STAGE.first_out_of_bounds(signals, (
        ("gopher_word_count", "words", cfg.min_words, "<"),
        ("gopher_word_count", "words", cfg.max_words, ">"),
        ("gopher_mean_word_length", "mean_word_length", cfg.min_mean_word_length, "<"),
        ("gopher_mean_word_length", "mean_word_length", cfg.max_mean_word_length, ">"),
        ("gopher_symbol_ratio", "hash_ratio", cfg.max_symbol_word_ratio, ">"),
        ("gopher_symbol_ratio", "ellipsis_ratio", cfg.max_symbol_word_ratio, ">"),
        ("gopher_bullet_lines", "bullet_lines_frac", cfg.max_bullet_lines_frac, ">"),
        ("gopher_ellipsis_lines", "ellipsis_lines_frac", cfg.max_ellipsis_lines_frac, ">"),
        ("gopher_alpha_words", "alpha_words_frac", cfg.min_alpha_words_frac, "<"),
        ("gopher_stop_words", "stop_words", cfg.min_stop_words, "<"),
    ))


STAGE = DeclaredStage(
    name="gopher_quality",
    transform="FilterGopherQuality",
    doc=__doc__ or "",
    config=GopherQualityConfig,
    reasons=(
        ("gopher_word_count", "fewer than min_words or more than max_words words"),
        ("gopher_mean_word_length", "mean word length outside [min, max] (spaced scripts only)"),
        ("gopher_symbol_ratio", "too many '#' or ellipses per word"),
        ("gopher_bullet_lines", "too many lines start with a bullet"),
        ("gopher_ellipsis_lines", "too many lines end with an ellipsis"),
        ("gopher_alpha_words", "too few words contain a letter"),
        ("gopher_stop_words", "too few stop words (languages with a stop-word list only)"),
    ),
    signals=(
        Signal("words", pa.float64(), "words in comparable units (pipelines/stages/text.py)"),
        Signal("mean_word_length", pa.float64(), "mean characters per spaced word; null for unspaced scripts"),
        Signal("hash_ratio", pa.float64(), "'#' characters per word"),
        Signal("ellipsis_ratio", pa.float64(), "'...' and '…' per word"),
        Signal("bullet_lines_frac", pa.float64(), "share of lines starting with a bullet (• ● ◦ ▪ ‣ - * ·)"),
        Signal("ellipsis_lines_frac", pa.float64(), "share of lines ending with '...' or '…'"),
        Signal("alpha_words_frac", pa.float64(), "share of words with at least one letter"),
        Signal("stop_words", pa.int32(), "stop words found; null when the language has no list"),
    ),
    score=score,
    decide=decide,
    measure=("stop_words",),
)
