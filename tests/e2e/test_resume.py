"""`toxsieve run --resume` after `kill -9`: completed input shards are re-used, the rest redone, and
the result equals an uninterrupted run byte for byte."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import CRAWL, DEMO_CONFIG
from toxsieve.pipelines.cli.main import main

pytestmark = pytest.mark.e2e

N_SHARDS = 16


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 WARC shards (copies of the two sample WARCs: duplicate ids and texts across shards)."""
    src = sorted((CRAWL / "dolma_tests").glob("warc__sample-*.warc.gz"))
    root = tmp_path_factory.mktemp("resume_in")
    for i in range(N_SHARDS):
        shutil.copy(src[i % len(src)], root / f"shard-{i:02d}.warc.gz")
    return root


def _argv(shards: Path, out: Path) -> list[str]:
    return ["run", "--input", str(shards / "*.warc.gz"), "--output", str(out), "--config", str(DEMO_CONFIG),
            "--run-id", "resume-test", "--quiet"]


def _tables(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.parquet"))}


def test_kill_then_resume_equals_uninterrupted_run(shards: Path, tmp_path: Path) -> None:
    out = tmp_path / "killed"
    cmd = [sys.executable, "-c", "import sys; from toxsieve.pipelines.cli.main import main; sys.exit(main(sys.argv[1:]))",
           *_argv(shards, out)]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    staging = out / "_staging"
    deadline = time.time() + 300
    try:
        while time.time() < deadline and proc.poll() is None and not list(staging.glob("*.done")):
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)  # the whole process group, workers included
    finally:
        proc.wait()
    done = list(staging.glob("*.done"))
    assert not (out / "manifest.json").exists(), "the run finished before it could be killed"
    assert 1 <= len(done) < N_SHARDS

    assert main([*_argv(shards, out), "--resume"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["resumed_inputs"] >= len(done)
    assert not staging.exists()  # removed after a complete run

    fresh = tmp_path / "fresh"
    assert main(_argv(shards, fresh)) == 0
    assert json.loads((fresh / "manifest.json").read_text())["resumed_inputs"] == 0
    killed_tables, fresh_tables = _tables(out), _tables(fresh)
    assert sorted(killed_tables) == sorted(fresh_tables)
    for name, data in fresh_tables.items():
        assert killed_tables[name] == data, name
    stats = [json.loads((d / "stats.json").read_text()) for d in (out, fresh)]
    for s in stats:  # shuffled bytes name the staging files: they differ between attempts
        s.pop("wall_time_s"), s.pop("docs_per_s"), s.pop("shuffle"), s.pop("stage_seconds")
    assert stats[0] == stats[1]


def test_resume_refuses_a_changed_config(shards: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main([*_argv(shards, out), "--keep-staging"]) == 0
    (out / "manifest.json").unlink()  # as if the run had died after staging
    changed = tmp_path / "changed.yaml"
    changed.write_text(DEMO_CONFIG.read_text() + "\nexact_dedup:\n  enabled: false\n")
    argv = _argv(shards, out)
    argv[argv.index("--config") + 1] = str(changed)
    assert main([*argv, "--resume"]) == 2
    # records staged by another toxsieve version (pickles of its classes) are not re-used either
    run_file = out / "_staging" / "_run.json"
    original = run_file.read_text()
    stored = json.loads(original)
    stored["fingerprint"]["toxsieve_version"] = "0.0.0-other"
    run_file.write_text(json.dumps(stored))
    assert main([*_argv(shards, out), "--resume"]) == 2
    run_file.write_text(original)
    # the same config resumes every shard without reading an input again
    assert main([*_argv(shards, out), "--resume"]) == 0
    assert json.loads((out / "manifest.json").read_text())["resumed_inputs"] == N_SHARDS


def test_resume_refuses_a_complete_run(shards: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(_argv(shards, out)) == 0
    assert main([*_argv(shards, out), "--resume"]) == 2
