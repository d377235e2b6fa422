"""URL blocklists: UT1 domain/URL lists (host and every parent domain), an allowlist that wins, and
banned words inside the URL (the datatrove / RefinedWeb rule).

The stage runs on the record's URL before ExtractText (``phase="url"``), so a blocked page is never
parsed. The matcher (a sorted array of 64-bit hashes for millions of domains, Aho-Corasick for URL
sub-words) is ``pipelines/stages/blocklists.py::UrlBlocklist``, loaded once per worker process.
``score`` records the first rule the URL trips (the list entry and its category, or the banned
words); ``decide`` removes on any recorded match. In ``annotate`` mode the match is recorded and the
page goes on through extraction and every later stage.

Config ``blocklists.url`` and columns ``url_blocklist_category``, ``url_blocklist_entry``,
``url_banned_words``: the keys and columns this stage had before stages were declared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from toxsieve.pipelines.stages.base import DeclaredStage, Signal, StageConfig, check_mode, check_positive


@dataclass(frozen=True)
class UrlBlocklistConfig(StageConfig):
    enabled: bool = True
    mode: str = "filter"  # filter | annotate (record the match, remove nothing)
    # UT1-format directories: <dir>/<category>/domains and /urls (plain, .gz or .zst);
    # builtin:ut1 is the shipped copy (see pipelines/lists/ut1/README.md)
    lists: tuple[str, ...] = ("builtin:ut1",)
    categories: tuple[str, ...] = ()  # only these categories; empty = every category found
    allowlist: tuple[str, ...] = ()  # domains (and their subdomains) never blocked: wins over lists
    banned_url_words: bool = True  # banned words inside the URL (datatrove / RefinedWeb rule)
    url_words_dir: str = "builtin:url_words"
    soft_word_threshold: int = 2  # soft-banned URL words needed to block

    def validate(self, key: str = "blocklists.url") -> None:
        check_mode(key, self)
        check_positive(f"{key}.soft_word_threshold", self.soft_word_threshold)


def load(cfg: UrlBlocklistConfig) -> Any:
    from toxsieve.pipelines.stages.blocklists import UrlBlocklist

    return UrlBlocklist.load(cfg.lists, cfg.categories, cfg.allowlist,
                             cfg.url_words_dir if cfg.banned_url_words else None, cfg.soft_word_threshold)


def score(doc: Any, cfg: UrlBlocklistConfig, blocklist: Any) -> dict[str, Any]:
    """The first rule the URL trips: a list entry with its category, or the banned words; nulls if none."""
    match = blocklist.match(doc.url)
    if match is None:
        return {"blocklist_category": None, "blocklist_entry": None, "banned_words": None}
    return {"blocklist_category": match.category, "blocklist_entry": match.entry,
            "banned_words": list(match.words) or None}


def decide(signals: Mapping[str, Any], cfg: UrlBlocklistConfig) -> Any:
    """Any recorded match removes: a list entry (``url_blocklisted``), else banned words (``url_banned_word``)."""
    entry = signals["blocklist_entry"]
    if entry is not None:
        return STAGE.remove("url_blocklisted", matched=(entry,),
                            detail=f"{entry} is on the UT1 '{signals['blocklist_category']}' list")
    words = tuple(signals["banned_words"] or ())
    if words:
        return STAGE.remove("url_banned_word", matched=words, detail="banned word(s) in the URL: " + ", ".join(words))
    return None


STAGE = DeclaredStage(
    name="url_blocklist",
    transform="ApplyUrlBlocklists",
    doc=__doc__ or "",
    config=UrlBlocklistConfig,
    reasons=(
        ("url_blocklisted", "host, a parent domain or the exact URL is on a blocklist"),
        ("url_banned_word", "a banned word inside the URL's host or path"),
    ),
    signals=(
        Signal("blocklist_category", pa.string(), "UT1 category of the matched list entry"),
        Signal("blocklist_entry", pa.string(), "the list entry that matched (a domain or a URL)"),
        Signal("banned_words", pa.list_(pa.field("element", pa.string())), "banned words found in the URL"),
    ),
    score=score,
    decide=decide,
    load=load,
    # every setting but enabled/mode changes what is matched: redecide refuses them
    measure=("lists", "categories", "allowlist", "banned_url_words", "url_words_dir", "soft_word_threshold"),
    section="blocklists.url",
    column_prefix="url_",
    phase="url",
)
