"""Gopher's repetition rules (Rae et al. 2021, "Scaling Language Models", Table A1).

Duplicated paragraphs and lines (share of items, share of characters), the character share of the
most frequent 2-, 3- and 4-gram, and the share of characters in repeated 5- to 10-grams. Thresholds
are the paper's. Words come from ``pipelines/stages/text.py`` (Han/kana one character per token),
and n-gram shares are measured over the characters of the word tokens (not the raw text with its
spaces and punctuation), so unspaced scripts are not penalised for having no spaces.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from toxsieve.pipelines.stages import text as T
from toxsieve.pipelines.stages.base import DeclaredStage, Signal, StageConfig, check_mode, check_unit

TOP_NGRAMS = (2, 3, 4)
DUP_NGRAMS = (5, 6, 7, 8, 9, 10)
_PARAGRAPHS = re.compile(r"\n{2,}")


@dataclass(frozen=True)
class GopherRepetitionConfig(StageConfig):
    # off: on the crawl sample 2 of its 3 flags are real pages with a repeated heading or intro, and its
    # ten n-gram passes cost ~2.5x the extraction of the page (docs/quality.md)
    enabled: bool = False
    mode: str = "annotate"
    # a threshold of null switches that rule off
    max_dup_para_frac: float | None = 0.30
    max_dup_para_char_frac: float | None = 0.20
    max_dup_line_frac: float | None = 0.30
    max_dup_line_char_frac: float | None = 0.20
    max_top_2gram_char_frac: float | None = 0.20
    max_top_3gram_char_frac: float | None = 0.18
    max_top_4gram_char_frac: float | None = 0.16
    max_dup_5gram_char_frac: float | None = 0.15
    max_dup_6gram_char_frac: float | None = 0.14
    max_dup_7gram_char_frac: float | None = 0.13
    max_dup_8gram_char_frac: float | None = 0.12
    max_dup_9gram_char_frac: float | None = 0.11
    max_dup_10gram_char_frac: float | None = 0.10

    def validate(self, key: str) -> None:
        check_mode(key, self)
        for name in _RULES:
            check_unit(f"{key}.max_{name}", getattr(self, f"max_{name}"))


def _duplicates(items: list[str]) -> tuple[int, int]:
    """(items seen before, characters in them)."""
    seen: set[str] = set()
    n = chars = 0
    for item in items:
        if item in seen:
            n += 1
            chars += len(item)
        else:
            seen.add(item)
    return n, chars


def _top_ngram_chars(tokens: tuple[str, ...], n: int) -> int:
    grams = Counter(zip(*(tokens[k:] for k in range(n)), strict=False))
    if not grams:
        return 0
    # the most frequent n-gram; ties by length, then by the n-gram itself (never by insertion order)
    gram, count = min(grams.items(), key=lambda kv: (-kv[1], -sum(map(len, kv[0])), kv[0]))
    # an n-gram seen once is no repetition (Gopher counts it; then any text under ~15 words fails)
    return sum(map(len, gram)) * count if count > 1 else 0


def _repeated_ngram_chars(tokens: tuple[str, ...], n: int) -> int:
    """Characters covered by n-grams that occurred earlier, each word counted at most once."""
    seen: set[tuple[str, ...]] = set()
    covered = [False] * len(tokens)
    for i, gram in enumerate(zip(*(tokens[k:] for k in range(n)), strict=False)):
        if gram in seen:
            for j in range(i, i + n):
                covered[j] = True
        else:
            seen.add(gram)
    return sum(len(t) for t, c in zip(tokens, covered, strict=True) if c)


def score(doc: Any, cfg: GopherRepetitionConfig) -> dict[str, Any]:
    text = (doc.text or "").strip()
    n_chars = max(1, len(text))
    paragraphs = [p for p in _PARAGRAPHS.split(text) if p.strip()]
    para_dups, para_chars = _duplicates(paragraphs)
    lines = [line for line in text.split("\n") if line.strip()]
    line_dups, line_chars = _duplicates(lines)
    tokens = T.words(text)
    word_chars = max(1, sum(len(t) for t in tokens))
    out: dict[str, Any] = {
        "dup_para_frac": round(para_dups / max(1, len(paragraphs)), 4),
        "dup_para_char_frac": round(para_chars / n_chars, 4),
        "dup_line_frac": round(line_dups / max(1, len(lines)), 4),
        "dup_line_char_frac": round(line_chars / n_chars, 4),
    }
    for n in TOP_NGRAMS:
        out[f"top_{n}gram_char_frac"] = round(_top_ngram_chars(tokens, n) / word_chars, 4)
    for n in DUP_NGRAMS:
        out[f"dup_{n}gram_char_frac"] = round(_repeated_ngram_chars(tokens, n) / word_chars, 4)
    return out


_RULES = ("dup_para_frac", "dup_para_char_frac", "dup_line_frac", "dup_line_char_frac",
          *(f"top_{n}gram_char_frac" for n in TOP_NGRAMS), *(f"dup_{n}gram_char_frac" for n in DUP_NGRAMS))
_REASON = {
    "dup_para_frac": "gopher_dup_paragraphs", "dup_para_char_frac": "gopher_dup_paragraphs",
    "dup_line_frac": "gopher_dup_lines", "dup_line_char_frac": "gopher_dup_lines",
    **{f"top_{n}gram_char_frac": "gopher_top_ngram" for n in TOP_NGRAMS},
    **{f"dup_{n}gram_char_frac": "gopher_dup_ngrams" for n in DUP_NGRAMS},
}


def decide(signals: Mapping[str, Any], cfg: GopherRepetitionConfig) -> Any:
    for name in _RULES:
        limit = getattr(cfg, f"max_{name}")
        value = signals[name]
        if limit is not None and value is not None and value > limit:
            return STAGE.remove(_REASON[name], score=value, threshold=limit, matched=(name,),
                                detail=f"{name} {value:.3f} > quality.gopher_repetition.max_{name}={limit}")
    return None


STAGE = DeclaredStage(
    name="gopher_repetition",
    transform="FilterGopherRepetition",
    doc=__doc__ or "",
    config=GopherRepetitionConfig,
    reasons=(
        ("gopher_dup_paragraphs", "too many duplicated paragraphs (share of paragraphs or of characters)"),
        ("gopher_dup_lines", "too many duplicated lines (share of lines or of characters)"),
        ("gopher_top_ngram", "the most frequent 2/3/4-gram covers too many characters"),
        ("gopher_dup_ngrams", "repeated 5..10-grams cover too many characters"),
    ),
    signals=tuple(Signal(name, pa.float64(), doc) for name, doc in (
        ("dup_para_frac", "share of paragraphs (split on blank lines) that repeat an earlier one"),
        ("dup_para_char_frac", "share of the text's characters in repeated paragraphs"),
        ("dup_line_frac", "share of lines that repeat an earlier line"),
        ("dup_line_char_frac", "share of the text's characters in repeated lines"),
        *((f"top_{n}gram_char_frac", f"share of word characters in the most frequent {n}-gram") for n in TOP_NGRAMS),
        *((f"dup_{n}gram_char_frac", f"share of word characters in repeated {n}-grams") for n in DUP_NGRAMS),
    )),
    score=score,
    decide=decide,
)
