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
from toxsieve.pipelines.cli import main
from toxsieve.pipelines.lock import LOCK_FILE, output_lock

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
