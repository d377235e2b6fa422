"""Identity-term swaps: counterfactual training augmentation and the identity-swap evaluation.

A classifier trained on web comments learns that words like "gay", "muslim" or "black" predict
toxicity, because toxic comments mention them more often; it then flags neutral text about those
groups. Adding to the training set a copy of each text with identity terms swapped (same label)
decouples the term from the label; scoring an identity-swapped copy of the held-out split measures
how much a model still depends on them. The pairs are symmetric (a -> b and b -> a), whole words,
case-preserving. They are a deliberate, small list: swaps are grammatical in most contexts.
"""

from __future__ import annotations

import re

IDENTITY_PAIRS: tuple[tuple[str, str], ...] = (
    # sexual orientation and gender identity
    ("gay", "straight"), ("gays", "straights"), ("lesbian", "heterosexual"), ("lesbians", "heterosexuals"),
    ("homosexual", "bisexual"), ("homosexuals", "bisexuals"), ("transgender", "cisgender"),
    # religion
    ("muslim", "christian"), ("muslims", "christians"), ("islam", "christianity"), ("islamic", "biblical"),
    ("mosque", "church"), ("mosques", "churches"), ("jew", "catholic"), ("jews", "catholics"),
    ("jewish", "protestant"), ("judaism", "catholicism"), ("hindu", "buddhist"), ("hindus", "buddhists"),
    # race, ethnicity, origin
    ("black", "white"), ("blacks", "whites"), ("african", "european"), ("africans", "europeans"),
    ("asian", "latino"), ("asians", "latinos"), ("mexican", "canadian"), ("mexicans", "canadians"),
    ("arab", "swede"), ("arabs", "swedes"), ("immigrant", "citizen"), ("immigrants", "citizens"),
    # gender
    ("women", "men"), ("woman", "man"), ("girls", "boys"), ("girl", "boy"), ("female", "male"),
    ("females", "males"), ("feminist", "traditionalist"), ("feminists", "traditionalists"),
)

_SWAP: dict[str, str] = {}
for _a, _b in IDENTITY_PAIRS:
    _SWAP.setdefault(_a, _b)
    _SWAP.setdefault(_b, _a)
_TERM = re.compile(r"\b(" + "|".join(sorted(_SWAP, key=len, reverse=True)) + r")\b", re.IGNORECASE)


def has_identity_term(text: str) -> bool:
    return _TERM.search(text) is not None


def swap_identity_terms(text: str) -> str:
    """Replace every identity term by its pair, keeping the case pattern (gay/Gay/GAY)."""
    return _TERM.sub(_swap_match, text)


def _swap_match(match: re.Match[str]) -> str:
    word = match.group(0)
    swapped = _SWAP[word.lower()]
    if word.isupper() and len(word) > 1:
        return swapped.upper()
    if word[0].isupper():
        return swapped[0].upper() + swapped[1:]
    return swapped
