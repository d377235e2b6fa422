"""Benchmark HTML main-text extraction: resiliparse vs trafilatura on WARC files.

Usage: .venv/bin/python bench/extractors.py [--passes N] [WARC ...]

With no WARC arguments it uses the *.warc.gz files under tests/fixtures/crawl
(if that directory exists), else the shared Common Crawl / wget samples.
Standalone on purpose: it imports nothing from the project.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fastwarc.warc import ArchiveIterator, WarcRecordType
from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.encoding import bytes_to_str, detect_encoding

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "crawl"
SHARED = Path("/work/shared/data/crawl")
SHARED_WARCS = [
    "resiliparse_cc2020/warcfile.warc.gz",
    "dolma_tests/warc__sample-0000.warc.gz",
    "dolma_tests/warc__sample-0001.warc.gz",
    "whirlwind_cc2024/whirlwind.warc.gz",
]
NAV = re.compile(r"log ?in|sign ?in|cookie|privacy|menu|©|copyright|terms of", re.IGNORECASE)
WORD = re.compile(r"\w+")

Extractor = Callable[[str], str]


@dataclass
class Page:
    uri: str
    raw: bytes  # HTTP body as received (for MB/s)
    html: str  # decoded once, shared by all extractors
    wet: str | None = None  # Common Crawl WET text for the same URI, if beside the WARC


@dataclass
class Result:
    seconds: list[float] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)


def resiliparse_extract(html: str) -> str:
    return extract_plain_text(html, main_content=True)


def load_extractors() -> dict[str, Extractor]:
    extractors: dict[str, Extractor] = {"resiliparse": resiliparse_extract}
    try:
        from trafilatura import extract
    except ImportError as exc:  # e.g. lxml>=5.2 without lxml_html_clean
        print(f"WARNING: trafilatura unavailable ({exc}); skipping it", file=sys.stderr)
        return extractors

    def trafilatura_extract(html: str) -> str:
        # datatrove's defaults: favor precision, drop comments, dedup; tables kept.
        text = extract(
            html,
            favor_precision=True,
            include_comments=False,
            include_tables=True,
            deduplicate=True,
        )
        return text or ""

    extractors["trafilatura"] = trafilatura_extract
    return extractors


def load_wet(warc: Path) -> dict[str, str]:
    wet = warc.with_name(warc.name.replace(".warc.gz", ".warc.wet.gz"))
    if wet == warc or not wet.exists():
        return {}
    out: dict[str, str] = {}
    with open(wet, "rb") as fh:
        for rec in ArchiveIterator(fh, record_types=WarcRecordType.conversion):
            uri = rec.headers.get("WARC-Target-URI") or ""
            out[uri] = rec.reader.read().decode("utf-8", errors="replace")
    return out


def load_pages(paths: list[Path]) -> list[Page]:
    pages: list[Page] = []
    for path in paths:
        wet = load_wet(path)
        with open(path, "rb") as fh:
            for rec in ArchiveIterator(fh, record_types=WarcRecordType.response):
                http = rec.http_headers
                if http is None or http.status_code != 200:
                    continue
                if "html" not in (http.get("Content-Type") or "").lower():
                    continue
                raw = rec.reader.read()
                html = bytes_to_str(raw, detect_encoding(raw) or "utf-8")
                uri = rec.headers.get("WARC-Target-URI") or ""
                pages.append(Page(uri, raw, html, wet.get(uri)))
    return pages


def boilerplate_fraction(text: str) -> float:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    bad = sum(1 for ln in lines if len(ln) < 30 or NAV.search(ln))
    return bad / len(lines) if lines else 0.0


def overlap(text: str, ref: str) -> tuple[float, float]:
    got, want = Counter(WORD.findall(text.lower())), Counter(WORD.findall(ref.lower()))
    common = sum((got & want).values())
    return common / max(sum(got.values()), 1), common / max(sum(want.values()), 1)


def run(pages: list[Page], extractors: dict[str, Extractor], passes: int) -> dict[str, Result]:
    results = {name: Result() for name in extractors}
    for i in range(passes):  # interleave extractors per pass to share any machine drift
        for name, fn in extractors.items():
            t0 = time.perf_counter()
            texts = [fn(p.html) for p in pages]
            results[name].seconds.append(time.perf_counter() - t0)
            if i == 0:
                results[name].texts = texts
    return results


def cell(text: str, n: int = 300) -> str:
    return text[:n].replace("|", "\\|").replace("\n", " ⏎ ") or "_(empty)_"


def report(pages: list[Page], results: dict[str, Result], passes: int) -> None:
    mb = sum(len(p.raw) for p in pages) / 1e6
    print(f"{len(pages)} HTML pages, {mb:.2f} MB of HTML, median of {passes} passes\n")
    wet_idx = [i for i, p in enumerate(pages) if p.wet]
    head = (
        "| extractor | docs | pages/s | MB/s | total chars | median chars | empty "
        "| boilerplate lines (mean/page) | WET word P / R |"
    )
    print(head + "\n|" + "---|" * head.count(" | ") + "---|")
    for name, res in results.items():
        sec = statistics.median(res.seconds)
        lens = [len(t) for t in res.texts]
        nonempty = [t for t in res.texts if t.strip()]
        bp = statistics.mean(boilerplate_fraction(t) for t in nonempty) if nonempty else 0.0
        pr = [overlap(res.texts[i], pages[i].wet or "") for i in wet_idx]
        wet = " ; ".join(f"{p:.2f} / {r:.2f}" for p, r in pr) or "n/a"
        print(
            f"| {name} | {len(pages)} | {len(pages) / sec:,.0f} | {mb / sec:.1f} "
            f"| {sum(lens):,} | {statistics.median(lens):,.0f} "
            f"| {len(res.texts) - len(nonempty)} | {bp:.2f} | {wet} |"
        )
    for i in wet_idx:
        print(f"\nWET reference for {pages[i].uri}: {len(pages[i].wet or ''):,} chars")
    picks = (wet_idx[:1] + [0, len(pages) // 2])[:2] if wet_idx else [0, len(pages) // 2]
    names = list(results)
    print("\n| page | " + " | ".join(names) + " |\n|---|" + "---|" * len(names))
    for i in dict.fromkeys(picks):
        row = " | ".join(cell(results[n].texts[i]) for n in names)
        print(f"| {pages[i].uri} | {row} |")


def default_warcs() -> list[Path]:
    if FIXTURES.is_dir():
        return sorted(FIXTURES.rglob("*.warc.gz"))
    return [SHARED / p for p in SHARED_WARCS]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("warcs", nargs="*", type=Path)
    ap.add_argument("--passes", type=int, default=5)
    args = ap.parse_args()
    pages = load_pages(args.warcs or default_warcs())
    if not pages:
        sys.exit("no HTML 200 response records found")
    extractors = load_extractors()
    report(pages, run(pages, extractors, args.passes), args.passes)


if __name__ == "__main__":
    main()
