"""The fast CPU toxicity model: a supervised fastText classifier (shipped as ``model.ftz``).

``preprocess`` is applied to every text at training *and* prediction time (the trainer writes
preprocessed lines; the classifier preprocesses before ``predict``), so the two can never drift.
Long documents are the caller's business: ``score_documents`` in ``base.py`` cuts them into chunks
of at most N words and takes the max (the model was trained on comments of ~10–150 words).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from toxsieve.classifiers.base import DEFAULT_CHUNK_WORDS, ModelIdentity, sha256_path

SHIPPED_TOXICITY_MODEL = Path(__file__).parent / "models" / "toxicity-fasttext" / "model.ftz"
SHIPPED_MODEL_NAME = "toxsieve-fasttext-toxicity-v1"
LABELS: tuple[str, ...] = ("non_toxic", "toxic")
TOXIC_LABELS: tuple[str, ...] = ("toxic",)
LABEL_PREFIX = "__label__"
# Chunk size for long documents and the recommended threshold (see the model card for why).
DEFAULT_MAX_WORDS = DEFAULT_CHUNK_WORDS
DEFAULT_THRESHOLD = 0.9
# Label names that mean "not toxic" in models a user trained with other label names.
_CLEAN_LABEL_NAMES = frozenset({"non_toxic", "not_toxic", "clean", "neither", "other", "nohate", "0", "none"})

# --- preprocessing (shared by training and prediction) --------------------------------------
# The shipped models were trained on exactly the token stream these passes produce, so the output
# must never change: tests/unit/test_preprocess_equivalence.py holds the original implementation and
# checks this one against it (Hypothesis and real texts). What makes this one 3-4x faster
# (bench/toxicity_preprocess_bench.py): a rare pass runs only when a character it needs is present
# (`in` on a str is a memchr-speed scan, a regex is a match tried at every position); patterns
# start with a character class, which the regex engine scans for quickly; the control and
# whitespace passes are one; the two punctuation passes are one split (no per-match template
# expansion); repeats are squashed with array operations, only when a character occurs 3x in a row.
_URL = re.compile(r"(?:https?://|www\.)\S+|\b[\w-]+(?:\.[\w-]+)+/\S*", re.IGNORECASE)
# Necessary for a _URL match: "www." (any case: only w/W fold to w) or, with a "/", "://" or ".word/".
_WWW = re.compile(r"[wW][wW][wW]\.")
_DOTTED_PATH = re.compile(r"\.[\w-]+/")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b")
# (?<![\w@])@\w+, written to start with the "@" (then neither a word character nor "@" before it)
_USER = re.compile(r"@(?<![\w@].)\w+")
# Wikipedia talk-page signatures and user links: a source artefact, not a signal of toxicity.
_WIKI_USER = re.compile(r"\[\[\s*user(?:[ _]talk)?\s*:[^\]]*\]\]", re.IGNORECASE)
_IP = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")
_IP_HINT = re.compile(r"\d\.\d{1,3}\.\d")  # in every _IP match
_DIGIT = re.compile(r"\d")
_TRIPLE = re.compile(r"(.)\1\1", re.DOTALL)  # a character three times in a row: what squashing changes
# A stand-alone number (digits inside a word, as in "sh1t", are kept: obfuscation is a signal):
# (?<!\w)[-+]?\d+(?:[.,:/]\d+)*(?!\w), written to start with a character class (the first sign
# or digit; then no word character before it), which the regex engine scans for quickly.
_NUMBER = re.compile(r"[-+\d](?<!\w.)(?:(?<=[-+])\d+|(?<=\d)\d*)(?:[.,:/]\d+)*(?!\w)")
# Punctuation at the edges of a word becomes its own token ("idiot!" -> "idiot !"); punctuation
# inside a word stays ("f*ck", "don't"). A run of punctuation that ends a token after a word
# character, or starts a token (the text gets a leading space) before a word character. The
# pattern starts with a character class, which the regex engine scans for quickly; splitting on it
# and joining with spaces puts a space on both sides of each run (the extra one is whitespace
# next to whitespace, gone after the final normalisation).
_EDGE_PUNCT = re.compile(r"([^\w\s<>](?:(?<=\w.)[^\w\s<>]*(?=\s|\Z)|(?<=\s.)[^\w\s<>]*(?=\w)))")
# Wiki markup: headings, bold/italic quotes, link and template brackets; then indentation colons.
_WIKI_MARKUP = re.compile(r"={2,}|'{2,}|\[\[|\]\]|\{\{|\}\}")
_WIKI_INDENT = re.compile(r"^ *:+", re.MULTILINE)
# Control and zero-width characters (\x00-\x08 \x0e-\x1b \x7f-\x84 \x86-\x9f \u200b-\u200f \u2060
# \ufeff) and runs of whitespace but newline: each run becomes one space (a lone space is left as
# it is: no match). All of them are non-printable, so a text whose only non-printable character is
# the newline and without two spaces in a row has none.
_CONTROL_OR_SPACE_CLASS = "[\x00-\x09\x0b-\x1f \x7f-\xa0\u1680\u2000-\u200f\u2028\u2029\u202f\u205f\u2060\u3000\ufeff]"
_CONTROL_OR_SPACE = re.compile(_CONTROL_OR_SPACE_CLASS + "(?:" + _CONTROL_OR_SPACE_CLASS + "+|(?<! ))")


def preprocess(text: str) -> str:
    """One line of lower-cased, NFKC-normalised, tokenised text, as the model sees it.

    URLs, e-mail addresses, @user mentions, IP addresses and stand-alone numbers become the tokens
    ``xxurl``, ``xxemail``, ``xxuser``, ``xxip``, ``xxnum`` (no ``_`` or ``<>``: fastText treats a
    ``__label__`` prefix specially and char n-grams use ``<>`` as word boundaries); characters
    repeated three or more times are squashed to two; wiki markup is dropped; newlines, tabs and
    control characters become spaces. Idempotent.
    """
    return " ".join(_preprocess_lines(text).split())


def _preprocess_lines(text: str) -> str:
    """``preprocess`` before its final whitespace normalisation (runs of whitespace are still there)."""
    text = unicodedata.normalize("NFKC", text)
    if "  " in text or not text.replace("\n", " ").isprintable():
        text = _CONTROL_OR_SPACE.sub(" ", text)
    if "[[" in text:
        text = _WIKI_USER.sub(" xxuser ", text)
    if "==" in text or "''" in text or "[[" in text or "]]" in text or "{{" in text or "}}" in text:
        text = _WIKI_MARKUP.sub(" ", text)
    if ":" in text:
        text = _WIKI_INDENT.sub(" ", text)
    if ("/" in text and ("://" in text or _DOTTED_PATH.search(text))) or _WWW.search(text):
        text = _URL.sub(" xxurl ", text)
    at = text.find("@")
    if at >= 0:
        if text.find(".", at) >= 0:  # an e-mail address has a "." after its "@"
            text = _EMAIL.sub(" xxemail ", text)
        text = _USER.sub(" xxuser ", text)
    has_digit = _DIGIT.search(text) is not None
    if has_digit and _IP_HINT.search(text):
        text = _IP.sub(" xxip ", text)
    text = text.lower()
    if has_digit:
        text = _NUMBER.sub(" xxnum ", text)
    text = _squash_repeats(text)
    return " ".join(_EDGE_PUNCT.split(" " + text))


def _squash_repeats(text: str) -> str:
    """Three or more of the same character -> two ("stuuuupid" -> "stuupid", "!!!!" -> "!!"): what
    ``re.sub(r"(.)\\1{2,}", r"\\1\\1", text, flags=re.DOTALL)`` does, as array operations on the
    code points (a character is dropped when the two before it are the same character)."""
    if _TRIPLE.search(text) is None:  # most texts: a search is cheaper than the arrays
        return text
    ascii_ = text.isascii()
    encoding = "ascii" if ascii_ else "utf-32-le"
    codes = np.frombuffer(text.encode(encoding, "surrogatepass"), dtype=np.uint8 if ascii_ else np.uint32)
    same = codes[1:] == codes[:-1]
    third = same[1:] & same[:-1]  # third[i]: character i + 2 repeats the two before it
    keep = np.ones(len(codes), dtype=bool)
    keep[2:] = ~third
    return codes[keep].tobytes().decode(encoding, "surrogatepass")


# --- preprocessing v2 (the per-language models) -------------------------------------------------
# The multilingual sources mask users and links each their own way (README of the data): a
# bag-of-n-grams model would learn the source from the mask. Each mask becomes what ``preprocess``
# makes of a real mention or link, so training text and web text look alike.
_MASK_URL = re.compile(r"(?i:@url\b|<url>)|(?<![\w@])URL(?!\w)")  # upper-case URL only: "url" is a word
_MASK_USER = re.compile(r"(?i:<user>)|(?<![\w@])USER(?!\w)")  # @user / @USER are mentions already
_MASK_OTHER = re.compile(r"(?<![\w@])HASHTAG(?!\w)|<LF>|\|LBR\|")
# CJK ideographs, kana and Hangul syllables: written without spaces, so each becomes a token
# (word bigrams then are character bigrams, char n-grams stay inside one character).
_CJK = re.compile("([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff])")
PREPROCESS_VERSIONS = ("v1", "v2")


def normalise_masks(text: str) -> str:
    """Source masking tokens (``@url``, ``<url>``, ``URL``, ``<user>``, ``@USER``, ``USER``, ``HASHTAG``,
    ``<LF>``, ``|LBR|``) as a real link / mention / line break; real text is left alone."""
    if "HASHTAG" in text or "<LF>" in text or "|LBR|" in text:
        text = _MASK_OTHER.sub(" ", text)
    # each alternative of a mask pattern needs its upper-case word, or "@url" / "<url>" / "<user>" in
    # some case (under re.IGNORECASE only ASCII letters match u, r, l, e, and "ſ" s: casefold() maps them all)
    lowered = text.casefold() if "@" in text or "<" in text else ""
    if "URL" in text or "@url" in lowered or "<url>" in lowered:
        text = _MASK_URL.sub(" http://xx ", text)
        lowered = text.casefold() if "<" in text else ""
    if "USER" in text or "<user>" in lowered:
        text = _MASK_USER.sub(" @xx ", text)
    return text


def space_cjk(text: str) -> str:
    """A space around every CJK character, so whitespace tokenisation and word chunking see characters."""
    # splitting on each (captured) character and joining with spaces puts a space each side of it
    return " ".join(_CJK.split(text)) if not text.isascii() else text


def preprocess_v2(text: str) -> str:
    """``preprocess`` after ``normalise_masks``, with CJK characters as tokens. Idempotent."""
    return " ".join(space_cjk(_preprocess_lines(normalise_masks(text))).split())


PREPROCESSORS = {"v1": preprocess, "v2": preprocess_v2}


def model_metadata(model_path: Path) -> dict[str, object]:
    """``training.json`` beside a model (written by ``toxsieve train fasttext``), or ``{}``."""
    import json

    record = model_path.parent / "training.json"
    if not record.is_file():
        return {}
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("model") != model_path.name:
        return {}
    return data


def resolve_toxicity_model(model_path: str | Path | None) -> Path:
    path = Path(model_path) if model_path else SHIPPED_TOXICITY_MODEL
    if not path.is_file():
        raise FileNotFoundError(
            f"toxicity model not found: {path}"
            + (" (the shipped model is missing from this install; `toxsieve train fasttext` rebuilds it)"
               if model_path is None else "")
        )
    return path


class FastTextToxicityClassifier:
    """A ``TextClassifier`` over a supervised fastText model. Load once per worker, not per element.

    Labels come from the model (``__label__non_toxic`` / ``__label__toxic`` for the shipped one),
    clean labels first. Probabilities are float32, one row per text, each row summing to 1.
    """

    def __init__(self, model_path: str | Path | None = None, *, toxic_labels: Sequence[str] | None = None,
                 name: str | None = None, preprocess_version: str | None = None) -> None:
        import fasttext

        self.path = resolve_toxicity_model(model_path)
        self._model = fasttext.load_model(str(self.path))
        model_labels = [label.removeprefix(LABEL_PREFIX) for label in self._model.get_labels()]
        if len(model_labels) < 2:
            raise ValueError(f"{self.path}: a toxicity model needs at least two labels, found {model_labels}")
        clean = sorted(label for label in model_labels if label.lower() in _CLEAN_LABEL_NAMES)
        self.labels: tuple[str, ...] = (*clean, *sorted(label for label in model_labels if label not in clean))
        if toxic_labels is None:
            toxic_labels = [label for label in self.labels if label not in clean]
        unknown = set(toxic_labels) - set(self.labels)
        if unknown:
            raise ValueError(f"toxic labels {sorted(unknown)} are not labels of {self.path} ({self.labels})")
        self.toxic_labels: tuple[str, ...] = tuple(toxic_labels)
        self._column = {LABEL_PREFIX + label: i for i, label in enumerate(self.labels)}
        shipped = self.path.resolve() == SHIPPED_TOXICITY_MODEL.resolve()
        meta = model_metadata(self.path)
        config = meta.get("config") if isinstance(meta.get("config"), dict) else {}
        # the preprocessing it was trained with: training.json beside it says (absent: v1, the English model's)
        version = preprocess_version or str(config.get("preprocess", "v1"))  # type: ignore[union-attr]
        if version not in PREPROCESSORS:
            raise ValueError(f"{self.path}: unknown preprocessing {version!r} in training.json")
        self.preprocess_version = version
        self._preprocess = PREPROCESSORS[version]
        self._name = name or (SHIPPED_MODEL_NAME if shipped else str(meta.get("name") or self.path.stem))
        # The threshold the model card recommends for the shipped model; 0.5 for any other model.
        self.default_threshold = DEFAULT_THRESHOLD if shipped else 0.5
        self._identity: ModelIdentity | None = None

    def identity(self) -> ModelIdentity:
        if self._identity is None:
            self._identity = ModelIdentity(self._name, str(self.path), sha256_path(self.path))
        return self._identity

    def prepare_for_chunking(self, text: str) -> str:
        """v2 models see CJK characters as words, so a long Chinese page is chunked by characters."""
        return space_cjk(text) if self.preprocess_version == "v2" else text

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        if not len(texts):
            return out
        all_labels, all_probs = self._model.predict([self._preprocess(t) for t in texts], k=len(self.labels),
                                                    threshold=0.0)
        for row, (labels, probs) in enumerate(zip(all_labels, all_probs, strict=True)):
            for label, prob in zip(labels, probs, strict=True):
                out[row, self._column[label]] = prob
        # fastText's softmax adds 1e-5 before the log, so the rows sum to slightly more than 1.
        out /= out.sum(axis=1, keepdims=True)
        return out
