"""Evidence for the default word-list policy: how often each rule removes clean vs toxic text.

    .venv/bin/python bench/wordlist_policy.py --labeled PATH/combined_binary_dedup.csv.gz \
        [--documents 'out/demo/kept/*.parquet'] [--out docs/blocklists.md]

Labeled data: CSV with `text` and a binary `label` (1 = toxic), e.g. the web-comments union
described in ../shared/data/MANIFEST.md (not shipped: it is evaluation data here). Documents:
Parquet with `text` and `language` (e.g. the kept set of a run with word lists in annotate mode).
"""

from __future__ import annotations

import argparse
import csv
import glob
import gzip
import io
import sys
from collections.abc import Iterator

from toxsieve.pipelines.stages.blocklists import WordBlocklist, WordMatches
from toxsieve.pipelines.stages.word_blocklist import WordPolicyConfig, removes

csv.field_size_limit(sys.maxsize)

POLICIES: dict[str, tuple[WordPolicyConfig, str]] = {
    "c4 (any match)": (WordPolicyConfig(), "c4"),
    "distinct>=2": (WordPolicyConfig(min_distinct_terms=2, min_match_fraction=1.0, min_matches=10**9), "default"),
    "distinct>=3": (WordPolicyConfig(min_distinct_terms=3, min_match_fraction=1.0, min_matches=10**9), "default"),
    "distinct>=3 or (>=2 matches and >=0.5%)": (WordPolicyConfig(min_match_fraction=0.005), "default"),
    "distinct>=3 or (>=2 matches and >=2%)": (WordPolicyConfig(min_distinct_terms=3, min_match_fraction=0.02),
                                               "default"),
    "distinct>=4 or (>=2 matches and >=2%)": (WordPolicyConfig(min_distinct_terms=4, min_match_fraction=0.02),
                                               "default"),
    "distinct>=4 or (>=3 matches and >=2%)": (WordPolicyConfig(min_distinct_terms=4, min_match_fraction=0.02,
                                                               min_matches=3), "default"),
}


def labeled_rows(path: str) -> Iterator[tuple[str, int]]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as raw, io.TextIOWrapper(raw, encoding="utf-8", errors="replace") as fh:  # type: ignore[arg-type]
        for row in csv.DictReader(fh):
            yield row["text"], int(float(row["label"]))


def rates(matches: list[WordMatches]) -> dict[str, float]:
    out = {}
    for name, (policy, preset) in POLICIES.items():
        removed = sum(1 for m in matches if m.n_matches and removes(m.distinct, m.n_matches, m.fraction, policy, preset))
        out[name] = removed / len(matches) if matches else 0.0
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--labeled", required=True)
    parser.add_argument("--documents", default=None)
    parser.add_argument("--limit", type=int, default=40_000)
    args = parser.parse_args()
    words = WordBlocklist.load(["builtin:ldnoobw"])
    by_label: dict[int, list[WordMatches]] = {0: [], 1: []}
    lengths: dict[int, list[int]] = {0: [], 1: []}
    for i, (text, label) in enumerate(labeled_rows(args.labeled)):
        if i >= args.limit:
            break
        m = words.scan(text, "en")
        assert m is not None
        by_label[label].append(m)
        lengths[label].append(m.n_tokens)
    print(f"labeled rows: clean {len(by_label[0])}, toxic {len(by_label[1])} "
          f"(median tokens {sorted(lengths[0])[len(lengths[0]) // 2]} / {sorted(lengths[1])[len(lengths[1]) // 2]})")
    clean, toxic = rates(by_label[0]), rates(by_label[1])
    docs: list[WordMatches] = []
    if args.documents:
        import pyarrow.parquet as pq

        for path in sorted(p for pattern in args.documents.split(",") for p in glob.glob(pattern)):
            for row in pq.read_table(path, columns=["text", "language"]).to_pylist():
                m = words.scan(row["text"], row["language"])
                if m is not None:
                    docs.append(m)
    doc_rates = rates(docs)
    print("\n| rule | clean comments removed | toxic comments removed | web documents removed |")
    print("|---|---|---|---|")
    for name in POLICIES:
        print(f"| {name} | {clean[name]:.1%} | {toxic[name]:.1%} | "
              f"{doc_rates[name]:.1%} (of {len(docs)}) |")
    any_match_clean = sum(1 for m in by_label[0] if m.n_matches) / max(1, len(by_label[0]))
    print(f"\nclean comments with at least one listed word: {any_match_clean:.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
