"""The fast toxicity preprocessing is byte-identical to the original one the shipped models were trained on.

``_reference_*`` below is a frozen copy of ``classifiers/fasttext_toxicity.py``'s preprocessing as
it was when the English and per-language fastText models were trained (commit 3f27752). Never edit
it: it is the specification. The new functions must give exactly its output for any text
(Hypothesis, with an alphabet weighted towards the characters every pass reacts to) and for real
texts (the crawl sample's pages and the shipped training comments).
"""

from __future__ import annotations

import gzip
import json
import re
import sys
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from toxsieve.classifiers import fasttext_toxicity as ft
from toxsieve.classifiers.base import chunk_text
from toxsieve.classifiers.toxicity_data import SHIPPED_DATA_DIR, SHIPPED_HELDOUT, read_labeled_csv

REPO = Path(__file__).resolve().parents[2]

# --- the frozen reference (do not edit) ------------------------------------------------------
_R_URL = re.compile(r"(?:https?://|www\.)\S+|\b[\w-]+(?:\.[\w-]+)+/\S*", re.IGNORECASE)
_R_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b")
_R_USER = re.compile(r"(?<![\w@])@\w+")
# Wikipedia talk-page signatures and user links: a source artefact, not a signal of toxicity.
_R_WIKI_USER = re.compile(r"\[\[\s*user(?:[ _]talk)?\s*:[^\]]*\]\]", re.IGNORECASE)
_R_IP = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")
# A stand-alone number (digits inside a word, as in "sh1t", are kept: obfuscation is a signal).
_R_NUMBER = re.compile(r"(?<!\w)[-+]?\d+(?:[.,:/]\d+)*(?!\w)")
# Three or more of the same character -> two ("stuuuupid" -> "stuupid", "!!!!" -> "!!").
_R_REPEAT = re.compile(r"(.)\1{2,}", re.DOTALL)
# Punctuation at the edges of a word becomes its own token ("idiot!" -> "idiot !"); punctuation
# inside a word stays ("f*ck", "don't").
_R_TRAILING_PUNCT = re.compile(r"(?<=\w)([^\w\s<>]+)(?=\s|$)")
_R_LEADING_PUNCT = re.compile(r"(?:(?<=\s)|^)([^\w\s<>]+)(?=\w)")
# Wiki markup: headings, bold/italic quotes, link and template brackets; then indentation colons.
_R_WIKI_MARKUP = re.compile(r"={2,}|'{2,}|\[\[|\]\]|\{\{|\}\}")
_R_WIKI_INDENT = re.compile(r"^ *:+", re.MULTILINE)
# Control and zero-width characters that are not whitespace (whitespace is handled by _SPACE).
_R_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\u200b-\u200f\u2060\ufeff]")
_R_SPACE = re.compile(r"[^\S\n]+")  # any whitespace but newline


def _reference_preprocess(text: str) -> str:
    """One line of lower-cased, NFKC-normalised, tokenised text, as the model sees it.

    URLs, e-mail addresses, @user mentions, IP addresses and stand-alone numbers become the tokens
    ``xxurl``, ``xxemail``, ``xxuser``, ``xxip``, ``xxnum`` (no ``_`` or ``<>``: fastText treats a
    ``__label__`` prefix specially and char n-grams use ``<>`` as word boundaries); characters
    repeated three or more times are squashed to two; wiki markup is dropped; newlines, tabs and
    control characters become spaces. Idempotent.
    """
    text = unicodedata.normalize("NFKC", text)
    text = _R_SPACE.sub(" ", _R_CONTROL.sub(" ", text))
    text = _R_WIKI_USER.sub(" xxuser ", text)
    text = _R_WIKI_INDENT.sub(" ", _R_WIKI_MARKUP.sub(" ", text))
    text = _R_URL.sub(" xxurl ", text)
    text = _R_EMAIL.sub(" xxemail ", text)
    text = _R_USER.sub(" xxuser ", text)
    text = _R_IP.sub(" xxip ", text)
    text = text.lower()
    text = _R_NUMBER.sub(" xxnum ", text)
    text = _R_REPEAT.sub(r"\1\1", text)
    text = _R_TRAILING_PUNCT.sub(r" \1", text)
    text = _R_LEADING_PUNCT.sub(r"\1 ", text)
    return " ".join(text.split())


# --- preprocessing v2 (the per-language models) -------------------------------------------------
# The multilingual sources mask users and links each their own way (README of the data): a
# bag-of-n-grams model would learn the source from the mask. Each mask becomes what ``preprocess``
# makes of a real mention or link, so training text and web text look alike.
_R_MASK_URL = re.compile(r"(?i:@url\b|<url>)|(?<![\w@])URL(?!\w)")  # upper-case URL only: "url" is a word
_R_MASK_USER = re.compile(r"(?i:<user>)|(?<![\w@])USER(?!\w)")  # @user / @USER are mentions already
_R_MASK_OTHER = re.compile(r"(?<![\w@])HASHTAG(?!\w)|<LF>|\|LBR\|")
# CJK ideographs, kana and Hangul syllables: written without spaces, so each becomes a token
# (word bigrams then are character bigrams, char n-grams stay inside one character).
_R_CJK = re.compile("([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff])")


def _reference_normalise_masks(text: str) -> str:
    """Source masking tokens (``@url``, ``<url>``, ``URL``, ``<user>``, ``@USER``, ``USER``, ``HASHTAG``,
    ``<LF>``, ``|LBR|``) as a real link / mention / line break; real text is left alone."""
    text = _R_MASK_OTHER.sub(" ", text)
    text = _R_MASK_URL.sub(" http://xx ", text)
    return _R_MASK_USER.sub(" @xx ", text)


def _reference_space_cjk(text: str) -> str:
    """A space around every CJK character, so whitespace tokenisation and word chunking see characters."""
    return _R_CJK.sub(r" \1 ", text) if not text.isascii() else text


def _reference_preprocess_v2(text: str) -> str:
    """``preprocess`` after ``normalise_masks``, with CJK characters as tokens. Idempotent."""
    return " ".join(_reference_space_cjk(_reference_preprocess(_reference_normalise_masks(text))).split())



# --- the checks --------------------------------------------------------------------------------
# Characters and fragments every pass reacts to, so that Hypothesis reaches each branch and gate.
_FRAGMENTS = [
    "http://", "https://", "HTTPS://", "www.", "WwW.", "wWw.x", "example.com/", "a.b/c", ".x/", "://",
    "@", "@bob", "a@b.cd", "x.y+z@host-1.org.", "@url", "@URL", "<url>", "<URL>", "URL", "url", "<user>",
    "USER", "@USER", "user", "<uſer>", "<UseR>", "@Url", "a@b", "@@x", "x@y", "HASHTAG", "<LF>", "|LBR|", "[[", "]]", "[[User:Foo|Foo]]", "[[ user talk : x]]",
    "{{", "}}", "==", "===", "''", "'''", ":::", "\n:", "\n ::", "1.2.3.4", "66.249.1.1", "12:30", "-3,5",
    "+7/8", "3rd", "sh1t", "١٢٣", "٣.٤", "!!!", "...", "aaa", "ooooo", "   ", "\t", "\r\n", "\x0b", "\x0c",
    "\x1c", "\x85", "\xa0", "\u2003", "\u2028", "\u3000", "\x00", "\x07", "\x1b", "\x7f", "\x9f", "\u200b",
    "\u200d", "\u2060", "\ufeff", "ｆｕｌｌ", "ﬁ", "Å", "ſ", "K", "ß", "İ", "f*ck", "don't", "(a)", "\"quoted\"",
    "<b>", "a<b>c", ">:(", "-_-", "¡hola!", "¿qué?", "中文字", "日本語かな", "한국어", "中", "ｶﾀｶﾅ", "\ud800",
    "😀😀😀", "e\u0301", "_", "__label__", "xxurl", " ", "\n", "\n\n",
]
_texts = st.lists(st.one_of(st.sampled_from(_FRAGMENTS), st.text(max_size=6),
                            st.text(alphabet=" \n\t.,!?:;/@-_'\"()<>[]{}=*#a1Z中", max_size=8)),
                  max_size=30).map("".join)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_texts)
@example("Hello @bob, see https://example.com/a?b=1 NOW!!!!")
@example(":::Reply\n== Heading ==\n[[User:Foo|Foo]]")
@example("a\u200b  b\x00\tc")
@example("<uſer> and <URL> and @Url. mail a@b.c @@d")
def test_preprocess_equals_the_reference(text: str) -> None:
    assert ft.preprocess(text) == _reference_preprocess(text)
    assert ft.preprocess_v2(text) == _reference_preprocess_v2(text)
    assert ft.normalise_masks(text) == _reference_normalise_masks(text)
    assert ft.space_cjk(text) == _reference_space_cjk(text)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_preprocess_equals_the_reference_on_any_unicode(text: str) -> None:
    assert ft.preprocess(text) == _reference_preprocess(text)
    assert ft.preprocess_v2(text) == _reference_preprocess_v2(text)


def test_merged_control_and_space_class_is_the_union_of_the_two_original_classes() -> None:
    """One pass replaces the original control pass + whitespace pass: its class is exactly their union
    (minus the newline), and every character in it is non-printable (what lets the pass be skipped)."""
    merged_class = re.compile(ft._CONTROL_OR_SPACE_CLASS)
    merged = {c for c in range(sys.maxunicode + 1) if merged_class.fullmatch(chr(c))}
    union = {c for c in range(sys.maxunicode + 1)
             if _R_CONTROL.fullmatch(chr(c)) or _R_SPACE.fullmatch(chr(c))}
    assert merged == union
    assert all(not chr(c).isprintable() for c in merged - {ord(" ")})


def _crawl_texts() -> list[str]:
    """The crawl sample's documents: JSONL texts, WET plain text and WARC pages' extracted text."""
    from toxsieve.pipelines.config import InputConfig
    from toxsieve.pipelines.document import Document
    from toxsieve.pipelines.io.readers import detect_format, read_shard
    from toxsieve.pipelines.stages.extract import html_to_text, normalize_text

    texts = []
    for path in sorted((REPO / "tests/fixtures/crawl").glob("*/*")):
        if path.name.endswith(".jsonl.gz"):
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                texts.extend(json.loads(line)["text"] for line in fh if line.strip())
        elif path.name.endswith((".warc.gz", ".wet.gz")):
            with open(path, "rb") as fh:
                for rec in read_shard(fh, str(path), detect_format(str(path)), InputConfig()):
                    if isinstance(rec, Document):
                        texts.append(normalize_text(html_to_text(rec.html)) if rec.html is not None else rec.text)
    return [t for t in texts if t]


def _comment_rows(path: Path, every: int) -> list[str]:
    import csv

    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        return [row["text"] for i, row in enumerate(csv.DictReader(fh)) if i % every == 0]


@pytest.fixture(scope="module")
def real_texts() -> list[str]:
    comments = [e.text for e in read_labeled_csv(SHIPPED_HELDOUT)][::8]
    comments += _comment_rows(SHIPPED_DATA_DIR / "web_comments" / "combined_binary_dedup.csv.gz", 100)
    comments += _comment_rows(SHIPPED_DATA_DIR / "multilingual" / "permissive.csv.gz", 60)  # zh pt pl fr ar
    return _crawl_texts() + comments


def test_squash_repeats_is_the_repeat_regex() -> None:
    for text in ["", "a", "aa", "aaa", "aaaa b", "!!!!??...", "\n\n\n", "ééé", "中中中中", "😀😀😀x", "\ud800\ud800\ud800",
                 "abcabc", "aabbcc", "xxxyyyy"]:
        assert ft._squash_repeats(text) == _R_REPEAT.sub(r"\1\1", text), text


def test_real_texts_and_their_chunks_preprocess_exactly_as_before(real_texts: list[str]) -> None:
    assert len(real_texts) > 3000
    assert any(ft._CJK.search(t) for t in real_texts)  # the multilingual rows reach the CJK path
    for text in real_texts:
        assert ft.normalise_masks(text) == _reference_normalise_masks(text)
        spaced = ft.space_cjk(text)  # what prepare_for_chunking gives a v2 model
        assert spaced == _reference_space_cjk(text)
        for chunk in chunk_text(spaced, 64)[:20]:
            assert ft.preprocess(chunk) == _reference_preprocess(chunk), chunk
            assert ft.preprocess_v2(chunk) == _reference_preprocess_v2(chunk), chunk


def test_reference_is_the_trained_preprocessing() -> None:
    """The frozen copy still gives the outputs the model tests pinned before the rewrite."""
    assert _reference_preprocess("Hello @bob, see https://example.com/a?b=1 NOW!!!!") == \
        "hello xxuser , see xxurl now !!"
    assert _reference_preprocess("ｆｕｌｌｗｉｄｔｈ from 66.249.1.1 at 12:30") == "fullwidth from xxip at xxnum"
    assert unicodedata.is_normalized("NFKC", _reference_preprocess("ﬁne ｆｕｌｌ"))
    assert re.fullmatch(r"[^\n\t]*", _reference_preprocess_v2("a\n中文\tb")) is not None
