"""Words, lines and lengths that mean the same thing in every script (shared by the declared stages).

Spaced scripts (Latin, Cyrillic, Greek, Arabic, Devanagari, Hangul, ...): a word is a
whitespace-separated token with punctuation and symbols stripped from both ends. Unspaced scripts
have no such token, so a light, documented rule stands in for a segmenter (no dependency, no model):

* Han and kana (Chinese, Japanese): every character is a token, and ``HAN_CHARS_PER_WORD`` = 1.5
  characters count as one word. Segmented Chinese corpora average about 1.5-1.7 characters per word
  (most words are one or two characters), so a 150-character Chinese text counts as ~100 words.
* Thai, Lao, Khmer, Myanmar: a run of these characters is one token (spaces there separate phrases,
  not words), and ``SEA_CHARS_PER_WORD`` = 4 characters count as one word (a rough figure: the
  characters include vowel and tone marks). Not measured here; override per language in config.

``word_units`` is the comparable length in words; ``estimate_tokens`` is the token estimate.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata

HAN_CHARS_PER_WORD = 1.5
SEA_CHARS_PER_WORD = 4.0
BYTES_PER_TOKEN = 4  # token estimate: UTF-8 bytes / 4 (see estimate_tokens)

_HAN = "\u2e80-\u2fdf\u3005-\u3007\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f" \
       "\U00020000-\U0003134f"
_SEA = "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff"
_UNSPACED = re.compile(f"[{_HAN}{_SEA}]")
_PIECES = re.compile(f"(?P<han>[{_HAN}])|(?P<sea>[{_SEA}]+)|(?P<other>[^{_HAN}{_SEA}]+)")
_HAN_CHAR = re.compile(f"[{_HAN}]")

# Terminal punctuation of a sentence/line: C4's marks plus their CJK, Devanagari and Arabic forms.
TERMINAL_PUNCTUATION = (".", "!", "?", '"', "'", "”", "’", "。", "！", "？", "．", "」", "』", "।", "॥", "؟", "۔")
ELLIPSES = ("...", "…")
_SENTENCE_END = re.compile(r"[。！？]+|[.!?．।॥؟۔]+(?=[\s\"'”’」』)]|$)")  # CJK marks need no space after


def _is_edge(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "PSZC"


_ASCII_EDGES = "".join(chr(i) for i in range(128) if unicodedata.category(chr(i))[0] in "PSZC")


def _strip(token: str) -> str:
    """The token without punctuation, symbols, separators or control characters at either end."""
    if token.isascii():
        return token.strip(_ASCII_EDGES)  # the same rule, in C, for the common case
    start, end = 0, len(token)
    while start < end and _is_edge(token[start]):
        start += 1
    while end > start and _is_edge(token[end - 1]):
        end -= 1
    return token[start:end]


@functools.lru_cache(maxsize=8)
def words(text: str) -> tuple[str, ...]:
    """Word tokens of a document, cached for the last few texts: the declared stages run one after
    another on the same document in one fused step, and each needs its words."""
    return line_words(text)


def line_words(text: str) -> tuple[str, ...]:
    """Word tokens: see the module docstring (Han/kana characters one by one, Thai-like runs whole)."""
    out: list[str] = []
    unspaced = _UNSPACED.search(text) is not None
    for raw in text.split():
        if raw.isalnum() and not unspaced:  # the common case: a plain word
            out.append(raw)
            continue
        if not unspaced or not _UNSPACED.search(raw):
            token = _strip(raw)
            if token:
                out.append(token)
            continue
        for m in _PIECES.finditer(raw):
            piece = m.group("han") or m.group("sea") or _strip(m.group("other"))
            if piece:
                out.append(piece)
    return tuple(out)


def is_unspaced(token: str) -> bool:
    """A token of ``words()`` from an unspaced script (a Han/kana character or a Thai-like run)."""
    return _UNSPACED.match(token) is not None


def token_units(token: str) -> float:
    """How many words one token of ``words()`` counts for."""
    if _UNSPACED.match(token):
        if _HAN_CHAR.match(token):
            return 1.0 / HAN_CHARS_PER_WORD
        return len(token) / SEA_CHARS_PER_WORD
    return 1.0


@functools.lru_cache(maxsize=8)
def _units(tokens: tuple[str, ...]) -> tuple[float, float]:
    """(word units, of which from unspaced scripts), summed token by token in order; a text without
    any unspaced character (most of the web) is counted without looking at each token."""
    if _UNSPACED.search(" ".join(tokens)) is None:
        return float(len(tokens)), 0.0
    total = unspaced = 0.0
    for t in tokens:
        units = token_units(t)
        total += units
        if _UNSPACED.match(t):
            unspaced += units
    return total, unspaced


def word_units(tokens: tuple[str, ...] | list[str]) -> float:
    """Comparable length in words of a token list (spaced words + unspaced characters / factor)."""
    return _units(tuple(tokens))[0]


def has_unspaced(tokens: tuple[str, ...] | list[str]) -> bool:
    return _units(tuple(tokens))[1] > 0


def unspaced_share(tokens: tuple[str, ...] | list[str]) -> float:
    """Share of the word units that come from unspaced scripts (0 for English, ~1 for Chinese)."""
    total, unspaced = _units(tuple(tokens))
    if total == 0:
        return 0.0
    return unspaced / total


def latin_length(line: str) -> float:
    """Line length in Latin-script characters: a Han/kana character counts as 3 (~ one word of 5.5
    Latin characters per 1.5 Han characters, rounded down), so short-line rules treat scripts alike."""
    return len(line) + 2 * len(_HAN_CHAR.findall(line))


def lines(text: str) -> list[str]:
    """Non-blank lines, stripped."""
    return [line.strip() for line in text.split("\n") if line.strip()]


def ends_with_terminal_punctuation(line: str) -> bool:
    return line.endswith(TERMINAL_PUNCTUATION) and not line.endswith(ELLIPSES)


def count_sentences(line: str) -> int:
    """Sentence ends in a line (runs of terminal marks followed by a space, a quote or the end);
    a non-empty line counts as at least one sentence."""
    return max(1, len(_SENTENCE_END.findall(line))) if line else 0


def estimate_tokens(text: str) -> int:
    """Estimated tokens of a text: ceil(UTF-8 bytes / 4). About 1 token per 4 characters of English
    (the usual rule for BPE vocabularies), ~0.75 per Chinese/Japanese character (3 bytes), ~0.5 per
    Cyrillic/Greek/Arabic letter (2 bytes). An estimate for budgeting, not any one tokenizer's count."""
    return math.ceil(len(text.encode("utf-8", "surrogatepass")) / BYTES_PER_TOKEN)
