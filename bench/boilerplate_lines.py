"""How much boilerplate C4's line rules strip from extracted text, and how much real text they cost.

    .venv/bin/python bench/boilerplate_lines.py [WARC ...]   (default: the WARCs of the shipped crawl sample)

Labels are a DOM proxy, not human gold: a line of toxsieve's extracted text (resiliparse main
content, as ExtractText produces it) is *boilerplate* if it occurs only in the text of navigation-
like elements (nav, header, footer, aside, form, or an element whose class/id has a part menu, nav,
footer, breadcrumb, cookie, share, social, sidebar, widget, banner, copyright, subscribe, related,
login, search, pagination; but not a wrapper holding over 30 % of the page's text), *real* if it occurs only in the rest of the page, and is left out if
in both or neither. Then each line rule of ``pipelines/stages/c4.py`` (the rule code itself, with
the other rules switched off) and their combinations are applied to the labelled lines.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BOILER_CLASS = re.compile(r"(?:^|[-_\s])(?:menu|nav|navbar|navigation|footer|breadcrumbs?|cookies?|share|sharing|"
                          r"social|sidebar|widget|banner|copyright|subscribe|related|login|search|pagination)"
                          r"(?:$|[-_\s])", re.I)
WRAPPER_SHARE = 0.3  # an element holding more than this share of the page's text is a wrapper, not boilerplate
BOILER_TAGS = ("nav", "header", "footer", "aside", "form")


def _squash(s: str) -> str:
    return " ".join(s.split())


def label_lines(html: bytes) -> list[tuple[str, str]]:
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding
    from resiliparse.parse.html import HTMLTree

    from toxsieve.pipelines.stages.extract import html_to_text, normalize_text

    lines = [line for line in normalize_text(html_to_text(html, True)).split("\n") if line.strip()]
    tree = HTMLTree.parse(bytes_to_str(html, detect_encoding(html)))
    if tree.body is None:
        return []
    boiler_nodes = []
    page_chars = max(1, len(_squash(tree.body.text)))
    for node in tree.body.query_selector_all("*"):
        cls = f"{node.getattr('class') or ''} {node.id or ''}"
        if (node.tag in BOILER_TAGS or BOILER_CLASS.search(cls)) and len(_squash(node.text)) < WRAPPER_SHARE * page_chars:
            boiler_nodes.append(node)
    boiler = "\n".join(_squash(n.text) for n in boiler_nodes)
    for node in boiler_nodes:
        try:
            node.decompose()
        except Exception:  # noqa: BLE001, S110 - a node inside an already removed one
            pass
    for node in tree.body.query_selector_all("script, style, noscript"):
        node.decompose()
    content = _squash(tree.body.text)
    out = []
    for line in lines:
        key = _squash(line)
        in_b, in_c = key in boiler, key in content
        if in_b != in_c:
            out.append((line, "boilerplate" if in_b else "real"))
    return out


def main(argv: list[str]) -> int:
    from toxsieve.pipelines.config import InputConfig
    from toxsieve.pipelines.document import Document
    from toxsieve.pipelines.io.readers import read_shard
    from toxsieve.pipelines.stages.c4 import C4Config, _line_verdicts

    paths = argv or sorted(str(p) for p in (REPO / "tests" / "fixtures" / "crawl").glob("*/*.warc.gz"))
    labelled: list[tuple[str, str]] = []
    pages = 0
    for path in paths:
        with open(path, "rb") as fh:
            for doc in read_shard(fh, path, "warc", InputConfig()):
                if isinstance(doc, Document) and doc.html and doc.removal is None:
                    got = label_lines(doc.html)
                    pages += bool(got)
                    labelled += got
    off = C4Config(terminal_punctuation=False, min_words_per_line=0, javascript=False, policy=False)
    variants = {
        "terminal punctuation": replace(off, terminal_punctuation=True),
        "min 3 words per line": replace(off, min_words_per_line=3),
        "javascript": replace(off, javascript=True),
        "cookie/policy phrases": replace(off, policy=True),
        "words + javascript + policy": replace(off, min_words_per_line=3, javascript=True, policy=True),
        "all C4 line rules": C4Config(),
    }
    totals = defaultdict(int)
    for line, label in labelled:
        totals[label] += len(line)
        totals[label + "_lines"] += 1
    print(f"{pages} pages, {totals['boilerplate_lines']} boilerplate lines ({totals['boilerplate']} chars), "
          f"{totals['real_lines']} real lines ({totals['real']} chars)\n")
    print("| line rule(s) | boilerplate lines stripped | boilerplate chars stripped | real chars kept | real lines kept |")
    print("|---|---|---|---|---|")
    for name, cfg in variants.items():
        stripped = defaultdict(int)
        for line, label in labelled:
            verdicts, _, _ = _line_verdicts(line, cfg)
            rule = verdicts[0][1] if verdicts else None
            if rule is not None:
                stripped[label] += len(line)
                stripped[label + "_lines"] += 1
        print(f"| {name} | {stripped['boilerplate_lines'] / max(1, totals['boilerplate_lines']):.1%} | "
              f"{stripped['boilerplate'] / max(1, totals['boilerplate']):.1%} | "
              f"{1 - stripped['real'] / max(1, totals['real']):.1%} | "
              f"{1 - stripped['real_lines'] / max(1, totals['real_lines']):.1%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
