"""normalize_text / text_hash: the canonical text that is stored, deduplicated and hashed."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from toxsieve.pipelines.stages.extract import normalize_text, text_hash

# Characters (and CRLF) the normaliser has a rule for, mixed into ordinary text so that Hypothesis
# hits them often: every kind of line break, controls, odd spaces, BOM, combining marks, Hangul jamo.
_AWKWARD = st.sampled_from([
    "\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\u2028", "\u2029",
    "\x00", "\x07", "\x1b", "\x7f", "\x9b", "\t", " ", "\xa0", "\u2000", "\u200a", "\u3000", "\u202f",
    "\ufeff", "\u200b", "\u200d", "\u0301", "\u0316", "\u0327", "\u1100", "\u1161", "\u11a8", "e", "A",
])
_LONE_SURROGATES = st.characters(categories=["Cs"])
TEXTS = st.lists(st.one_of(st.characters(), _AWKWARD, _LONE_SURROGATES, st.just("word")), max_size=60).map("".join)

SETTINGS = settings(max_examples=300, deadline=None)


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) == "Cc"


@SETTINGS
@given(TEXTS)
@example("a\u0301\r\n\r\n\r\n\r\nb")
@example(" \u0301x")
@example("\ud800")
def test_normalize_is_idempotent(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(once) == once


@SETTINGS
@given(TEXTS)
def test_normalized_text_is_clean(text: str) -> None:
    out = normalize_text(text)
    assert not [ch for ch in out if _is_control(ch) and ch != "\n"], "control characters left"
    assert not [ch for ch in out if unicodedata.category(ch) == "Cs"], "lone surrogates left"
    out.encode("utf-8")  # Parquet stores UTF-8: must not raise
    assert "\n\n\n" not in out
    assert out == out.strip(), "leading or trailing whitespace"
    assert unicodedata.is_normalized("NFC", out)
    assert "\ufeff" not in out


@SETTINGS
@given(TEXTS)
def test_lines_have_single_spaces_and_no_edge_spaces(text: str) -> None:
    for line in normalize_text(text).split("\n"):
        assert line == line.strip()
        assert "  " not in line
        assert not [ch for ch in line if ch.isspace() and ch != " "], "non-ASCII or tab whitespace left"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("line one\r\nline two\r\n", "line one\nline two"),  # CRLF
        ("old\rmac", "old\nmac"),  # lone CR
        ("a\u2028b\u2029c\x85d", "a\nb\nc\nd"),  # Unicode line/paragraph separators, NEL
        ("price:\xa010\u00a0€", "price: 10 €"),  # NBSP is a space
        ("\ufeffbom at start and\ufeffin the middle", "bom at start andin the middle"),
        ("tab\tseparated   words", "tab separated words"),
        ("  indented\n\tline  \n", "indented\nline"),
        ("para 1\n\n\n\n\npara 2", "para 1\n\npara 2"),
        ("para 1\n \n\t\n  \npara 2", "para 1\n\npara 2"),  # lines of only spaces count as blank
        ("bell\x07 and \x1b[0m escape", "bell and [0m escape"),
        ("Cafe\u0301", "Caf\u00e9"),  # decomposed → NFC
        ("\u1100\u1161\u11a8", "\uac01"),  # Hangul jamo compose
        ("\ud83d lone surrogate", "\ufffd lone surrogate"),
        ("", ""),
        (" \n\r\n\t \ufeff ", ""),
    ],
)
def test_normalize_examples(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


def test_meaningful_zero_width_joiners_survive() -> None:
    # ZWJ / ZWNJ carry meaning (emoji sequences, Persian and Indic orthography): not whitespace.
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"
    assert normalize_text(family) == family
    assert normalize_text(persian) == persian


def test_text_hash_is_stable_across_runs() -> None:
    # Pinned: exact-dedup keys and text_hash columns must not change between releases by accident.
    assert text_hash("hello world") == "df8d09e93f874900a99b8775cc15b6c7"
    assert text_hash("") == "99aa06d3014798d86001c324468d497f"
    assert text_hash("hello world") == text_hash("hello world")


def test_text_hash_distinguishes_texts() -> None:
    assert text_hash("hello world") != text_hash("hello world!")
    assert len(text_hash("x")) == 32 and int(text_hash("x"), 16) >= 0


def _reformat(normal: str) -> str:
    """A normalised text as another crawl might deliver it: CRLF, NFD, odd spaces, BOM, padding."""
    out = unicodedata.normalize("NFD", normal).replace("\n", "\r\n").replace(" ", " \t\xa0")
    return "\ufeff  \r\n" + out + " \u2028\u2028\u2028 "


@SETTINGS
@given(TEXTS)
def test_texts_that_normalise_the_same_hash_the_same(text: str) -> None:
    normal = normalize_text(text)
    assert normalize_text(_reformat(normal)) == normal
    padded = "\ufeff \t" + unicodedata.normalize("NFD", text) + " \r\n\r\n\x00"
    assert text_hash(normalize_text(padded)) == text_hash(normal)


@SETTINGS
@given(TEXTS, TEXTS)
def test_hash_equal_iff_normalised_text_equal(a: str, b: str) -> None:
    na, nb = normalize_text(a), normalize_text(b)
    assert (text_hash(na) == text_hash(nb)) == (na == nb)
