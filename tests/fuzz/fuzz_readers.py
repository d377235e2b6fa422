"""Fuzz target for the shard readers (issue #10): `make fuzz` runs it for a bounded time.

With atheris installed (`pip install atheris`) this is a coverage-guided libFuzzer run;
without it, a Hypothesis-driven random search over the same target. A crash is any exception
out of ``read_shard`` (a bad record must become a DeadLetter) or a record that is neither a
Document nor a DeadLetter; every crash found becomes a regression test in tests/unit.

    python tests/fuzz/fuzz_readers.py [-max_total_time=60] [corpus_dir]
"""

from __future__ import annotations

import gzip
import io
import sys

FORMATS = (("x.warc", "warc"), ("x.warc.gz", "warc"), ("x.wet", "wet"), ("x.jsonl", "jsonl"),
           ("x.jsonl.gz", "jsonl"), ("x.jsonl.zst", "jsonl"), ("x.parquet", "parquet"))


def check_one_input(data: bytes) -> None:
    """Read ``data`` as the format its first byte picks (compressed when the name says so)."""
    from toxsieve.pipelines.config import InputConfig
    from toxsieve.pipelines.document import DeadLetter, Document
    from toxsieve.pipelines.io.readers import read_shard

    if not data:
        return
    name, fmt = FORMATS[data[0] % len(FORMATS)]
    body = data[1:]
    if name.endswith(".gz") and data[0] & 0x80:
        body = gzip.compress(body)  # valid compression around arbitrary content, half of the time
    elif name.endswith(".zst") and data[0] & 0x80:
        import zstandard

        body = zstandard.ZstdCompressor().compress(body)
    cfg = InputConfig(max_record_bytes=1 << 16)
    for record in read_shard(io.BytesIO(body), name, fmt, cfg):
        if not isinstance(record, Document | DeadLetter):
            raise AssertionError(f"reader yielded {type(record).__name__}")
        if isinstance(record, Document):
            for value in (record.doc_id, record.url, record.text):
                if value is not None:
                    value.encode("utf-8")  # Parquet must be able to store every string


SEEDS = [
    b"\x00WARC/1.0\r\nWARC-Type: response\r\nContent-Type: application/http; msgtype=response\r\n"
    b"Content-Length: 60\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html><p>hi</p></html>\r\n\r\n",
    b"\x02WARC/1.0\r\nWARC-Type: conversion\r\nContent-Length: 5\r\n\r\nhello\r\n\r\n",
    b'\x03{"id": "a", "text": "hello"}\n{"id": 1, "text": "x"}\n',
]


def _hypothesis_main(seconds: float) -> None:
    import time

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    deadline = time.monotonic() + seconds
    runs = 0

    @settings(max_examples=10**9, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.one_of(st.binary(max_size=8192),
                     st.sampled_from(SEEDS).flatmap(lambda s: st.binary(max_size=64).map(lambda t: s[:-8] + t))))
    def target(data: bytes) -> None:
        nonlocal runs
        runs += 1
        if time.monotonic() > deadline:
            raise _Done
        check_one_input(data)

    try:
        target()
    except _Done:
        pass
    print(f"fuzz_readers (hypothesis): {runs} inputs in {seconds:.0f} s, no crash")


class _Done(Exception):
    pass


def main(argv: list[str]) -> None:
    seconds = 60.0
    for arg in argv[1:]:
        if arg.startswith("-max_total_time="):
            seconds = float(arg.split("=", 1)[1])
    try:
        import atheris
    except ImportError:
        _hypothesis_main(seconds)
        return
    with atheris.instrument_imports():
        import toxsieve.pipelines.io.readers  # noqa: F401
        import toxsieve.pipelines.io.warc_frames  # noqa: F401
    atheris.Setup(argv, check_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
