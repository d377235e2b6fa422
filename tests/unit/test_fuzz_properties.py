"""Issue #10: property tests of the readers, the framing and the normaliser on arbitrary bytes.

Bounded example counts keep these in `make test`; `make fuzz` runs the coverage-guided fuzzer
(tests/fuzz/fuzz_readers.py) for longer.
"""

from __future__ import annotations

import gzip
import io
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.fuzz_readers import check_one_input
from tests.unit.conftest import CrawlKit
from toxsieve.pipelines.config import ExtractConfig, InputConfig, LimitsConfig
from toxsieve.pipelines.document import DeadLetter, Document
from toxsieve.pipelines.io.readers import read_shard
from toxsieve.pipelines.runtime.bounds import html_nesting_depth, sniff_binary
from toxsieve.pipelines.stages.extract import extract_document, normalize_text

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.binary(max_size=4096))
def test_every_reader_turns_arbitrary_bytes_into_documents_or_dead_letters(data: bytes) -> None:
    check_one_input(data)  # the fuzz target's own check: no exception, only Documents and DeadLetters


@FAST
@given(st.binary(max_size=2048), st.sampled_from(["x.warc", "x.wet", "x.jsonl", "x.parquet"]))
def test_arbitrary_bytes_after_a_valid_header_never_raise(tail: bytes, name: str) -> None:
    heads = {"x.warc": b"WARC/1.0\r\nContent-Length: 5\r\n\r\n", "x.wet": b"WARC/1.0\r\nWARC-Type: conversion\r\n",
             "x.jsonl": b'{"text": "', "x.parquet": b"PAR1"}
    fmt = name.split(".")[1]
    records = list(read_shard(io.BytesIO(heads[name] + tail), name, fmt, InputConfig()))
    assert all(isinstance(r, Document | DeadLetter) for r in records)


_RECORDS = [CrawlKit.response(i, body=f"<html><body><p>page {i} {'x' * (i * 37 % 200)}</p></body></html>".encode())
            for i in range(6)]


@FAST
@given(st.integers(0, 5), st.integers(-400, 400).filter(lambda d: d != 0), st.booleans())
def test_one_wrong_content_length_never_costs_another_record(damaged: int, delta: int, compressed: bool) -> None:
    records = list(_RECORDS)
    match = re.search(rb"Content-Length: (\d+)\r\n\r\nHTTP/", records[damaged])
    assert match is not None
    new_length = max(0, int(match.group(1)) + delta)
    records[damaged] = records[damaged][: match.start(1)] + str(new_length).encode() + records[damaged][match.end(1):]
    data = b"".join(records)
    name = "s.warc.gz" if compressed else "s.warc"
    out = list(read_shard(io.BytesIO(gzip.compress(data) if compressed else data), name, "warc", InputConfig()))
    urls = {r.url for r in out if isinstance(r, Document) and r.removal is None}
    assert {f"http://example.com/{i}" for i in range(6) if i != damaged} <= urls
    assert any(isinstance(r, DeadLetter) for r in out)


@FAST
@given(st.binary(max_size=3000))
def test_bounds_and_extraction_never_raise_on_arbitrary_bytes(html: bytes) -> None:
    sniff_binary(html)
    assert html_nesting_depth(html) >= 0
    doc = Document("d", "s.warc", 0, "warc", html=html)
    out = extract_document(doc, ExtractConfig(), LimitsConfig(max_html_depth=50))
    assert out.html is None
    assert out.removal is not None or out.text


@FAST
@given(st.binary(max_size=2000))
def test_normalising_decoded_bytes_is_idempotent_and_encodable(data: bytes) -> None:
    for encoding in ("utf-8", "latin-1", "utf-16"):
        text = normalize_text(data.decode(encoding, errors="replace"))
        assert normalize_text(text) == text
        text.encode("utf-8")  # no lone surrogates: Parquet can store it
