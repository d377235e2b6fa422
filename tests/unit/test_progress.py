"""Progress arithmetic (rate over a recent window, ETA) and the run-wide line built from file markers."""

from __future__ import annotations

from pathlib import Path

import pytest

from toxsieve.pipelines.runtime.progress import (
    RateWindow,
    RunProgress,
    eta_seconds,
    format_duration,
    list_markers,
    mark_file_done,
    marker_name,
    progress_line,
    remove_markers,
)


def test_rate_is_over_the_recent_window_not_the_whole_run() -> None:
    window = RateWindow(window_s=60)
    total = 0
    for t in range(0, 101):  # 1 unit/s for 100 s
        total = t
        window.add(t, total)
    for t in range(101, 201):  # then 10 units/s for 100 s
        total += 10
        window.add(t, total)
    assert window.rate() == pytest.approx(10.0)  # reads ÷ elapsed would say 5.5
    assert total / 200 == pytest.approx(5.5)


def test_rate_spans_the_window_and_is_unknown_before_two_samples() -> None:
    window = RateWindow(window_s=10)
    assert window.rate() is None
    window.add(0, 0)
    assert window.rate() is None
    window.add(5, 50)
    assert window.rate() == pytest.approx(10.0)  # shorter than the window: since the first sample
    window.add(30, 50)  # stalled for 25 s
    assert window.rate() == pytest.approx(0.0)
    with pytest.raises(ValueError):
        window.add(29, 60)


def test_eta_from_remaining_and_rate() -> None:
    assert eta_seconds(25, 100, 5.0) == pytest.approx(15.0)
    assert eta_seconds(100, 100, None) == 0.0
    assert eta_seconds(10, 100, None) is None
    assert eta_seconds(10, 100, 0.0) is None
    assert format_duration(None) == "?"
    assert format_duration(43) == "43s"
    assert format_duration(723) == "12m03s"
    assert format_duration(3723) == "1h02m03s"


def test_progress_line_has_every_field() -> None:
    line = progress_line("reading and scoring", 3, 16, 12 * 2**20, 64 * 2**20, 2**20, 723)
    assert line == ("progress [12m03s] reading and scoring: files 3/16, 12.0 MB / 64.0 MB (18.8%), "
                    "1.0 MB/s (last 60s), reading ETA 52s")


def test_run_progress_counts_marked_files_and_their_bytes() -> None:
    files = [("a.warc.gz", 100), ("b.warc.gz", 300), ("c.jsonl", 600)]
    done: set[str] = set()
    now = [0.0]
    lines: list[str] = []
    prog = RunProgress(files, "unused", 10, clock=lambda: now[0], emit=lines.append, list_done=lambda _: set(done))
    prog._window.add(0.0, 0)
    now[0] = 10.0
    done |= {marker_name("b.warc.gz"), marker_name("not-an-input")}  # a stray marker is not counted
    line = prog.report()
    assert "files 1/3" in line and "300 B / 1000 B (30.0%)" in line and "30 B/s" in line
    assert "reading ETA 23s" in line and "pass 1/3 signals" in line
    now[0] = 20.0
    done |= {marker_name("a.warc.gz"), marker_name("c.jsonl"), marker_name("c.jsonl", written=True)}
    line = prog.report()
    assert "files 3/3" in line and "(100.0%)" in line and "reading ETA 0s" in line
    assert "passes 2-3/3 dedup decisions and outputs, 1/3 files written" in line
    assert lines[-1] == line


def test_markers_round_trip_and_a_retried_file_counts_once(tmp_path: Path) -> None:
    directory = str(tmp_path / ".progress")
    assert list_markers(directory) == set()
    mark_file_done(directory, "/data/a.warc.gz")
    mark_file_done(directory, "/data/a.warc.gz")  # a runner retried the file
    mark_file_done(directory, "/data/b.jsonl")
    assert list_markers(directory) == {marker_name("/data/a.warc.gz"), marker_name("/data/b.jsonl")}
    remove_markers(directory)
    assert not (tmp_path / ".progress").exists()
