"""An output directory belongs to one run: an exclusive lock file for the whole run.

On a local (or POSIX network) file system the lock file is created atomically (``O_CREAT|O_EXCL``)
and holds the run id, host and pid. A lock whose pid no longer runs on this host is stale (the run
was killed) and is taken over; a lock from another host cannot be checked and is never broken
automatically. Object stores (gs://, s3://) have no atomic create-if-absent through Beam's file
systems: there the lock is checked and written, which stops a second run started after the first
one has begun, but not two runs started in the same instant (docs/reliability.md).
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from apache_beam.io.filesystems import FileSystems

LOCK_FILE = "_toxsieve.lock"


class OutputLockedError(RuntimeError):
    """Another run holds the output directory."""


def _is_local(path: str) -> bool:
    return "://" not in path


def read_lock(output: str) -> dict[str, Any] | None:
    """The lock holder's record, or None when the directory is not locked."""
    path = FileSystems.join(output, LOCK_FILE)
    try:
        if _is_local(output):
            with open(path, "rb") as fh:
                raw = fh.read()
        else:
            if not FileSystems.exists(path):
                return None
            with FileSystems.open(path) as fh:
                raw = fh.read()
    except FileNotFoundError:
        return None
    try:
        holder = json.loads(raw or b"{}")
    except ValueError:
        holder = {}
    return holder if isinstance(holder, dict) else {}


def lock_is_stale(holder: dict[str, Any]) -> bool:
    """True when the holder ran on this host and its process is gone."""
    if holder.get("host") != socket.gethostname():
        return False
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, owned by another user
    return False


def describe(holder: dict[str, Any]) -> str:
    return (f"run {holder.get('run_id', '?')} (host {holder.get('host', '?')}, pid {holder.get('pid', '?')}, "
            f"started {holder.get('started_at', '?')})")


@contextmanager
def output_lock(output: str, run_id: str) -> Iterator[dict[str, Any]]:
    """Hold ``output`` for one run; raises OutputLockedError if another live run holds it."""
    record = {"run_id": run_id, "host": socket.gethostname(), "pid": os.getpid(),
              "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    payload = json.dumps(record).encode()
    path = FileSystems.join(output, LOCK_FILE)
    created_dir = False
    if _is_local(output):
        if not os.path.isdir(output):
            os.makedirs(output, exist_ok=True)
            created_dir = True
        _acquire_local(path, output, payload)
    else:
        holder = read_lock(output)
        if holder is not None:
            raise _locked(output, holder)
        with FileSystems.create(path) as fh:
            fh.write(payload)
    try:
        yield record
    finally:
        holder = read_lock(output)
        if holder is not None and holder.get("run_id") == run_id and holder.get("pid") == record["pid"]:
            FileSystems.delete([path])
        if created_dir:
            try:
                os.rmdir(output)  # only if the run wrote nothing (it failed before any work)
            except OSError:
                pass


def _acquire_local(path: str, output: str, payload: bytes) -> None:
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = read_lock(output)
            if holder is None:
                continue  # released in between: try again
            if not lock_is_stale(holder):
                raise _locked(output, holder) from None
            # A dead run's lock: move it aside atomically (only one taker wins the rename), then retry.
            try:
                os.rename(path, f"{path}.stale-{os.getpid()}")
                os.remove(f"{path}.stale-{os.getpid()}")
            except FileNotFoundError:
                pass
            continue
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        return
    raise OutputLockedError(f"output directory {output} is locked ({path}) and the lock could not be taken")


def _locked(output: str, holder: dict[str, Any]) -> OutputLockedError:
    return OutputLockedError(
        f"output directory {output} is in use by toxsieve {describe(holder)}; wait for it to finish or choose "
        f"another --output. If that run is no longer running, delete {FileSystems.join(output, LOCK_FILE)}")
