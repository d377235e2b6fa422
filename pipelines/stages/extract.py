"""Text extraction (HTML → main text) and normalisation. Pure functions, no Beam."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import replace

import xxhash

from toxsieve.pipelines.config import ExtractConfig, LimitsConfig
from toxsieve.pipelines.document import Document, Removal
from toxsieve.pipelines.runtime.bounds import ExtractionCrashed, ExtractionTimeout, html_nesting_depth
from toxsieve.schemas import Reason, Stage

# Line breaks in all their forms (CR LF, CR, VT, FF, FS/GS/RS, NEL, LS, PS) become "\n".
_LINE_BREAKS = re.compile("\r\n|[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
# Remaining C0/C1 controls (tab and newline excepted), lone surrogates (they cannot be encoded
# as UTF-8, so Parquet would reject the row) and BOM / zero-width no-break spaces.
_CONTROLS = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\ufeff]")
_SURROGATES = re.compile("[\ud800-\udfff]")
# Any run of whitespace other than newline collapses to one space.
_SPACES = re.compile(r"[^\S\n]+")
_BLANK_RUNS = re.compile(r"\n{3,}")


def normalize_text(text: str) -> str:
    """Canonical form of a document's text: NFC, one space between words, at most one blank line.

    Idempotent: ``normalize_text(normalize_text(t)) == normalize_text(t)``.
    """
    text = _SURROGATES.sub("\ufffd", text)
    text = _LINE_BREAKS.sub("\n", text)
    text = _CONTROLS.sub("", text)
    # NFC before the whitespace pass: composition never creates whitespace, and doing it first
    # means no later step can leave a decomposed sequence behind.
    text = unicodedata.normalize("NFC", text)
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip(" ") for line in text.split("\n"))
    text = _BLANK_RUNS.sub("\n\n", text)
    return text.strip("\n ")


def text_hash(text: str) -> str:
    """xxh3-128 of the normalised text, hex: the exact-duplicate key."""
    return xxhash.xxh3_128_hexdigest(text.encode("utf-8"))


def html_to_text(html: bytes, main_content: bool = True) -> str:
    """Main text of an HTML page with resiliparse (encoding detected from the bytes and meta tags)."""
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding

    decoded = bytes_to_str(html, detect_encoding(html))
    return extract_plain_text(
        decoded,
        main_content=main_content,
        alt_texts=False,
        links=False,
        form_fields=False,
        noscript=False,
        preserve_formatting=True,
    )


def extract_document(doc: Document, cfg: ExtractConfig, limits: LimitsConfig | None = None,
                     guarded: Callable[[bytes, bool], str] | None = None) -> Document:
    """ExtractText's core: HTML to text where needed, normalise, hash, apply the length floor.

    ``limits`` bound the work per page (docs/reliability.md): HTML past ``max_html_bytes`` or
    ``max_html_depth`` is not parsed, and a page with more than ``guard_min_tags`` tags is extracted
    by ``guarded`` (an ``ExtractionWorker.extract``: killed past ``extract_timeout_s``) when given.
    Every such page is removed with the bound as evidence; the rest of the shard goes on.
    """
    limits = limits or LimitsConfig()
    if doc.html is not None:
        raw_or_removed = _bounded_html_to_text(doc, cfg, limits, guarded)
        if isinstance(raw_or_removed, Document):
            return raw_or_removed
        raw = raw_or_removed
    else:
        raw = doc.text or ""
    text = normalize_text(raw)
    n_chars = len(text)
    doc = replace(doc, html=None, text=text, text_hash=text_hash(text) if text else None)
    if n_chars == 0:
        return doc.removed(Removal(Stage.EXTRACT, Reason.EMPTY_TEXT, score=0.0, threshold=float(cfg.min_chars),
                                   detail="no text after extraction and normalisation"))
    if n_chars < cfg.min_chars:
        return doc.removed(Removal(Stage.EXTRACT, Reason.TOO_SHORT, score=float(n_chars),
                                   threshold=float(cfg.min_chars),
                                   detail=f"{n_chars} characters < extract.min_chars={cfg.min_chars}"))
    if n_chars > limits.max_text_chars:
        return replace(doc, text=None).removed(Removal(
            Stage.EXTRACT, Reason.TEXT_TOO_LONG, score=float(n_chars), threshold=float(limits.max_text_chars),
            detail=f"{n_chars} characters > limits.max_text_chars={limits.max_text_chars}"))
    return doc


def _bounded_html_to_text(doc: Document, cfg: ExtractConfig, limits: LimitsConfig,
                          guarded: Callable[[bytes, bool], str] | None) -> str | Document:
    """The page's raw text, or the document removed because a bound was reached."""
    html = doc.html or b""

    def too_complex(score: float, threshold: float, detail: str) -> Document:
        return doc.removed(Removal(Stage.EXTRACT, Reason.HTML_TOO_COMPLEX, score=score, threshold=threshold,
                                   detail=detail))

    if len(html) > limits.max_html_bytes:
        return too_complex(float(len(html)), float(limits.max_html_bytes),
                           f"HTML of {len(html)} bytes > limits.max_html_bytes={limits.max_html_bytes}")
    depth = html_nesting_depth(html, stop_above=limits.max_html_depth)
    if depth > limits.max_html_depth:
        return too_complex(float(depth), float(limits.max_html_depth),
                           f"element nesting depth {depth} > limits.max_html_depth={limits.max_html_depth}")
    try:
        if guarded is not None and html.count(b"<") > limits.guard_min_tags:
            return guarded(html, cfg.main_content)
        return html_to_text(html, cfg.main_content)
    except ExtractionTimeout:
        return too_complex(limits.extract_timeout_s, limits.extract_timeout_s,
                           f"extraction took longer than limits.extract_timeout_s={limits.extract_timeout_s:g}; "
                           "the extractor process was killed")
    except (ExtractionCrashed, ValueError, RuntimeError, MemoryError, RecursionError) as exc:
        return doc.removed(Removal(Stage.EXTRACT, Reason.EXTRACTION_FAILED,
                                   detail=f"{type(exc).__name__}: {str(exc)[:500]}"))
