"""Progress while a pipeline runs: one run-wide line from the driver, and per-worker counts.

The run-wide line is true across worker processes: each reader, when it has read a whole input
file, writes a marker named after that file into ``<output>/.progress/`` (rewritten, not added,
when a runner retries the file); the driver knows every file and its size from ``match_inputs``,
lists the markers every interval and prints files done / total, bytes done / total with a
percentage, the rate over the last minute (not bytes ÷ total elapsed, which lags behind any change
of speed) and the ETA that rate gives, and the pass the run is in. The directory is removed at the
end of the run.

Beam runners do not all expose metrics while a job runs (the local FnApiRunner and the DaskRunner
do not), so each worker process also logs its own running counts (records read, per stage), marked
as that process's.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable

_LOG = logging.getLogger("toxsieve.progress")

PROGRESS_DIR = ".progress"
RATE_WINDOW_S = 60.0


# --- the arithmetic (pure) ----------------------------------------------------------------------


class RateWindow:
    """The rate of a growing total over the last ``window_s`` seconds, from (time, total) samples.

    The oldest sample kept is the newest one at least ``window_s`` old, so the rate always spans a
    full window once the run is that long (before that: since the first sample)."""

    def __init__(self, window_s: float = RATE_WINDOW_S) -> None:
        if window_s <= 0:
            raise ValueError("window_s must be > 0")
        self.window_s = window_s
        self._samples: deque[tuple[float, float]] = deque()

    def add(self, t: float, total: float) -> None:
        if self._samples and t < self._samples[-1][0]:
            raise ValueError("samples must come in time order")
        self._samples.append((t, total))
        while len(self._samples) > 2 and self._samples[1][0] <= t - self.window_s:
            self._samples.popleft()

    def rate(self) -> float | None:
        """Units per second over the window; None until two samples span some time."""
        if len(self._samples) < 2:
            return None
        (t0, v0), (t1, v1) = self._samples[0], self._samples[-1]
        if t1 <= t0:
            return None
        return max(v1 - v0, 0.0) / (t1 - t0)


def eta_seconds(done: float, total: float, rate: float | None) -> float | None:
    """Seconds left at ``rate``; 0 when done; None when the rate is unknown or zero."""
    if done >= total:
        return 0.0
    if not rate or rate <= 0:
        return None
    return (total - done) / rate


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover - the loop returns


def progress_line(stage: str, files_done: int, files_total: int, bytes_done: int, bytes_total: int,
                  rate_bytes_s: float | None, elapsed_s: float) -> str:
    """``progress [12m03s] reading and scoring: files 3/16, 12.0 MB / 64.0 MB (18.8%), 1.2 MB/s (last 60s),
    reading ETA 43s``. The ETA is for reading the remaining bytes at the recent rate; what follows the
    last read (dedup, writing) is named as the stage, not guessed."""
    pct = 100.0 * bytes_done / bytes_total if bytes_total else (100.0 if files_done >= files_total else 0.0)
    rate = f"{format_bytes(rate_bytes_s)}/s" if rate_bytes_s is not None else "? B/s"
    eta = eta_seconds(bytes_done, bytes_total, rate_bytes_s) if files_done < files_total else 0.0
    return (f"progress [{format_duration(elapsed_s)}] {stage}: files {files_done}/{files_total}, "
            f"{format_bytes(bytes_done)} / {format_bytes(bytes_total)} ({pct:.1f}%), "
            f"{rate} (last {RATE_WINDOW_S:.0f}s), reading ETA {format_duration(eta)}")


# --- file markers (written by readers, listed by the driver) ------------------------------------


def progress_dir(output: str) -> str:
    from apache_beam.io.filesystems import FileSystems

    return FileSystems.join(output, PROGRESS_DIR)


SIGNALS = "pass 1/3 signals (read, extract, filter, score)"
WRITTEN_PREFIX = "w-"  # the marker of an input file whose outputs are written (pass 3)


def marker_name(path: str, written: bool = False) -> str:
    return (WRITTEN_PREFIX if written else "") + hashlib.sha1(path.encode("utf-8")).hexdigest()[:20] + ".done"


def mark_file_done(directory: str, path: str, written: bool = False) -> None:
    """Record that ``path`` has been read completely, or (``written``) that its outputs are written
    (idempotent: a retried file rewrites its marker). Progress is best effort: a marker that cannot
    be written never fails the run."""
    from apache_beam.io.filesystems import FileSystems

    try:
        with FileSystems.create(FileSystems.join(directory, marker_name(path, written))) as fh:
            fh.write(path.encode("utf-8"))
    except Exception as exc:  # noqa: BLE001 - progress must not break a run
        _LOG.debug("progress marker for %s not written: %s", path, exc)


def list_markers(directory: str) -> set[str]:
    from apache_beam.io.filesystems import FileSystems

    try:
        result = FileSystems.match([FileSystems.join(directory, "*.done")])[0]
    except Exception:  # noqa: BLE001 - no directory yet: nothing done
        return set()
    return {m.path.rsplit("/", 1)[-1] for m in result.metadata_list}


def remove_markers(directory: str) -> None:
    from apache_beam.io.filesystems import FileSystems

    try:
        if FileSystems.exists(directory):
            FileSystems.delete([directory])
    except Exception as exc:  # noqa: BLE001
        _LOG.debug("progress directory %s not removed: %s", directory, exc)


class RunProgress:
    """The driver's run-wide progress: files and bytes done from the readers' markers."""

    def __init__(self, files: Iterable[tuple[str, int]], directory: str, interval_s: float,
                 clock: Callable[[], float] = time.monotonic, emit: Callable[[str], None] | None = None,
                 list_done: Callable[[str], set[str]] = list_markers) -> None:
        self._sizes = {marker_name(path): size for path, size in files}
        self._written = {marker_name(path, written=True) for path, _ in files}
        self.files_total = len(self._sizes)
        self.bytes_total = sum(self._sizes.values())
        self.directory = directory
        self.interval_s = interval_s
        self._clock = clock
        self._emit = emit or (lambda line: _LOG.warning("%s", line))
        self._list_done = list_done
        self._started = clock()
        self._window = RateWindow()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.stage = SIGNALS

    def snapshot(self) -> tuple[int, int, int]:
        """(files read, their bytes, files whose outputs are written)."""
        markers = self._list_done(self.directory)
        done = markers & self._sizes.keys()
        return len(done), sum(self._sizes[name] for name in done), len(markers & self._written)

    def report(self) -> str:
        files_done, bytes_done, written = self.snapshot()
        now = self._clock()
        self._window.add(now, bytes_done)
        stage = self.stage
        if files_done >= self.files_total and stage == SIGNALS:
            stage = f"passes 2-3/3 dedup decisions and outputs, {written}/{self.files_total} files written"
        line = progress_line(stage, files_done, self.files_total, bytes_done, self.bytes_total,
                             self._window.rate(), now - self._started)
        self._emit(line)
        return line

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.report()
            except Exception as exc:  # noqa: BLE001 - progress must not break a run
                _LOG.debug("progress report failed: %s", exc)

    def __enter__(self) -> RunProgress:
        self._window.add(self._clock(), 0)
        self._thread = threading.Thread(target=self._loop, name="toxsieve-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.stage = "verifying outputs, writing stats and manifest"


# --- per worker process -------------------------------------------------------------------------


class _Progress:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._started = time.monotonic()
        self._last = self._started
        self._window = RateWindow()
        self._window.add(self._started, 0)
        self.interval_s = 10.0

    def add(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counts[key] += n
            now = time.monotonic()
            if now - self._last < self.interval_s:
                return
            self._last = now
            snapshot = dict(self._counts)
            elapsed = now - self._started
            self._window.add(now, snapshot.get("read", 0))
            rate = self._window.rate()
        parts = ", ".join(f"{k}={v:,}" for k, v in sorted(snapshot.items()))
        speed = f" ({rate:,.0f} records read/s over the last {RATE_WINDOW_S:.0f}s)" if rate else ""
        _LOG.warning("worker pid %d [%s]: %s%s", os.getpid(), format_duration(elapsed), parts, speed)


PROGRESS = _Progress()


def configure(interval_s: float) -> None:
    PROGRESS.interval_s = interval_s
