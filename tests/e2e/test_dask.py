"""The whole default pipeline on a real dask.distributed cluster (a scheduler and two worker
processes on 127.0.0.1) gives byte-identical kept/, removed/ and metadata/ to the local runner."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import DEMO_CONFIG, SAMPLE_GLOBS
from toxsieve.pipelines.cli.main import main

pytest.importorskip("distributed")

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

START_TIMEOUT_S = 120


def _spawn(args: list[str], cwd: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", *args], cwd=cwd, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def dask_scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A scheduler and two single-threaded workers, each its own process, on random free ports."""
    root = tmp_path_factory.mktemp("dask")
    sched_file = root / "scheduler.json"
    procs = [_spawn(["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                     "--scheduler-file", str(sched_file)], root, root / "scheduler.log")]
    try:
        for i in range(2):
            procs.append(_spawn(["distributed.cli.dask_worker", "--scheduler-file", str(sched_file), "--host",
                                 "127.0.0.1", "--nthreads", "1", "--no-dashboard", "--name", f"w{i}"],
                                root, root / f"worker{i}.log"))
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            log = (root / "scheduler.log").read_text(errors="replace")
            if sched_file.exists() and log.count("Register worker") >= 2:
                break
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError(f"dask cluster did not start:\n{log[-3000:]}")
            time.sleep(0.5)
        address = json.loads(sched_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        yield address
    finally:
        _stop(procs)


def _run(out: Path, inputs: list[str], config: Path, extra: list[str]) -> dict:
    argv = ["run", "--config", str(config), "--output", str(out), "--run-id", "same-run", "--quiet"]
    for pattern in inputs:
        argv += ["--input", pattern]
    assert main(argv + extra) == 0
    return json.loads((out / "stats.json").read_text())


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.glob("*.parquet"))}


def _assert_identical(local: Path, dask: Path) -> None:
    for name in ("kept", "removed", "metadata", "dead_letter"):
        a, b = _files(local / name), _files(dask / name)
        assert a.keys() == b.keys(), name
        for file in a:
            if a[file] != b[file]:  # say which rows differ before failing
                rows_a = pq.read_table(local / name / file).num_rows
                rows_b = pq.read_table(dask / name / file).num_rows
                pytest.fail(f"{name}/{file} differs: local {rows_a} rows, dask {rows_b} rows")


@pytest.fixture(scope="module")
def local_sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("local") / "out"
    return out, _run(out, SAMPLE_GLOBS, DEMO_CONFIG, [])


def test_sample_on_dask_equals_local(tmp_path: Path, dask_scheduler: str, local_sample: tuple[Path, dict]) -> None:
    local_dir, local = local_sample
    dask = _run(tmp_path / "dask", SAMPLE_GLOBS, DEMO_CONFIG,
                ["--runner", "DaskRunner", "--dask_client_address", dask_scheduler])
    assert dask["conservation"]["ok"] and dask["read"] == local["read"] > 0
    assert dask["toxicity"]["scored"] == local["toxicity"]["scored"] > 0
    _assert_identical(local_dir, tmp_path / "dask")


def test_dask_local_starts_its_own_cluster(tmp_path: Path, local_sample: tuple[Path, dict]) -> None:
    local_dir, local = local_sample
    dask = _run(tmp_path / "dask", SAMPLE_GLOBS, DEMO_CONFIG, ["--dask-local", "2"])
    assert dask["read"] == local["read"] > 0
    _assert_identical(local_dir, tmp_path / "dask")


def test_dask_local_rejects_a_second_runner(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["run", "--input", SAMPLE_GLOBS[0], "--output", str(tmp_path / "o"), "--dask-local", "2",
            "--runner", "DaskRunner"]
    assert main(argv) == 2
    assert "--dask-local starts its own cluster" in capsys.readouterr().err


def test_planted_near_duplicates_on_dask_equal_local(tmp_path: Path, dask_scheduler: str) -> None:
    from bench.neardup_corpus import make_corpus

    corpus = make_corpus(n_pairs=150, n_singletons=100, seed=12, j_min=0.5)
    data = tmp_path / "data"
    data.mkdir()
    ids = sorted(corpus.docs)
    for part in range(3):  # several input files: several partitions on dask
        with (data / f"part-{part}.jsonl").open("w") as fh:
            for doc_id in ids[part::3]:
                fh.write(json.dumps({"id": doc_id, "text": corpus.docs[doc_id]}) + "\n")
    config = tmp_path / "config.yaml"
    # the synthetic words are no known language, and no prose for the web-page quality rules either
    config.write_text("language:\n  min_score: 0.0\nquality:\n  length: {enabled: false}\n"
                      "  gopher_quality: {enabled: false}\n")
    inputs = [str(data / "*.jsonl")]
    local = _run(tmp_path / "local", inputs, config, [])
    dask = _run(tmp_path / "dask", inputs, config, ["--runner", "DaskRunner", "--dask_client_address", dask_scheduler])
    near = local["removed_by_stage"]["near_dedup"]
    expected = sum(1 for pair in corpus.pairs if pair.jaccard >= 0.9)  # surely above the 0.8 threshold
    assert sum(near.values()) >= expected > 20
    assert dask["removed_by_stage"] == local["removed_by_stage"]
    assert dask["read"] == local["read"] == len(corpus.docs)
    _assert_identical(tmp_path / "local", tmp_path / "dask")
