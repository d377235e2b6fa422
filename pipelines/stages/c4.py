"""C4's rules (Raffel et al. 2020, section 2.2; TFDS ``c4_utils``), as the ``c4`` preset.

Line rules, applied in C4's order to each line: drop a line with a word over ``max_word_length``
characters, without terminal punctuation (or ending in an ellipsis), with fewer than
``min_words_per_line`` words, mentioning "javascript", or with a cookie/terms-of-use phrase. On the
lines that pass the first three, "lorem ipsum" or a curly bracket removes the whole document, and
the document needs ``min_sentences`` sentences in the surviving lines. With ``clean_lines`` a kept
document continues with only its surviving lines (C4 did this); ``lines_*`` record what each rule
took. Defaults are C4's. English-centric limits: terminal punctuation includes the CJK, Devanagari
and Arabic marks, words per line use comparable units (``pipelines/stages/text.py``), sentences
are counted from terminal marks (not nltk's punkt); "javascript" and the policy phrases are English.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from toxsieve.pipelines.stages import text as T
from toxsieve.pipelines.stages.base import DeclaredStage, Signal, StageConfig, check_mode, check_non_negative

POLICY_PHRASES = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")


@dataclass(frozen=True)
class C4Config(StageConfig):
    # annotate: on the crawl samples it flags 16 of 72 pages, real short articles among them (docs/quality.md)
    enabled: bool = True
    mode: str = "annotate"
    clean_lines: bool = True  # a kept document continues with the surviving lines only
    # line rules (measurement: they decide which lines survive)
    terminal_punctuation: bool = True
    min_words_per_line: float = 3
    max_word_length: int = 1000
    javascript: bool = True
    policy: bool = True
    # document rules (decisions)
    min_sentences: int = 5
    lorem_ipsum: bool = True
    curly_bracket: bool = True

    def validate(self, key: str) -> None:
        check_mode(key, self)
        for name in ("min_words_per_line", "max_word_length", "min_sentences"):
            check_non_negative(f"{key}.{name}", getattr(self, name))


def _line_verdicts(text: str, cfg: C4Config) -> tuple[list[tuple[str, str | None]], bool, bool]:
    """Each line with the rule that drops it (None: kept); lorem ipsum / curly bracket seen."""
    out: list[tuple[str, str | None]] = []
    lorem = curly = False
    for line in T.lines(text):
        tokens = T.line_words(line)
        if cfg.max_word_length and any(len(w) > cfg.max_word_length for w in line.split()):
            out.append((line, "long_word"))
            continue
        if cfg.terminal_punctuation and not T.ends_with_terminal_punctuation(line):
            out.append((line, "no_terminal_punct"))
            continue
        if T.word_units(tokens) < cfg.min_words_per_line:
            out.append((line, "too_few_words"))
            continue
        lower = line.lower()
        lorem = lorem or "lorem ipsum" in lower
        curly = curly or "{" in line
        if cfg.javascript and "javascript" in lower:
            out.append((line, "javascript"))
            continue
        if cfg.policy and any(p in lower for p in POLICY_PHRASES):
            out.append((line, "policy"))
            continue
        out.append((line, None))
    return out, lorem, curly


def score(doc: Any, cfg: C4Config) -> dict[str, Any]:
    verdicts, lorem, curly = _line_verdicts(doc.text or "", cfg)
    kept = [line for line, rule in verdicts if rule is None]
    counts = {rule: 0 for rule in ("long_word", "no_terminal_punct", "too_few_words", "javascript", "policy")}
    for _, rule in verdicts:
        if rule is not None:
            counts[rule] += 1
    return {
        "lines": len(verdicts),
        "lines_kept": len(kept),
        **{f"lines_{rule}": n for rule, n in counts.items()},
        "chars_kept_frac": round(sum(map(len, kept)) / max(1, sum(len(line) for line, _ in verdicts)), 4),
        "sentences": sum(T.count_sentences(line) for line in kept),
        "lorem_ipsum": lorem,
        "curly_bracket": curly,
    }


def decide(signals: Mapping[str, Any], cfg: C4Config) -> Any:
    if cfg.lorem_ipsum and signals["lorem_ipsum"]:
        return STAGE.remove("c4_lorem_ipsum", matched=("lorem ipsum",), detail="'lorem ipsum' in a line")
    if cfg.curly_bracket and signals["curly_bracket"]:
        return STAGE.remove("c4_curly_bracket", matched=("{",), detail="a curly bracket in a line")
    if signals["sentences"] < cfg.min_sentences:
        return STAGE.remove("c4_too_few_sentences", score=signals["sentences"], threshold=cfg.min_sentences,
                            detail=f"{signals['sentences']} sentences in the lines C4's rules keep < "
                                   f"quality.c4.min_sentences={cfg.min_sentences}")
    if cfg.clean_lines and signals["lines_kept"] == 0:
        return STAGE.remove("c4_no_lines_kept", score=0.0, detail="no line passes C4's line rules")
    return None


def rewrite(doc: Any, cfg: C4Config) -> str:
    if not cfg.clean_lines:
        return doc.text or ""
    verdicts, _, _ = _line_verdicts(doc.text or "", cfg)
    return "\n".join(line for line, rule in verdicts if rule is None)


STAGE = DeclaredStage(
    name="c4",
    transform="FilterC4Rules",
    doc=__doc__ or "",
    config=C4Config,
    reasons=(
        ("c4_lorem_ipsum", "'lorem ipsum' in the text"),
        ("c4_curly_bracket", "a curly bracket in the text (code, templates)"),
        ("c4_too_few_sentences", "fewer than min_sentences sentences in the lines that survive the line rules"),
        ("c4_no_lines_kept", "clean_lines is on and no line survives the line rules"),
    ),
    signals=(
        Signal("lines", pa.int32(), "non-blank lines"),
        Signal("lines_kept", pa.int32(), "lines that pass every line rule"),
        Signal("lines_long_word", pa.int32(), "lines dropped: a word over max_word_length characters"),
        Signal("lines_no_terminal_punct", pa.int32(), "lines dropped: no terminal punctuation, or an ellipsis"),
        Signal("lines_too_few_words", pa.int32(), "lines dropped: fewer than min_words_per_line words"),
        Signal("lines_javascript", pa.int32(), "lines dropped: mention 'javascript'"),
        Signal("lines_policy", pa.int32(), "lines dropped: cookie / terms-of-use / privacy-policy phrases"),
        Signal("chars_kept_frac", pa.float64(), "share of line characters in the lines kept"),
        Signal("sentences", pa.int32(), "sentences in the kept lines"),
        Signal("lorem_ipsum", pa.bool_(), "'lorem ipsum' in a line that passed the first three line rules"),
        Signal("curly_bracket", pa.bool_(), "'{' in a line that passed the first three line rules"),
    ),
    score=score,
    decide=decide,
    measure=("clean_lines", "terminal_punctuation", "min_words_per_line", "max_word_length", "javascript", "policy"),
    rewrite=rewrite,
)
