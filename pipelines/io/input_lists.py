"""Checks on input and output locations before any work: path lists and remote filesystems.

``--input-list`` takes files of one path per line, plain or gzip/zstd-compressed, like Common
Crawl's ``warc.paths.gz`` / ``wet.paths.gz``: ``#`` comments and blank lines are skipped, relative
entries are joined to a base (``--input-base``, else config ``input.base``, else the list's own
directory), and every entry must exist; the first one that does not is an error naming its line.

A location on a remote filesystem (``gs://``, ``s3://``, ``azfs://``) needs that filesystem's
client libraries, which toxsieve keeps in extras; without them Beam fails deep inside the job with
a traceback, so :func:`check_filesystems` names the extra to install before any work.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

# scheme -> (module whose presence means the filesystem can work, what to install)
REMOTE_FILESYSTEMS: dict[str, tuple[str, str]] = {
    "gs": ("google.cloud.storage", "pip install 'toxsieve[gcp]' (apache-beam[gcp]==2.77.0)"),
    "s3": ("boto3", "pip install 'toxsieve[aws]' (apache-beam[aws]==2.77.0)"),
    "azfs": ("azure.storage.blob", "pip install 'apache-beam[azure]==2.77.0'"),
}


class InputListError(ValueError):
    """A path list, one of its entries, or a location's filesystem is unusable; the message says which."""


def scheme_of(path: str) -> str | None:
    """The URL scheme of a location (``gs`` for ``gs://b/x``), or None for a local path."""
    head, sep, _ = path.partition("://")
    return head.lower() if sep and head.isalnum() else None


def check_filesystems(paths: Iterable[str]) -> None:
    """Every location's filesystem is registered in Beam and its client libraries are importable."""
    for path in paths:
        scheme = scheme_of(path)
        if scheme is None:
            continue
        need = REMOTE_FILESYSTEMS.get(scheme)
        if need is not None and not module_available(need[0]):
            raise InputListError(f"{path}: the {scheme}:// filesystem is not installed; {need[1]}")
        try:
            FileSystems.get_filesystem(path)
        except ValueError as exc:
            hint = f"; {need[1]}" if need else ""
            raise InputListError(f"{path}: Beam has no filesystem for {scheme}://{hint} ({exc})") from exc


def module_available(name: str) -> bool:
    """Whether a (dotted) module can be imported, without importing it; a missing parent counts as missing."""
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:
        return False


def read_path_list(list_path: str, base: str | None = None) -> list[str]:
    """The paths a list file names, in its order, each resolved against ``base`` and checked to exist."""
    check_filesystems([list_path])
    if not FileSystems.exists(list_path):
        raise InputListError(f"--input-list {list_path} does not exist")
    base = base if base is not None else _parent(list_path)
    if base:
        check_filesystems([base])
    try:
        with FileSystems.open(list_path, compression_type=CompressionTypes.AUTO) as handle:
            raw = handle.read()
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise InputListError(f"--input-list {list_path} cannot be read as a text list: {exc}") from exc
    entries = parse_path_list(text, base)
    if not entries:
        raise InputListError(f"--input-list {list_path} names no path")
    check_filesystems(path for _, path in entries[:1])  # one scheme per base; the first entry shows it
    for line, path in entries:
        if not _exists(path):
            raise InputListError(f"--input-list {list_path} line {line}: {path} does not exist")
    return [path for _, path in entries]


def parse_path_list(text: str, base: str | None) -> list[tuple[int, str]]:
    """(line number, resolved path) for every entry of a list's text; comments and blank lines skipped."""
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        entries.append((number, resolve_entry(entry, base)))
    return entries


def resolve_entry(entry: str, base: str | None) -> str:
    """An absolute path or URL as it is; a relative one joined to ``base`` (as-is when there is none)."""
    if scheme_of(entry) is not None or entry.startswith("/") or not base:
        return entry
    if scheme_of(base) is not None:
        return base.rstrip("/") + "/" + entry.lstrip("/")
    return FileSystems.join(base, entry)


def _parent(path: str) -> str:
    if scheme_of(path) is not None:
        return path.rsplit("/", 1)[0] if path.count("/") > 2 else path
    return FileSystems.split(path)[0] or "."


def _exists(path: str) -> bool:
    try:
        return bool(FileSystems.match([path])[0].metadata_list)
    except Exception:  # noqa: BLE001 - Beam raises a generic error for a missing path on some filesystems
        return False
