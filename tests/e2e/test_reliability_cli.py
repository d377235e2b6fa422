"""Issue #10 end to end: an output directory belongs to one run; careless use gets a clear exit 2."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import CRAWL
from toxsieve.pipelines.cli.main import main
from toxsieve.pipelines.runtime.lock import LOCK_FILE, output_lock

pytestmark = pytest.mark.e2e

SMALL = str(CRAWL / "whirlwind_cc2024" / "whirlwind.warc.wet.gz")


def _run(out: Path | str, *extra: str, inputs: list[str] | None = None) -> int:
    argv = ["run", "--output", str(out), "--quiet", "--run-id", "rel-run"]
    for pattern in inputs or [SMALL]:
        argv += ["--input", pattern]
    return main([*argv, *extra])


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# --- (3) one run per output directory ---------------------------------------------


def test_a_second_run_into_a_locked_output_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    with output_lock(str(out), "first-run"):  # the first run, still going
        assert _run(out) == 2
        err = capsys.readouterr().err
        assert "in use by toxsieve run first-run" in err and f"pid {__import__('os').getpid()}" in err
        assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]  # the second run wrote nothing
        assert _run(out, "--overwrite") == 2  # --overwrite does not break a live run's lock
        assert json.loads((out / LOCK_FILE).read_text())["run_id"] == "first-run"
    assert not (out / LOCK_FILE).exists()
    assert _run(out) == 0  # once the first run is done, the directory is free
    assert (out / "manifest.json").is_file() and not (out / LOCK_FILE).exists()


def test_the_lock_of_a_killed_run_on_this_host_is_taken_over(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_FILE).write_text(json.dumps({"run_id": "killed", "host": socket.gethostname(),
                                             "pid": _dead_pid(), "started_at": "2026-01-01T00:00:00Z"}))
    assert _run(out) == 0
    assert (out / "manifest.json").is_file() and not (out / LOCK_FILE).exists()


def test_a_lock_from_another_host_is_never_broken(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_FILE).write_text(json.dumps({"run_id": "elsewhere", "host": "some-other-host.invalid", "pid": 1}))
    assert _run(out) == 2
    assert "some-other-host.invalid" in capsys.readouterr().err


# --- (4) --output naming a regular file ---------------------------------------------


def test_output_naming_an_existing_file_is_refused_before_any_work(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "results.parquet"
    target.write_bytes(b"not a directory")
    assert _run(target) == 2
    err = capsys.readouterr().err
    assert "is an existing file, not a directory" in err and "Traceback" not in err
    assert target.read_bytes() == b"not a directory"
    assert _run(target / "sub") == 2
    assert f"inside {target}" in capsys.readouterr().err


# --- (7) audit of an interrupted run --------------------------------------------------


def test_audit_of_an_interrupted_run_says_it_is_incomplete(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    # what a run killed after writing kept/ and metadata/ leaves: no removed/, stats.json, manifest.json
    for name in ("kept", "metadata", "dead_letter"):
        (out / name).mkdir(parents=True)
        pq.write_table(pa.table({"doc_id": ["a"]}), out / name / "part-00000-of-00001-000.parquet")
    (out / "dead_letter" / ".tmp-part-00000.parquet").write_bytes(b"partial")
    (out / LOCK_FILE).write_text(json.dumps({"run_id": "rel-run", "host": socket.gethostname(),
                                             "pid": _dead_pid(), "started_at": "2026-01-01T00:00:00Z"}))
    assert main(["audit", str(out)]) == 2
    err = capsys.readouterr().err
    assert "incomplete toxsieve run" in err and "no manifest.json" in err
    assert "kept/ with 1 Parquet file(s)" in err and "1 temporary file(s)" in err, err
    assert "lock of run rel-run" in err and "its process is gone" in err
    assert "not a toxsieve output directory" not in err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["audit", str(empty)]) == 2
    assert "not a toxsieve output directory" in capsys.readouterr().err


# --- a directory of every hostile input: the run completes, every intact record is accounted for --


WORDS = ("garden river morning bread window winter summer letter market teacher village harbour music "
         "paper table mountain station kitchen evening library travel weather forest coffee story "
         "bridge season engine student orchard valley harvest meadow candle street").split()


def _prose(seed: int) -> str:
    import random

    rng = random.Random(seed)
    sentences = []
    for _ in range(12):
        words = [rng.choice(WORDS) for _ in range(9)]
        sentences.append("The " + " ".join(words) + " were near the old house.")
    return " ".join(sentences)


def _record(n: int, body: bytes, content_type: str = "text/html; charset=utf-8") -> bytes:
    http = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
    head = (f"WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-{n:012d}>\r\n"
            f"WARC-Target-URI: http://site{n}.example/\r\nWARC-Date: 2024-01-01T00:00:00Z\r\n"
            f"Content-Type: application/http; msgtype=response\r\nContent-Length: {len(http)}\r\n\r\n").encode()
    return head + http + b"\r\n\r\n"


def _html(n: int) -> bytes:
    return f"<html><body><h1>Notes {n}</h1><p>{_prose(n)}</p></body></html>".encode()


def _set_length(record: bytes, delta: int) -> bytes:
    import re

    match = re.search(rb"Content-Length: (\d+)\r\n\r\nHTTP/", record)
    assert match is not None
    return record[: match.start(1)] + str(int(match.group(1)) + delta).encode() + record[match.end(1):]


def write_hostile_inputs(src: Path) -> dict[str, str]:
    """Every hostile input of issue #10 and of the earlier hostile tests; returns {intact doc_id: expectation}."""
    import gzip

    import zstandard

    src.mkdir()
    expect: dict[str, str] = {}

    def ok(n: int) -> str:
        doc_id = f"urn:uuid:00000000-0000-0000-0000-{n:012d}"
        expect[doc_id] = "kept"
        return doc_id

    nested = b"<html><body>" + b"<div>" * 20_000 + b"deep" + b"</div>" * 20_000 + b"</body></html>"
    (src / "nested.warc.gz").write_bytes(gzip.compress(_record(1, _html(1)) + _record(2, nested) + _record(3, _html(3))))
    ok(1), ok(3)
    expect["urn:uuid:00000000-0000-0000-0000-000000000002"] = "extract/html_too_complex"
    framing = [_record(n, _html(n)) for n in range(10, 16)]
    framing[1] = _set_length(framing[1], 300)  # too large
    framing[3] = _set_length(framing[3], -25)  # too small
    (src / "framing.warc").write_bytes(b"".join(framing))
    for n in (10, 12, 14, 15):
        ok(n)
    swallow = [_record(n, _html(n)) for n in range(20, 23)]
    swallow[0] = _set_length(swallow[0], len(swallow[1]))  # swallows the next record exactly
    (src / "swallow.warc.gz").write_bytes(gzip.compress(b"".join(swallow)))
    ok(21), ok(22)
    pdf = b"%PDF-1.4\n" + bytes(range(256)) * 16
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 16
    (src / "binary.warc").write_bytes(_record(30, pdf) + _record(31, png) + _record(32, _html(32)))
    ok(32)
    for n in (30, 31):
        expect[f"urn:uuid:00000000-0000-0000-0000-{n:012d}"] = "read/binary_content"
    a = [json.dumps({"id": "same", "text": _prose(40)}), '{"id": NaN, "text": "nan id"}',
         json.dumps({"id": 4.5, "text": "float id"}), json.dumps({"id": 41, "text": _prose(41)})]
    b = [json.dumps({"id": "same", "text": _prose(42)}), json.dumps({"id": "nan", "text": _prose(43)})]
    (src / "ids_a.jsonl").write_text("\n".join(a) + "\n")
    (src / "ids_b.jsonl").write_text("\n".join(b) + "\n")
    expect.update({"same": "kept", "41": "kept", "nan": "kept"})
    # the earlier hostile inputs: truncated gzip, random bytes, broken JSONL (zstd)
    good = gzip.compress(_record(50, _html(50)) + _record(51, _html(51)))
    (src / "truncated.warc.gz").write_bytes(good[: len(good) * 3 // 4])
    (src / "random.warc").write_bytes(bytes(range(256)) * 4)
    lines = [json.dumps({"id": f"j{i}", "text": _prose(60 + i)}) for i in range(3)] + ["{not json",
                                                                                      json.dumps({"id": "x"})]
    (src / "docs.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(("\n".join(lines) + "\n").encode()))
    expect.update({f"j{i}": "kept" for i in range(3)})
    return expect


def test_a_directory_of_hostile_inputs_completes_with_every_intact_record_accounted_for(tmp_path: Path) -> None:
    expect = write_hostile_inputs(tmp_path / "in")
    out = tmp_path / "out"
    assert _run(out, inputs=[str(tmp_path / "in" / "*")]) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["conservation"]["ok"] is True
    meta = pq.read_table(out / "metadata").to_pylist()
    by_id = {}
    for row in meta:
        assert row["doc_id"] not in by_id, f"doc_id {row['doc_id']} is not unique"
        by_id[row["doc_id"]] = row
    kept_ids = pq.read_table(out / "kept").column("doc_id").to_pylist()
    assert len(kept_ids) == len(set(kept_ids))
    for doc_id, expectation in expect.items():
        row = by_id[doc_id]
        outcome = "kept" if row["decision"] == "kept" else f"{row['stage']}/{row['reason']}"
        assert outcome == expectation, (doc_id, outcome)
    # the second "same" (ids_b.jsonl) was renamed, and says what it was called
    (renamed,) = [r for r in meta if r["input_doc_id"] == "same"]
    assert renamed["doc_id"].startswith("same#dup-") and renamed["source_path"].endswith("ids_b.jsonl")
    assert renamed["decision"] == "kept"
    dead = pq.read_table(out / "dead_letter").to_pylist()
    errors = sorted(d["error_type"] for d in dead)
    assert errors.count("WarcFramingError") == 3 and errors.count("InvalidId") == 2
    assert {"EOFError", "WarcParseError", "JSONDecodeError", "MissingTextField"} <= set(errors)
    framing = sorted((Path(d["source_path"]).name, d["source_offset"]) for d in dead
                     if d["error_type"] == "WarcFramingError")
    assert [name for name, _ in framing] == ["framing.warc", "framing.warc", "swallow.warc.gz"]
    assert framing[2][1] == 0 and 0 < framing[0][1] < framing[1][1]
    assert stats["removed_by_stage"]["extract"].get("html_too_complex") == 1
    assert stats["removed_by_stage"]["read"].get("binary_content") == 2
