"""Progress lines while a pipeline runs: per-process counters, printed at intervals.

Beam runners do not all expose metrics while a job is running (the local FnApiRunner and the
DaskRunner do not), so each worker process logs its own running counts.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter

_LOG = logging.getLogger("toxsieve.progress")


class _Progress:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._started = time.monotonic()
        self._last = self._started
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
        parts = ", ".join(f"{k}={v:,}" for k, v in sorted(snapshot.items()))
        read = snapshot.get("read", 0)
        rate = f" ({read / elapsed:,.0f} records read/s)" if read and elapsed > 0 else ""
        _LOG.warning("progress [pid %d, %.0fs]: %s%s", os.getpid(), elapsed, parts, rate)


PROGRESS = _Progress()


def configure(interval_s: float) -> None:
    PROGRESS.interval_s = interval_s
