"""Readers: every input record becomes a Document or a DeadLetter with its location; nothing raises."""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import os
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toxsieve.pipelines.config import InputConfig
from toxsieve.pipelines.document import DeadLetter, Document
from toxsieve.pipelines.io.readers import (
    UnknownFormatError,
    detect_format,
    fallback_doc_id,
    read_shard,
)
from toxsieve.schemas import Reason, Stage

CRAWL = Path(__file__).resolve().parents[1] / "fixtures" / "crawl"
WARCFILE = CRAWL / "resiliparse_cc2020" / "warcfile.warc.gz"
DOLMA_WARC_0 = CRAWL / "dolma_tests" / "warc__sample-0000.warc.gz"
DOLMA_WARC_1 = CRAWL / "dolma_tests" / "warc__sample-0001.warc.gz"
WHIRLWIND_WARC = CRAWL / "whirlwind_cc2024" / "whirlwind.warc.gz"
WHIRLWIND_WET = CRAWL / "whirlwind_cc2024" / "whirlwind.warc.wet.gz"
CC_EN_HEAD = sorted((CRAWL / "dolma_tests").glob("*.jsonl.gz"))
CCNET_MALFORMED = CRAWL / "ccnet_synthetic" / "sample.warc.txt"


# --- format detection ------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("s3://bucket/CC-MAIN-x.warc.gz", "warc"),
        ("a.warc", "warc"),
        ("a.arc.gz", "warc"),
        ("CC-MAIN-x.warc.wet.gz", "wet"),  # not "warc", although it also ends in .gz after .warc
        ("a.wet.gz", "wet"),
        ("a.wet", "wet"),
        ("a.jsonl", "jsonl"),
        ("a.jsonl.gz", "jsonl"),
        ("a.jsonl.zst", "jsonl"),
        ("a.jsonl.zstd", "jsonl"),
        ("documents/0000.json.gz", "jsonl"),  # dolma's layout
        ("a.ndjson", "jsonl"),
        ("a.parquet", "parquet"),
        ("/DATA/SHARD.WARC.GZ", "warc"),
    ],
)
def test_detect_format_from_name(name: str, fmt: str) -> None:
    assert detect_format(name) == fmt


def test_forced_format_overrides_the_name() -> None:
    assert detect_format("sample.warc.txt", "wet") == "wet"
    assert detect_format("data.warc.gz", "jsonl") == "jsonl"


@pytest.mark.parametrize("name", ["sample.warc.txt", "data.csv", "noext", "a.json"])
def test_unknown_extension_is_a_clear_error(name: str) -> None:
    with pytest.raises(UnknownFormatError, match="input.format") as err:
        detect_format(name)
    assert name in str(err.value)


def test_read_shard_rejects_unknown_format() -> None:
    with pytest.raises(UnknownFormatError):
        list(read_shard(io.BytesIO(b""), "x", "csv", InputConfig()))


# --- the shipped crawl sample ----------------------------------------------


@pytest.mark.parametrize(
    ("path", "n_docs"),
    [
        (WARCFILE, 16),
        (DOLMA_WARC_0, 22),
        (DOLMA_WARC_1, 15),
        (WHIRLWIND_WARC, 1),
        (WHIRLWIND_WET, 1),
        *[(p, 10) for p in CC_EN_HEAD],
    ],
    ids=lambda v: v.name if isinstance(v, Path) else str(v),
)
def test_fixture_shards_yield_every_record(crawl, path: Path, n_docs: int) -> None:
    docs, dead = crawl.read_path(path)
    assert dead == []
    assert len(docs) == n_docs
    assert len({d.doc_id for d in docs}) == n_docs
    assert all(d.source_path == str(path) for d in docs)
    offsets = [d.source_offset for d in docs]
    assert offsets == sorted(set(offsets)), "offsets are positions in the shard, strictly increasing"


def test_cc_en_head_fixtures_are_two_distinct_files() -> None:
    assert len(CC_EN_HEAD) == 2


@pytest.mark.parametrize("path", [WARCFILE, DOLMA_WARC_0, DOLMA_WARC_1, WHIRLWIND_WARC])
def test_warc_responses_carry_their_headers(crawl, path: Path) -> None:
    docs, _ = crawl.read_path(path)
    for doc in docs:
        assert doc.source_format == "warc"
        assert doc.doc_id.startswith("urn:uuid:"), doc.doc_id  # WARC-Record-ID without <...>
        assert doc.url is not None and doc.url.startswith("http") and not doc.url.endswith(">")
        assert doc.crawl_date is not None and doc.crawl_date.endswith("Z")
        assert doc.http_status == 200 and doc.content_type == "text/html"
        assert doc.html and doc.text is None and doc.kept
        assert doc.n_bytes_raw == len(doc.html)


def test_dolma_warc_ids_and_urls_lose_their_angle_brackets(crawl) -> None:
    # dolma's wget WARCs write WARC-Target-URI as <https://...>.
    docs, _ = crawl.read_path(DOLMA_WARC_0)
    first = docs[0]
    assert first.doc_id == "urn:uuid:283E41D7-F686-4C3E-B7DA-E8D248A100C1"
    assert first.url == "https://www.semanticscholar.org/research/research-team"
    assert first.crawl_date == "2024-04-25T16:24:44Z"
    assert first.source_offset == 1167
    assert not any("<" in (d.url or "") + d.doc_id for d in docs)


def test_wet_conversion_records_become_text_documents(crawl) -> None:
    (doc,), dead = crawl.read_path(WHIRLWIND_WET)
    assert dead == []
    assert doc.source_format == "wet"
    assert doc.doc_id == "urn:uuid:ba729a40-ff84-4085-8d48-0a5b2ee0c42d"
    assert doc.url == "https://an.wikipedia.org/wiki/Escopete"
    assert doc.crawl_date == "2024-05-18T01:58:10Z"
    assert doc.content_type == "text/plain" and doc.html is None
    assert "Escopete" in doc.text
    assert doc.n_bytes_raw == len(doc.text.encode("utf-8"))


def test_warc_and_wet_of_the_same_page_agree_on_url_and_date(crawl) -> None:
    (warc,), _ = crawl.read_path(WHIRLWIND_WARC)
    (wet,), _ = crawl.read_path(WHIRLWIND_WET)
    assert (warc.url, warc.crawl_date) == (wet.url, wet.crawl_date)


def test_jsonl_dotted_fields_reach_into_nested_objects(crawl) -> None:
    cfg = InputConfig(url_field="metadata.url", date_field="metadata.date_download")
    docs, dead = crawl.read_path(CC_EN_HEAD[0], cfg=cfg)
    assert dead == []
    first = docs[0]
    assert first.doc_id == "http://100kinvesting.com/2016/11/28/first-teleconference-calls-invoice-factoring/"
    assert first.url == first.doc_id  # cc_net/dolma: id is the URL, metadata.url repeats it
    assert first.crawl_date == "2020-03-29T09:04:10Z"
    assert first.text.startswith("We will be starting to hold weekly teleconferences")
    assert [d.source_offset for d in docs] == list(range(10))
    assert all(d.source_format == "jsonl" and d.url for d in docs)


def test_jsonl_top_level_url_field_absent_gives_no_url(crawl) -> None:
    docs, _ = crawl.read_path(CC_EN_HEAD[0])  # default url_field="url" is not at the top level
    assert all(d.url is None for d in docs)


def test_non_seekable_stream_is_read_like_a_file(crawl) -> None:
    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return False

        def readinto(self, buf) -> int:  # type: ignore[no-untyped-def]
            data = self._inner.read(len(buf))
            buf[: len(data)] = data
            return len(data)

    data = b"".join(crawl.response(i) for i in range(3))
    from_file = crawl.read_bytes(data, "s.warc")
    from_pipe = crawl.split(list(read_shard(Pipe(data), "s.warc", "warc", InputConfig())))
    assert len(from_pipe[0]) == 3
    assert from_pipe == from_file


# --- WARC responses that are not documents ----------------------------------


def test_non_html_and_non_200_responses_are_removed_not_dropped(crawl) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
    data = b"".join([
        crawl.warc_record("warcinfo", "", "00000000-0000-0000-0000-00000000aaaa", b"software: test\r\n",
                          content_type="application/warc-fields"),
        crawl.response(1),
        crawl.warc_record("request", "http://example.com/2", "00000000-0000-0000-0000-00000000bbbb",
                          b"GET /2 HTTP/1.1\r\nHost: example.com\r\n\r\n",
                          content_type="application/http; msgtype=request"),
        crawl.response(2, 404, "Not Found", "text/html", b"<p>no such page</p>"),
        crawl.response(3, 200, "OK", "image/png", png),
        crawl.response(4, 301, "Moved Permanently", "text/html", b""),
        crawl.response(5, 200, "OK", "Application/XHTML+XML; charset=utf-8", b"<p>xhtml</p>"),
        crawl.response(6, 200, "OK", None, b"<p>no content type</p>"),
    ])
    docs, dead = crawl.read_bytes(data, "tiny.warc")
    assert dead == []
    by_url = {d.url: d for d in docs}
    assert sorted(by_url) == [f"http://example.com/{i}" for i in range(1, 7)]  # requests/warcinfo skipped

    assert by_url["http://example.com/1"].kept
    assert by_url["http://example.com/5"].kept and by_url["http://example.com/5"].content_type == "application/xhtml+xml"

    not_found = by_url["http://example.com/2"]
    assert not_found.http_status == 404
    assert not_found.removal is not None
    assert (not_found.removal.stage, not_found.removal.reason) == (Stage.READ, Reason.HTTP_STATUS)
    assert (not_found.removal.score, not_found.removal.threshold) == (404.0, 200.0)
    assert not_found.html is None  # removed documents do not carry their payload downstream

    redirect = by_url["http://example.com/4"]
    assert redirect.removal is not None and redirect.removal.reason == Reason.HTTP_STATUS
    assert redirect.removal.score == 301.0

    image = by_url["http://example.com/3"]
    assert image.http_status == 200 and image.content_type == "image/png"
    assert image.removal is not None
    assert (image.removal.stage, image.removal.reason) == (Stage.READ, Reason.NOT_HTML)
    assert "image/png" in (image.removal.detail or "")
    assert image.n_bytes_raw == len(png)

    untyped = by_url["http://example.com/6"]
    assert untyped.removal is not None and untyped.removal.reason == Reason.NOT_HTML

    assert by_url["http://example.com/2"].doc_id == f"urn:uuid:{crawl.record_uuid(2)}"


def test_gzipped_warc_reads_the_same_as_plain(crawl) -> None:
    data = b"".join(crawl.response(i) for i in range(4))
    per_record = b"".join(gzip.compress(crawl.response(i)) for i in range(4))  # Common Crawl's layout
    plain, _ = crawl.read_bytes(data, "s.warc")
    one_member, _ = crawl.read_bytes(gzip.compress(data), "s.warc.gz")
    members, _ = crawl.read_bytes(per_record, "s.warc.gz")
    assert len(plain) == 4
    assert one_member == members == [dataclasses.replace(d, source_path="s.warc.gz") for d in plain]


def test_warc_record_without_id_gets_a_stable_fallback_id(crawl) -> None:
    record = crawl.warc_record("response", "http://example.com/x", None,
                               crawl.http_response(200, "OK", "text/html", b"<p>x</p>"))
    data = crawl.response(1) + record
    (_, second), _ = crawl.read_bytes(data, "s.warc")
    assert second.doc_id == fallback_doc_id("s.warc", second.source_offset)
    assert second.doc_id.startswith("h:")
    (_, again), _ = crawl.read_bytes(data, "s.warc")
    assert again.doc_id == second.doc_id


def test_oversized_warc_record_is_dead_lettered_and_the_shard_goes_on(crawl) -> None:
    data = crawl.response(1) + crawl.response(2, body=b"<p>" + b"x" * 5000 + b"</p>") + crawl.response(3)
    docs, dead = crawl.read_bytes(data, "s.warc", cfg=InputConfig(max_record_bytes=1000))
    assert [d.url for d in docs] == ["http://example.com/1", "http://example.com/3"]
    (big,) = dead
    assert big.error_type == "RecordTooLarge" and "max_record_bytes=1000" in big.error
    assert docs[0].source_offset < big.source_offset < docs[1].source_offset


def test_max_record_bytes_on_a_real_shard_keeps_the_count(crawl) -> None:
    docs, dead = crawl.read_path(DOLMA_WARC_0, cfg=InputConfig(max_record_bytes=30_000))
    assert dead and docs
    assert len(docs) + len(dead) == 22
    assert all(d.error_type == "RecordTooLarge" for d in dead)


# --- fallback ids ----------------------------------------------------------


def test_fallback_doc_id_is_stable_and_distinct() -> None:
    assert fallback_doc_id("s3://b/x.jsonl", 7) == fallback_doc_id("s3://b/x.jsonl", 7)
    # Pinned: doc ids name documents across runs; a changed hash would orphan every audit record.
    assert fallback_doc_id("x.jsonl", 0) == "h:21af8cbf8b7649c3e93d1d92d1f7aa5b"
    ids = {fallback_doc_id(p, o) for p in ("a.jsonl", "b.jsonl", "a.jsonl0") for o in range(50)}
    assert len(ids) == 150
    assert fallback_doc_id("a.jsonl", 10) != fallback_doc_id("a.jsonl1", 0)  # no path/offset aliasing


def test_jsonl_records_without_usable_id_get_fallback_ids(crawl) -> None:
    lines = [{"text": "a"}, {"text": "b", "id": ""}, {"text": "c", "id": None}, {"text": "d", "id": None},
             {"text": "e", "id": 7}]
    data = "\n".join(json.dumps(x) for x in lines).encode()
    docs, dead = crawl.read_bytes(data, "x.jsonl")
    assert dead == []
    assert [d.doc_id for d in docs[:4]] == [fallback_doc_id("x.jsonl", i) for i in range(4)]
    assert docs[4].doc_id == "7"
    other, _ = crawl.read_bytes(data, "y.jsonl")
    assert {d.doc_id for d in other[:4]}.isdisjoint(d.doc_id for d in docs[:4])


# --- hostile WARC/WET ------------------------------------------------------


def _cut_inside_last_member(members: list[bytes]) -> bytes:
    whole = b"".join(members)
    return whole[: len(whole) - len(members[-1]) // 2]


def test_truncated_warc_gz_keeps_the_records_before_the_cut(crawl) -> None:
    members = [gzip.compress(crawl.response(i)) for i in range(6)]
    docs, dead = crawl.read_bytes(_cut_inside_last_member(members), "cut.warc.gz")
    assert [d.url for d in docs] == [f"http://example.com/{i}" for i in range(5)]
    (dl,) = dead
    assert dl.source_format == "warc" and dl.source_path == "cut.warc.gz"
    assert dl.error_type == "EOFError" and "ended before" in dl.error
    assert dl.source_offset >= docs[-1].source_offset


def test_truncated_real_warc_gz_yields_a_prefix_then_a_dead_letter(crawl) -> None:
    full, _ = crawl.read_path(WARCFILE)
    data = WARCFILE.read_bytes()
    docs, dead = crawl.read_bytes(data[: len(data) // 2], str(WARCFILE))
    assert 0 < len(docs) < len(full)
    assert docs == full[: len(docs)]
    (dl,) = dead
    assert dl.source_offset >= docs[-1].source_offset
    assert f"after offset {dl.source_offset}" in dl.error


def test_garbage_in_the_middle_of_a_warc_is_a_dead_letter(crawl) -> None:
    good = crawl.response(1)
    garbage = b"\x00\xffthis is not a WARC header\r\n" * 20
    data = good + garbage + crawl.response(2)
    docs, dead = crawl.read_bytes(data, "bad.warc")
    # issue #10: reading resumes at the next record header; the garbage is one dead letter at its offset
    assert [d.url for d in docs] == ["http://example.com/1", "http://example.com/2"]
    (dl,) = dead
    assert dl.source_path == "bad.warc" and dl.source_offset == len(good)
    assert dl.error_type == "WarcParseError" and f"{len(garbage)} unparseable bytes" in dl.error


@pytest.mark.parametrize("name", ["rand.warc", "rand.warc.gz", "rand.wet", "rand.warc.wet.gz"])
def test_random_bytes_are_a_dead_letter(crawl, name: str) -> None:
    data = random.Random(name).randbytes(4096)
    docs, dead = crawl.read_bytes(data, name)
    assert docs == []
    assert len(dead) == 1 and dead[0].source_offset == 0 and dead[0].error


@pytest.mark.parametrize("name", ["e.warc", "e.warc.gz", "e.wet", "e.wet.gz", "e.jsonl", "e.jsonl.gz", "e.jsonl.zst"])
def test_empty_file_has_no_records(crawl, name: str) -> None:
    assert crawl.read_bytes(b"", name) == ([], [])


@pytest.mark.parametrize("name", ["e.warc.gz", "e.jsonl.gz"])
def test_compressed_empty_file_has_no_records(crawl, name: str) -> None:
    assert crawl.read_bytes(gzip.compress(b""), name) == ([], [])


def test_ccnet_malformed_wet_is_a_dead_letter_not_silence(crawl) -> None:
    # LF line endings: fastwarc cannot parse a single record of it.
    with pytest.raises(UnknownFormatError):
        detect_format(str(CCNET_MALFORMED))
    for fmt in ("wet", "warc"):
        docs, dead = crawl.read_path(CCNET_MALFORMED, fmt=fmt)
        assert docs == []
        (dl,) = dead
        assert (dl.source_path, dl.source_offset, dl.source_format) == (str(CCNET_MALFORMED), 0, fmt)
        assert dl.error_type == "WarcParseError" and "unparseable" in dl.error


def test_dead_letter_record_excerpt_is_printable() -> None:
    line = b'{"text": "\xff\xfe\x00 broken'
    (dl,) = list(read_shard(io.BytesIO(line), "x.jsonl", "jsonl", InputConfig()))
    assert isinstance(dl, DeadLetter)
    assert dl.record_excerpt is not None and dl.record_excerpt.isprintable()
    assert "\\xff" in dl.record_excerpt


# --- hostile JSONL ----------------------------------------------------------


def test_bad_jsonl_lines_are_dead_letters_with_their_line_number(crawl) -> None:
    data = b"\n".join([
        b'{"id": "a", "text": "fine"}',
        b"{not json",
        b"[1, 2, 3]",
        b'{"id": "b"}',
        b'{"id": "c", "text": 5}',
        b"",
        b"   ",
        b'"just a string"',
        b'{"id": "a", "text": "caf\xe9"}',  # Latin-1 byte: invalid UTF-8
        b"[" * 100_000,  # nesting that would overflow a recursive parser
        b'{"id": "d", "text": "also fine"}',
    ])
    docs, dead = crawl.read_bytes(data, "bad.jsonl")
    assert [(d.doc_id, d.source_offset) for d in docs] == [("a", 0), ("d", 10)]
    got = {dl.source_offset: dl for dl in dead}
    assert sorted(got) == [1, 2, 3, 4, 7, 8, 9]  # blank lines 5 and 6 are not records
    assert got[1].error_type == "JSONDecodeError" and got[1].record_excerpt == "{not json\\n"
    assert got[2].error_type == "NotAnObject" and "list" in got[2].error
    assert got[3].error_type == "MissingTextField" and "'text' is missing" in got[3].error
    assert got[4].error_type == "MissingTextField" and "int" in got[4].error
    assert got[7].error_type == "NotAnObject" and "str" in got[7].error
    assert "utf-8" in got[8].error and "\\xe9" in (got[8].record_excerpt or "")
    assert got[9].error_type == "JSONDecodeError"
    assert all(dl.source_path == "bad.jsonl" and dl.source_format == "jsonl" for dl in dead)


def test_missing_text_field_names_the_configured_field(crawl) -> None:
    data = b'{"content": "x", "text": "not this one"}\n{"body": "y"}\n'
    docs, dead = crawl.read_bytes(data, "x.jsonl", cfg=InputConfig(text_field="content"))
    assert [d.text for d in docs] == ["x"]
    assert "'content' is missing" in dead[0].error


def _jsonl_lines(n: int) -> list[bytes]:
    rnd = random.Random(n)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    return [json.dumps({"id": f"d{i}", "text": " ".join(rnd.choices(words, k=60))}).encode() for i in range(n)]


def test_truncated_jsonl_gz_keeps_the_lines_before_the_cut(crawl) -> None:
    lines = _jsonl_lines(300)
    data = gzip.compress(b"\n".join(lines) + b"\n")
    docs, dead = crawl.read_bytes(data[: len(data) * 2 // 3], "cut.jsonl.gz")
    assert len(docs) > 100
    assert [d.doc_id for d in docs] == [f"d{i}" for i in range(len(docs))]
    (dl,) = dead
    assert dl.error_type == "EOFError" and "ended before" in dl.error
    assert dl.source_offset == len(docs)
    assert f"after line {len(docs)}" in dl.error


def test_truncated_jsonl_zst_is_a_dead_letter(crawl) -> None:
    lines = _jsonl_lines(3000)  # several zstd blocks
    data = zstandard.ZstdCompressor().compress(b"\n".join(lines) + b"\n")
    docs, dead = crawl.read_bytes(data[: len(data) // 2], "cut.jsonl.zst")
    assert [d.doc_id for d in docs] == [f"d{i}" for i in range(len(docs))]
    assert len(docs) < 3000
    (dl,) = dead
    assert dl.error_type == "EOFError" and "truncated" in dl.error
    assert dl.source_offset == len(docs)


def test_multi_frame_zst_reads_every_frame(crawl) -> None:
    lines = _jsonl_lines(20)
    frames = b"".join(zstandard.ZstdCompressor().compress(b"\n".join(lines[i:i + 5]) + b"\n") for i in range(0, 20, 5))
    docs, dead = crawl.read_bytes(frames, "m.jsonl.zst")
    assert dead == [] and [d.doc_id for d in docs] == [f"d{i}" for i in range(20)]


@pytest.mark.parametrize("name", ["rand.jsonl.gz", "rand.jsonl.zst"])
def test_corrupt_compressed_jsonl_is_a_dead_letter(crawl, name: str) -> None:
    data = random.Random(name).randbytes(2048)
    docs, dead = crawl.read_bytes(data, name)
    assert docs == []
    (dl,) = dead
    assert dl.source_offset == 0 and "unreadable" in dl.error


def test_line_longer_than_max_record_bytes_is_a_dead_letter(crawl) -> None:
    long_line = json.dumps({"id": "big", "text": "x" * 500}).encode()
    data = b'{"id": "a", "text": "ok"}\n' + long_line + b'\n{"id": "c", "text": "ok"}\n'
    docs, dead = crawl.read_bytes(data, "x.jsonl", cfg=InputConfig(max_record_bytes=100))
    assert [(d.doc_id, d.source_offset) for d in docs] == [("a", 0), ("c", 2)]
    (dl,) = dead
    assert (dl.source_offset, dl.error_type) == (1, "RecordTooLarge")
    assert "max_record_bytes=100" in dl.error
    assert dl.record_excerpt is not None and len(dl.record_excerpt) <= 200


def test_max_record_bytes_bound_is_inclusive(crawl) -> None:
    line = b'{"id":"a","text":"ok"}'  # 22 bytes without its newline
    for limit, kept in ((22, True), (21, False)):
        for data in (line, line + b"\n"):
            docs, dead = crawl.read_bytes(data, "x.jsonl", cfg=InputConfig(max_record_bytes=limit))
            assert (len(docs), len(dead)) == ((1, 0) if kept else (0, 1)), (limit, data)


def test_crlf_jsonl_lines_parse(crawl) -> None:
    docs, dead = crawl.read_bytes(b'{"id":"a","text":"x"}\r\n{"id":"b","text":"y"}\r\n', "x.jsonl")
    assert dead == [] and [d.doc_id for d in docs] == ["a", "b"]


_JSON_LINE = st.one_of(
    st.fixed_dictionaries({"id": st.text(max_size=8), "text": st.text(max_size=30)}).map(json.dumps),
    st.fixed_dictionaries({"text": st.text(max_size=30)}).map(lambda o: json.dumps(o, ensure_ascii=False)),
    st.fixed_dictionaries({"id": st.integers()}).map(json.dumps),  # no text
    st.lists(st.integers(), max_size=3).map(json.dumps),  # not an object
    st.text(max_size=30),  # anything, blank lines included
).map(lambda s: s.encode("utf-8", "surrogatepass"))
_LINE = st.one_of(_JSON_LINE, st.binary(max_size=30)).map(lambda b: b.replace(b"\n", b" "))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(_LINE, max_size=25), compression=st.sampled_from(["", ".gz", ".zst"]),
       final_newline=st.booleans())
def test_no_jsonl_line_is_lost(lines: list[bytes], compression: str, final_newline: bool) -> None:
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    if compression == ".gz":
        data = gzip.compress(data)
    elif compression == ".zst":
        data = zstandard.ZstdCompressor().compress(data)
    records = list(read_shard(io.BytesIO(data), f"p.jsonl{compression}", "jsonl", InputConfig()))
    expected = [i for i, line in enumerate(lines) if line.strip()]
    assert len(records) == len(expected)
    assert [r.source_offset for r in records] == expected
    assert all(isinstance(r, Document | DeadLetter) for r in records)


# --- Parquet ---------------------------------------------------------------


def _parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def test_parquet_rows_become_documents(tmp_path: Path, crawl) -> None:
    table = pa.table({
        "id": ["p0", "p1", None, "p3"],
        "text": ["first text", None, "third text", "fourth"],
        "url": ["http://a/0", "http://a/1", None, "http://a/3"],
        "extra": [1, 2, 3, 4],
    })
    path = tmp_path / "docs.parquet"
    pq.write_table(table, path, row_group_size=2)
    docs, dead = crawl.read_path(path)
    assert [(d.doc_id, d.text, d.url, d.source_offset) for d in docs] == [
        ("p0", "first text", "http://a/0", 0),
        (fallback_doc_id(str(path), 2), "third text", None, 2),
        ("p3", "fourth", "http://a/3", 3),
    ]
    assert all(d.source_format == "parquet" for d in docs)
    (dl,) = dead
    assert (dl.source_offset, dl.error_type, dl.source_format) == (1, "MissingTextField", "parquet")
    assert "p1" in (dl.record_excerpt or "")


def test_parquet_nested_url_field(crawl) -> None:
    table = pa.table({"id": ["a"], "text": ["hello"], "metadata": [{"url": "http://m/", "lang": "en"}]})
    (doc,), _ = crawl.read_bytes(_parquet_bytes(table), "n.parquet", cfg=InputConfig(url_field="metadata.url"))
    assert doc.url == "http://m/"


@pytest.mark.parametrize("damage", ["random", "truncated", "empty", "scrambled_pages"])
def test_corrupt_parquet_is_a_dead_letter(crawl, damage: str) -> None:
    good = _parquet_bytes(pa.table({"id": [f"r{i}" for i in range(100)], "text": ["t" * 50] * 100}))
    if damage == "random":
        data = b"PAR1" + random.Random(1).randbytes(500) + b"PAR1"
    elif damage == "truncated":
        data = good[: len(good) // 2]
    elif damage == "empty":
        data = b""
    else:
        data = good[:8] + b"\xff" * 40 + good[48:]
    docs, dead = crawl.read_bytes(data, "bad.parquet")
    assert docs == []
    (dl,) = dead
    assert dl.source_format == "parquet" and dl.source_offset == 0 and dl.error


def test_read_shard_never_raises_on_os_random_bytes() -> None:
    for name, fmt in (("x.warc", "warc"), ("x.warc.gz", "warc"), ("x.wet", "wet"), ("x.jsonl", "jsonl"),
                      ("x.jsonl.gz", "jsonl"), ("x.jsonl.zst", "jsonl"), ("x.parquet", "parquet")):
        for _ in range(3):
            records = list(read_shard(io.BytesIO(os.urandom(3000)), name, fmt, InputConfig()))
            assert all(isinstance(r, Document | DeadLetter) for r in records)
            assert any(isinstance(r, DeadLetter) for r in records), name


def test_a_record_of_an_unknown_warc_type_is_skipped_and_reading_goes_on(tmp_path: Path) -> None:
    def record(kind: str, rid: str, body: bytes) -> bytes:
        return (f"WARC/1.0\r\nWARC-Type: {kind}\r\nWARC-Record-ID: <urn:uuid:{rid}>\r\n"
                f"WARC-Target-URI: http://example.com/{rid}\r\nContent-Type: text/plain\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body + b"\r\n\r\n"

    path = tmp_path / "custom.warc.wet"
    path.write_bytes(record("conversion", "1", b"first") + record("x-custom", "2", b"skip me")
                     + record("conversion", "3", b"third"))
    with path.open("rb") as fh:
        out = list(read_shard(fh, str(path), "wet", InputConfig()))
    assert [type(r).__name__ for r in out] == ["Document", "Document"]
    assert [r.text for r in out] == ["first", "third"]  # type: ignore[union-attr]
