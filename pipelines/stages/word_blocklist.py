"""Word blocklists: per-language lists (LDNOOBW by default) matched in the extracted text.

Every document whose language has a list gets its matches recorded (the distinct terms, the number
of matches, the share of its tokens they cover); the policy decides which documents go: the default
asks for several distinct terms or a dense page (chosen from data, ``docs/blocklists.md``), the
``c4`` preset removes on any match, as C4 did. The matcher (Aho-Corasick, word boundaries in spaced
scripts) is ``pipelines/stages/blocklists.py::WordBlocklist``, loaded once per worker process.

Config ``blocklists.words`` and columns ``blocklist_*``: the keys and columns this stage had before
stages were declared.
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
    check_choice,
    check_mode,
    check_positive,
    check_unit,
)

PRESETS = ("default", "c4")


@dataclass(frozen=True)
class WordPolicyConfig:
    """When a document's word-list matches remove it (preset ``default``)."""

    # Chosen from data (docs/blocklists.md): vs C4's any-match rule, 8x fewer clean comments and
    # 6x fewer web pages removed, while a page dense with listed words still goes.
    min_distinct_terms: int = 4  # this many different listed terms remove the document
    min_match_fraction: float = 0.02  # or this fraction of its tokens ...
    min_matches: int = 2  # ... with at least this many matches

    def validate(self, key: str) -> None:
        check_positive(f"{key}.min_distinct_terms", self.min_distinct_terms)
        check_unit(f"{key}.min_match_fraction", self.min_match_fraction)
        check_positive(f"{key}.min_matches", self.min_matches)


@dataclass(frozen=True)
class WordBlocklistConfig(StageConfig):
    enabled: bool = True
    mode: str = "filter"  # filter | annotate (record matches, remove nothing)
    preset: str = "default"  # default (policy below) | c4 (any match removes, as C4 did)
    lists: tuple[str, ...] = ("builtin:ldnoobw",)  # directories of one file per language code
    extra_terms: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # language → terms
    min_unspaced_term_chars: int = 2  # zh/ja/th entries shorter than this are ignored (see docs)
    policy: WordPolicyConfig = field(default_factory=WordPolicyConfig)
    per_language: Mapping[str, WordPolicyConfig] = field(default_factory=dict)

    def validate(self, key: str = "blocklists.words") -> None:
        check_mode(key, self)
        check_choice(f"{key}.preset", self.preset, PRESETS)
        check_positive(f"{key}.min_unspaced_term_chars", self.min_unspaced_term_chars)
        self.policy.validate(f"{key}.policy")
        for lang, policy in self.per_language.items():
            policy.validate(f"{key}.per_language.{lang}")

    def policy_for(self, language: str | None) -> WordPolicyConfig:
        return self.per_language.get(language or "", self.policy)


def load(cfg: WordBlocklistConfig) -> Any:
    from toxsieve.pipelines.stages.blocklists import WordBlocklist

    return WordBlocklist.load(cfg.lists, dict(cfg.extra_terms), cfg.min_unspaced_term_chars)


def score(doc: Any, cfg: WordBlocklistConfig, words: Any) -> dict[str, Any]:
    """The matches of the document's language list; every signal null when there is no list for it."""
    matches = words.scan(doc.text or "", doc.language)
    if matches is None:
        return {"terms": None, "match_count": None, "match_fraction": None}
    return {"terms": list(matches.terms) or None, "match_count": matches.n_matches,
            "match_fraction": round(matches.fraction, 6)}


def removes(distinct: int, n_matches: int, fraction: float, policy: WordPolicyConfig, preset: str) -> bool:
    if preset == "c4":
        return n_matches >= 1
    if distinct >= policy.min_distinct_terms:
        return True
    return n_matches >= policy.min_matches and fraction >= policy.min_match_fraction


def decide(signals: Mapping[str, Any], cfg: WordBlocklistConfig) -> Any:
    """The one word-list rule, on the stored signals; None when there was no list for the language
    (null signals) or the policy keeps the document."""
    n_matches = signals["match_count"]
    if not n_matches:
        return None
    terms = tuple(signals["terms"] or ())
    fraction = float(signals["match_fraction"])
    policy = cfg.policy_for(signals["language"])
    if not removes(len(terms), n_matches, fraction, policy, cfg.preset):
        return None
    threshold = 1.0 if cfg.preset == "c4" else float(policy.min_distinct_terms)
    return STAGE.remove(
        "word_blocklist", score=float(len(terms)), threshold=threshold, matched=terms,
        detail=(f"{len(terms)} distinct listed term(s), {n_matches} match(es), {fraction:.2%} of tokens "
                f"[{cfg.preset}]: {', '.join(terms)}"),
    )


STAGE = DeclaredStage(
    name="word_blocklist",
    transform="ApplyWordBlocklists",
    doc=__doc__ or "",
    config=WordBlocklistConfig,
    reasons=(("word_blocklist", "too many blocklisted words in the text for the policy"),),
    signals=(
        Signal("terms", pa.list_(pa.field("element", pa.string())), "distinct listed terms found in the text"),
        Signal("match_count", pa.int32(), "matches of listed terms (leftmost-longest, non-overlapping)"),
        Signal("match_fraction", pa.float32(), "tokens covered by matches / tokens (characters in unspaced scripts)"),
    ),
    score=score,
    decide=decide,
    load=load,
    # the list and how it is matched change the stored matches: redecide refuses them
    measure=("lists", "extra_terms", "min_unspaced_term_chars"),
    section="blocklists.words",
    column_prefix="blocklist_",
)
