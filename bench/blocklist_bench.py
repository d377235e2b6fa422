"""Blocklist matching speed: Aho–Corasick word lists vs a naive regex alternation, URL lookups,
next to the other CPU stages (normalisation, LID) on the same documents, in one run.

    .venv/bin/python bench/blocklist_bench.py [--repeat 5] [--out docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import os
import re
import sys
from pathlib import Path

from toxsieve.classifiers.langid import FastTextLanguageIdentifier
from toxsieve.pipelines.config import InputConfig
from toxsieve.pipelines.document import Document
from toxsieve.pipelines.io.readers import detect_format, read_shard
from toxsieve.pipelines.stages.blocklists import UNSPACED_LANGUAGES, UrlBlocklist, WordBlocklist, _fold
from toxsieve.pipelines.stages.extract import html_to_text, normalize_text

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script: make `bench` importable

from bench.common import cpu_model, median_time, write_section  # noqa: E402

START, END = "<!-- bench:blocklists:start -->", "<!-- bench:blocklists:end -->"


def sample_documents() -> list[Document]:
    docs = []
    for path in sorted(glob.glob(str(REPO / "tests/fixtures/crawl/*/*.warc.gz"))):
        with open(path, "rb") as fh:
            for rec in read_shard(fh, path, detect_format(path), InputConfig()):
                if isinstance(rec, Document) and rec.html is not None and rec.removal is None:
                    text = normalize_text(html_to_text(rec.html))
                    if text:
                        docs.append(Document(rec.doc_id, path, 0, "warc", url=rec.url, text=text))
    return docs



def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", default=str(REPO / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    docs = sample_documents()
    lid = FastTextLanguageIdentifier()
    langs = [lang for lang, _ in lid.predict([d.text or "" for d in docs])]
    texts = [d.text or "" for d in docs]
    mb = sum(len(t.encode()) for t in texts) / 1e6
    words = WordBlocklist.load(["builtin:ldnoobw"])
    # naive alternative: one regex alternation per language with the same \W boundaries
    regexes: dict[str, re.Pattern[str]] = {}
    for lang in words.languages:
        terms = sorted(words._terms[lang], key=len, reverse=True)  # noqa: SLF001 - bench reads the same terms
        if terms:
            alternation = "(?:" + "|".join(map(re.escape, terms)) + ")"
            regexes[lang] = re.compile(alternation if lang in UNSPACED_LANGUAGES
                                       else r"(?<!\w)" + alternation + r"(?!\w)")
    urls = UrlBlocklist.load(["builtin:ut1"], url_words_dir="builtin:url_words")
    url_list = [d.url or "" for d in docs] * 20

    def run_ac() -> int:
        return sum((m.n_matches if (m := words.scan(t, lang)) else 0) for t, lang in zip(texts, langs, strict=True))

    def run_regex() -> int:
        return sum(len(rx.findall(_fold(t))) if (rx := regexes.get(lang)) else 0
                   for t, lang in zip(texts, langs, strict=True))

    results = {
        "word lists, Aho–Corasick (ours)": median_time(run_ac, args.repeat),
        "word lists, regex alternation": median_time(run_regex, args.repeat),
        "normalize_text": median_time(lambda: [normalize_text(t) for t in texts], args.repeat),
        "language ID (fastText)": median_time(lambda: lid.predict(texts), args.repeat),
    }
    url_s = median_time(lambda: [urls.match(u) for u in url_list], args.repeat)
    rows = [f"| {name} | {mb / s:.1f} | {len(texts) / s:,.0f} |" for name, s in results.items()]
    ratio = results["word lists, regex alternation"] / results["word lists, Aho–Corasick (ours)"]
    cpu = cpu_model()
    report = "\n".join([
        START,
        "## Blocklists (issue #5)",
        "",
        f"Machine: {os.cpu_count()} cores, {cpu}; {dt.date.today().isoformat()}. Command: "
        "`.venv/bin/python bench/blocklist_bench.py`. One process, one core; median of "
        f"{args.repeat} passes over the {len(texts)} extracted documents of the crawl sample "
        f"({mb:.2f} MB of text, 8 languages), each language's LDNOOBW list.",
        "",
        "| step | MB/s per core | docs/s |",
        "|---|---|---|",
        *rows,
        "",
        f"Aho–Corasick is {ratio:.1f}× the regex alternation (same terms, same boundaries; total matches "
        f"{run_ac()} vs {run_regex()}). URL checks (host + parents + URL prefixes + URL words, "
        f"4.56M domains): {len(url_list) / url_s:,.0f} URLs/s per core. Neither blocklist stage is the "
        "slowest CPU stage: HTML extraction (see docs/extraction.md) and language ID are slower.",
        END,
    ])
    write_section(Path(args.out), START, END, report)
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
