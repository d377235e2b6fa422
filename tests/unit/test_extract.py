"""extract_document: HTML → main text, normalised and hashed, with the length floor as removals."""

from __future__ import annotations

import pytest

from toxsieve.pipelines.config import ExtractConfig
from toxsieve.pipelines.document import Document, excerpt
from toxsieve.pipelines.stages.extract import extract_document, html_to_text, normalize_text, text_hash
from toxsieve.schemas import Reason, Stage

RUSSIAN = "Быстрая коричневая лиса прыгает через ленивую собаку."
PAGE = (
    '<html><head><meta charset="windows-1251"><title>t</title></head><body>'
    '<nav><a href="/">Home</a> <a href="/about">About</a></nav>'
    f"<article><p>{RUSSIAN}</p><p>Second   paragraph.</p></article>"
    "<footer>Copyright 2024</footer></body></html>"
).encode("cp1251")


def _warc_doc(html: bytes) -> Document:
    return Document("urn:uuid:x", "s.warc.gz", 0, "warc", http_status=200, content_type="text/html",
                    n_bytes_raw=len(html), html=html)


def test_html_encoding_is_detected_from_the_page() -> None:
    assert RUSSIAN in html_to_text(PAGE)


def test_main_content_drops_navigation_and_footer() -> None:
    main = html_to_text(PAGE, main_content=True)
    everything = html_to_text(PAGE, main_content=False)
    assert "Home" not in main and "Copyright" not in main
    assert "Home" in everything and "Copyright" in everything


def test_extracted_document_is_normalised_hashed_and_drops_its_html() -> None:
    doc = extract_document(_warc_doc(PAGE), ExtractConfig(min_chars=10))
    assert doc.kept
    assert doc.html is None  # the payload is not carried past extraction
    assert doc.text == f"{RUSSIAN}\n\nSecond paragraph."
    assert doc.text == normalize_text(doc.text)
    assert doc.text_hash == text_hash(doc.text)


def test_text_documents_are_normalised_too() -> None:
    doc = Document("j1", "a.jsonl", 0, "jsonl", text="  first line\r\n\r\n\r\n\r\nsecond\u00a0line \ufeff")
    out = extract_document(doc, ExtractConfig(min_chars=1))
    assert out.text == "first line\n\nsecond line"
    assert out.text_hash == text_hash("first line\n\nsecond line")


def test_too_short_is_removed_with_its_length_as_evidence() -> None:
    doc = Document("j1", "a.jsonl", 0, "jsonl", text="tiny text")
    out = extract_document(doc, ExtractConfig(min_chars=200))
    assert out.removal is not None
    assert (out.removal.stage, out.removal.reason) == (Stage.EXTRACT, Reason.TOO_SHORT)
    assert (out.removal.score, out.removal.threshold) == (9.0, 200.0)
    assert out.text == "tiny text" and out.text_hash == text_hash("tiny text")  # auditable


def test_length_floor_is_inclusive() -> None:
    text = "x" * 200
    assert extract_document(Document("j", "a", 0, "jsonl", text=text), ExtractConfig(min_chars=200)).kept
    short = extract_document(Document("j", "a", 0, "jsonl", text=text[:-1]), ExtractConfig(min_chars=200))
    assert short.removal is not None and short.removal.reason == Reason.TOO_SHORT


@pytest.mark.parametrize(
    "doc",
    [
        _warc_doc(b""),
        _warc_doc(b"<html><body><script>var x = 1;</script></body></html>"),
        Document("j", "a.jsonl", 0, "jsonl", text=" \r\n\t\ufeff "),
    ],
    ids=["empty-html", "script-only", "whitespace-text"],
)
def test_nothing_left_is_empty_text(doc: Document) -> None:
    out = extract_document(doc, ExtractConfig(min_chars=0))
    assert out.removal is not None
    assert (out.removal.stage, out.removal.reason) == (Stage.EXTRACT, Reason.EMPTY_TEXT)
    assert out.text == "" and out.text_hash is None


def test_real_crawl_page_extracts_its_article(crawl) -> None:
    path = crawl.dir / "whirlwind_cc2024" / "whirlwind.warc.gz"
    (page,), _ = crawl.read_path(path)
    doc = extract_document(page, ExtractConfig(min_chars=50))
    assert doc.kept and "Escopete" in doc.text
    assert "<" not in doc.text and "\r" not in doc.text
    assert (doc.doc_id, doc.url) == (page.doc_id, page.url)  # provenance survives extraction


def test_excerpt_is_short_and_printable() -> None:
    assert excerpt(b"\x00\xffabc\n") == "\\x00\\xffabc\\n"
    assert excerpt("line\nnext") == "line\\nnext"
    assert len(excerpt(b"x" * 10_000)) == 200
