"""Corpora with planted near-duplicates at known Jaccard similarities (issue #4).

``make_corpus(n_pairs, n_singletons, seed)`` builds, deterministically from ``seed``:

* unrelated **singleton** documents (Zipf-distributed words from a synthetic vocabulary, in
  paragraphs), whose word 5-gram Jaccard with anything else is ~0;
* **planted pairs**, each from its own fresh base document, with a target word-5-gram Jaccard drawn
  uniformly from ``[j_min, 1]`` and one of five transformations:

  - ``edit``: a share of words replaced by random words;
  - ``insert``: random words inserted at random places;
  - ``delete``: words deleted;
  - ``shuffle``: paragraphs reordered, plus a few edits to reach the target;
  - ``boilerplate``: the same body wrapped in a page header/footer (the copy) — or, for targets
    below 0.5, two *different* bodies sharing one long boilerplate template, the hard negatives a
    crawl is full of.

The realised similarity of every pair is measured exactly (``true_jaccard`` on the shingle sets,
the same word 5-grams the stage uses) and stored with the pair; the targets only spread the pairs
over the range. Document ids are shuffled so that the base is not always the smaller id.

Usage as a script: ``python bench/neardup_corpus.py --pairs 2000 --singletons 8000 --out corpus.jsonl``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from toxsieve.pipelines.stages.minhash import true_jaccard

KINDS = ("edit", "insert", "delete", "shuffle", "boilerplate")
_SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "si", "de", "po", "ga", "fe", "zu", "ri", "ba", "xo",
              "li", "mo", "nu", "te", "sa", "ke", "do", "pi", "ve", "ho", "ju", "wa", "qe", "ny"]


@dataclass(frozen=True)
class PlantedPair:
    a: str
    b: str
    kind: str
    target: float
    jaccard: float  # measured on word 5-gram shingle sets


@dataclass
class Corpus:
    docs: dict[str, str] = field(default_factory=dict)  # doc_id -> text
    pairs: list[PlantedPair] = field(default_factory=list)

    def write_jsonl(self, path: Path, compress: bool = False) -> Path:
        opener = gzip.open if compress else open
        with opener(path, "wt", encoding="utf-8") as fh:  # type: ignore[operator]
            for doc_id in sorted(self.docs):
                fh.write(json.dumps({"id": doc_id, "text": self.docs[doc_id]}) + "\n")
        return path


class _Words:
    """A synthetic vocabulary with Zipf(1.1) frequencies, sampled with a seeded RNG."""

    def __init__(self, rng: random.Random, size: int = 40_000) -> None:
        seen: set[str] = set()
        words: list[str] = []
        while len(words) < size:
            w = "".join(rng.choice(_SYLLABLES) for _ in range(rng.choice((1, 2, 2, 3, 3, 4))))
            if w not in seen:
                seen.add(w)
                words.append(w)
        self.words = words
        weights = [1.0 / (i + 1) ** 1.1 for i in range(size)]
        total = sum(weights)
        acc, self.cum = 0.0, []
        for w8 in weights:
            acc += w8 / total
            self.cum.append(acc)
        self.rng = rng

    def sample(self, k: int) -> list[str]:
        return self.rng.choices(self.words, cum_weights=self.cum, k=k)


Doc = list[list[str]]  # paragraphs of words


def _render(doc: Doc) -> str:
    paras = []
    for para in doc:
        if para:
            text = " ".join(para)
            paras.append(text[:1].upper() + text[1:] + ".")
    return "\n\n".join(paras)


def _flat(doc: Doc) -> list[str]:
    return [w for p in doc for w in p]


def _reflow(words: list[str], like: Doc) -> Doc:
    """Cut ``words`` into paragraphs with the same proportions as ``like``."""
    sizes = [len(p) for p in like] or [len(words)]
    total = sum(sizes) or 1
    out, i = [], 0
    for k, s in enumerate(sizes):
        n = len(words) - i if k == len(sizes) - 1 else round(s * len(words) / total)
        out.append(words[i:i + n])
        i += n
    return [p for p in out if p]


class _Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.words = _Words(self.rng)
        self.templates = [self._doc(60, 160) for _ in range(8)]  # shared boilerplate

    def _doc(self, lo: int = 150, hi: int = 700) -> Doc:
        n = self.rng.randint(lo, hi)
        words = self.words.sample(n)
        paras, i = [], 0
        while i < n:
            k = self.rng.randint(25, 90)
            paras.append(words[i:i + k])
            i += k
        return paras

    def _edit(self, doc: Doc, rate: float) -> Doc:
        return [[self.words.sample(1)[0] if self.rng.random() < rate else w for w in p] for p in doc]

    def variant(self, base: Doc, kind: str, target: float) -> tuple[Doc, Doc]:
        """(first, second) documents of a pair of the given kind near the target Jaccard."""
        rng = self.rng
        q = 2 * target / (1 + target)  # share of base 5-grams that must survive (J = q / (2 - q))
        if kind == "edit":
            return base, self._edit(base, 1 - q ** (1 / 5))
        if kind == "insert":
            words, out = _flat(base), []
            rate = (1 - q ** (1 / 4)) if q < 1 else 0.0
            for w in words:
                out.append(w)
                if rng.random() < rate:
                    out.extend(self.words.sample(1))
            return base, _reflow(out, base)
        if kind == "delete":
            words = _flat(base)
            rate = (1 - q ** (1 / 5)) if q < 1 else 0.0
            kept = [w for w in words if rng.random() >= rate] or words[:1]
            return base, _reflow(kept, base)
        if kind == "shuffle":
            shuffled = list(base)
            rng.shuffle(shuffled)
            # each paragraph boundary breaks ~4 shingles; edit the rest of the way to the target
            n = max(len(_flat(base)) - 4, 1)
            lost = min(4 * (len(base) - 1) / n, 0.99)
            rest = max(q / (1 - lost), 0.0) if lost < 1 else 1.0
            rate = 1 - min(rest, 1.0) ** (1 / 5)
            return base, self._edit(shuffled, rate)
        if kind == "boilerplate":
            template = rng.choice(self.templates)
            body = len(_flat(base))
            if target >= 0.5:
                # the same body, one copy wrapped in boilerplate: J ≈ body / (body + boiler)
                n_b = int(round(body * (1 / target - 1)))
                shared = _flat(template) * (n_b // max(len(_flat(template)), 1) + 1)
                head, tail = shared[: n_b // 2], shared[n_b // 2: n_b]
                return base, [p for p in (head, *base, tail) if p]
            # two different bodies sharing boilerplate: J ≈ B / (B + 2 * body)
            other = self._doc(len(_flat(base)), len(_flat(base)) + 1)
            shared = _flat(template) * 20
            n_b = int(2 * body * target / (1 - target))
            boiler = shared[:n_b]
            return [boiler[: n_b // 2], *base, boiler[n_b // 2:]], [boiler[: n_b // 2], *other, boiler[n_b // 2:]]
        raise ValueError(kind)


def make_corpus(n_pairs: int, n_singletons: int, seed: int = 0, j_min: float = 0.3,
                kinds: tuple[str, ...] = KINDS, measure: bool = True) -> Corpus:
    """A corpus of ``2 * n_pairs + n_singletons`` documents with the planted pairs listed."""
    gen = _Generator(seed)
    rng = gen.rng
    n_docs = 2 * n_pairs + n_singletons
    ids = [f"doc-{i:08d}" for i in rng.sample(range(10 * n_docs + 10), n_docs)]
    corpus = Corpus()
    it = iter(ids)
    for k in range(n_pairs):
        kind = kinds[k % len(kinds)]
        target = rng.uniform(j_min, 1.0)
        first, second = gen.variant(gen._doc(), kind, target)
        a, b = next(it), next(it)
        ta, tb = _render(first), _render(second)
        corpus.docs[a], corpus.docs[b] = ta, tb
        jac = true_jaccard(ta, tb) if measure else float("nan")
        corpus.pairs.append(PlantedPair(a, b, kind, round(target, 4), jac))
    for doc_id in it:
        corpus.docs[doc_id] = _render(gen._doc())
    return corpus


def iter_pairs_by_bin(pairs: list[PlantedPair], width: float = 0.05) -> Iterator[tuple[float, list[PlantedPair]]]:
    """Pairs grouped by true-Jaccard bin [lo, lo + width), lowest bin first."""
    bins: dict[int, list[PlantedPair]] = {}
    for p in pairs:
        bins.setdefault(min(int(p.jaccard / width), int(1 / width) - 1), []).append(p)
    for k in sorted(bins):
        yield k * width, bins[k]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--singletons", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    corpus = make_corpus(args.pairs, args.singletons, args.seed)
    corpus.write_jsonl(args.out, compress=args.out.suffix == ".gz")
    pairs = args.out.with_suffix(".pairs.json")
    pairs.write_text(json.dumps([p.__dict__ for p in corpus.pairs]))
    print(f"{len(corpus.docs)} documents, {len(corpus.pairs)} planted pairs -> {args.out}, {pairs}")


if __name__ == "__main__":
    main()
