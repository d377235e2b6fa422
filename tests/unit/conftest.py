"""Shared helpers for the pure-core unit tests, handed out as the ``crawl`` fixture."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from toxsieve.pipelines.config import InputConfig
from toxsieve.pipelines.document import DeadLetter, Document
from toxsieve.pipelines.io.readers import detect_format, read_shard

ReadOutcome = tuple[list[Document], list[DeadLetter]]


class CrawlKit:
    """Read shards into (documents, dead letters) and build small WARC files by hand."""

    dir = Path(__file__).resolve().parents[1] / "fixtures" / "crawl"

    @staticmethod
    def split(records: list[Document | DeadLetter]) -> ReadOutcome:
        docs = [r for r in records if isinstance(r, Document)]
        dead = [r for r in records if isinstance(r, DeadLetter)]
        assert len(docs) + len(dead) == len(records), "the reader yielded something that is neither"
        return docs, dead

    @classmethod
    def read_bytes(cls, data: bytes, name: str, fmt: str | None = None,
                   cfg: InputConfig | None = None) -> ReadOutcome:
        """Every record of an in-memory shard called ``name`` (the name decides the compression)."""
        cfg = cfg or InputConfig()
        fmt = fmt or detect_format(name, cfg.format)
        return cls.split(list(read_shard(io.BytesIO(data), name, fmt, cfg)))

    @classmethod
    def read_path(cls, path: Path, fmt: str | None = None, cfg: InputConfig | None = None) -> ReadOutcome:
        cfg = cfg or InputConfig()
        fmt = fmt or detect_format(str(path), cfg.format)
        with open(path, "rb") as fh:
            return cls.split(list(read_shard(fh, str(path), fmt, cfg)))

    @staticmethod
    def http_response(status: int, reason: str, content_type: str | None, body: bytes) -> bytes:
        head = f"HTTP/1.1 {status} {reason}\r\n"
        if content_type is not None:
            head += f"Content-Type: {content_type}\r\n"
        head += f"Content-Length: {len(body)}\r\n\r\n"
        return head.encode() + body

    @staticmethod
    def warc_record(record_type: str, uri: str, record_id: str | None, block: bytes,
                    content_type: str = "application/http; msgtype=response",
                    date: str = "2024-01-02T03:04:05Z") -> bytes:
        """One WARC/1.0 record, written out by hand so the test shows exactly what the reader gets."""
        head = f"WARC/1.0\r\nWARC-Type: {record_type}\r\nWARC-Target-URI: {uri}\r\nWARC-Date: {date}\r\n"
        if record_id is not None:
            head += f"WARC-Record-ID: <urn:uuid:{record_id}>\r\n"
        head += f"Content-Type: {content_type}\r\nContent-Length: {len(block)}\r\n\r\n"
        return head.encode() + block + b"\r\n\r\n"

    @classmethod
    def response(cls, n: int, status: int = 200, reason: str = "OK",
                 content_type: str | None = "text/html; charset=utf-8", body: bytes | None = None) -> bytes:
        """Response record number ``n``: id urn:uuid:00000000-0000-0000-0000-<n>, URL http://example.com/<n>."""
        body = body if body is not None else f"<html><body><p>page {n}</p></body></html>".encode()
        return cls.warc_record("response", f"http://example.com/{n}", cls.record_uuid(n),
                               cls.http_response(status, reason, content_type, body))

    @staticmethod
    def record_uuid(n: int) -> str:
        return f"00000000-0000-0000-0000-{n:012d}"


@pytest.fixture
def crawl() -> type[CrawlKit]:
    return CrawlKit
