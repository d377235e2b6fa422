"""WARC record framing with validation and resynchronisation. Pure Python, no Beam.

fastwarc trusts each record's Content-Length: one that is too large swallows the next record into
the payload, one that is too small ends the shard. Here every record's end is checked (its block
is followed by CRLF CRLF and then the next ``WARC/`` header or the end of the shard); a record that
fails is reported as ``Damaged`` with its offset, and reading resumes at the next line that starts
a WARC header, so every intact record after it is kept. Bytes that are no record at all (garbage
between records) are reported once per run of garbage as ``Garbage``.

Offsets are positions in the decompressed stream.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

_CHUNK = 1 << 20
MAX_HEADER_BYTES = 1 << 16  # a WARC header block longer than this is not a header
_HEADER_END = b"\r\n\r\n"
_RECORD_START = re.compile(rb"(?:^|\n)(WARC/[0-9])")
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*([0-9]{1,18})[ \t]*\r\n", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Frame:
    """One well-framed record: its offset, its header block and, unless oversized, the whole record."""

    offset: int
    content_length: int
    data: bytes | None  # header + block + trailer, for fastwarc; None when skipped as oversized
    header: bytes


@dataclass(frozen=True, slots=True)
class Damaged:
    """A record whose header parsed but whose declared length does not end where the next record starts."""

    offset: int
    content_length: int
    header: bytes
    problem: str


@dataclass(frozen=True, slots=True)
class Garbage:
    """A run of bytes that holds no parseable record (from ``offset``, ``length`` bytes)."""

    offset: int
    length: int
    excerpt: bytes


class _Window:
    """A forward window over a stream, addressed by absolute offset; compacts as it goes."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.buf = bytearray()
        self.base = 0  # absolute offset of buf[0]
        self.eof = False
        self.error: BaseException | None = None  # what the stream raised (a truncated gzip member)

    def _read(self, n: int) -> bytes:
        # The bytes decoded before a decompression error are still records: the error is kept and
        # raised by the framing loop once it needs bytes past them.
        try:
            chunk = self.stream.read(n)
        except Exception as exc:  # noqa: BLE001 - re-raised by iter_warc_frames
            self.error = exc
            chunk = b""
        if not chunk:
            self.eof = True
        return chunk

    def fill_to(self, end: int) -> None:
        """Read until the window reaches absolute offset ``end`` or the stream ends."""
        while not self.eof and self.base + len(self.buf) < end:
            self.buf += self._read(_CHUNK)

    def end(self) -> int:
        return self.base + len(self.buf)

    def get(self, start: int, stop: int) -> bytes:
        self.fill_to(stop)
        return bytes(self.buf[start - self.base: stop - self.base])

    def drop_before(self, pos: int) -> None:
        k = pos - self.base
        if k > 0:
            del self.buf[:k]
            self.base = pos

    def skip_to(self, pos: int) -> None:
        """Move to ``pos`` without keeping the bytes (an oversized record)."""
        if pos <= self.end():
            self.drop_before(pos)
            return
        self.base, self.buf = self.end(), bytearray()
        while self.base < pos and not self.eof:
            self.base += len(self._read(min(_CHUNK, pos - self.base)))

    def rewind_to(self, pos: int) -> bool:
        """Go back to ``pos`` (seek); False if the stream cannot seek."""
        if pos >= self.base:
            return True
        try:
            self.stream.seek(pos)
        except (OSError, ValueError, AttributeError):
            return False
        self.buf, self.base, self.eof, self.error = bytearray(), pos, False, None
        return True

    def find_record_start(self, pos: int) -> int | None:
        """The offset of the next line at or after ``pos`` that starts with ``WARC/<digit>``."""
        scan = pos
        while True:
            self.fill_to(scan + _CHUNK)
            start = max(0, scan - 1 - self.base)  # one byte back: the newline before the header
            match = _RECORD_START.search(self.buf, start)
            while match is not None and self.base + match.start(1) < pos:
                match = _RECORD_START.search(self.buf, match.start(1) + 1)
            if match is not None:
                return self.base + match.start(1)
            if self.eof:
                return None
            scan = self.end() - 8  # a header may straddle the chunk boundary
            self.drop_before(max(pos, scan - 1))


def iter_warc_frames(stream: IO[bytes], max_record_bytes: int) -> Iterator[Frame | Damaged | Garbage]:
    """Every record of a decompressed WARC stream as a Frame, Damaged or Garbage, in stream order.

    Raises what the stream raises (e.g. EOFError of a truncated gzip member); the caller turns it
    into a dead letter.
    """
    win = _Window(stream)
    pos = 0
    garbage_from: int | None = None
    garbage_excerpt = b""
    while True:
        win.fill_to(pos + 8)
        if pos >= win.end() and win.eof:
            break
        header = _parse_header(win, pos) if win.get(pos, pos + 5) == b"WARC/" else None
        if header is None:
            # not a record here: extend the current run of garbage to the next header candidate
            if garbage_from is None:
                garbage_from, garbage_excerpt = pos, win.get(pos, pos + 200)
            nxt = win.find_record_start(pos + 1)
            if nxt is None:
                break
            pos = nxt
            continue
        if garbage_from is not None:
            yield Garbage(garbage_from, pos - garbage_from, garbage_excerpt[: pos - garbage_from])
            garbage_from = None
        head, length = header
        body_start = pos + len(head)
        body_end = body_start + length
        data = None
        if length > max_record_bytes:
            win.skip_to(body_end)
        else:
            win.fill_to(body_end + 9)
        trailer = win.get(body_end, body_end + 9)
        after = body_end + 4
        # The record ends well when its block is followed by CRLF CRLF. What follows that is the next
        # record, the end of the shard, or garbage (reported as such, after this record).
        ends_well = trailer[:4] == _HEADER_END
        if ends_well and trailer[4:9] != b"WARC/" and not (win.eof and after >= win.end()):
            digest = _BLOCK_DIGEST.search(head)
            if digest is not None and length <= max_record_bytes:
                ends_well = _digest_matches(win.get(body_start, body_end), digest.group(1))
        swallowed = None
        if ends_well:
            if length <= max_record_bytes:
                data = win.get(pos, after)
                swallowed = swallowed_record(data[len(head): len(head) + length], head)
            if swallowed is None:
                yield Frame(pos, length, data, head)
                win.drop_before(after)
                pos = after
                continue
        # The declared length does not end at a record boundary: report the record, resume inside it.
        reached = win.end()
        if win.error is not None and body_end + 4 > reached:
            raise win.error  # the shard is cut inside this record, not mis-framed
        if swallowed is not None:
            problem = (f"declares Content-Length {length}, which runs over the complete WARC record that starts "
                       f"at offset {body_start + swallowed} ({_digest_note(head)})")
        elif win.eof and body_end + 4 > reached:
            problem = f"declares Content-Length {length}, but the shard ends {max(0, reached - body_start)} bytes after its header"
        else:
            problem = f"declares Content-Length {length}, but no WARC record starts at offset {after} where it would end"
        yield Damaged(pos, length, head, problem)
        if not win.rewind_to(body_start):
            raise OSError(f"cannot seek back to offset {body_start} to resynchronise after a damaged record")
        nxt = win.find_record_start(body_start)
        if nxt is None:
            break
        win.drop_before(nxt)
        pos = nxt
    if win.error is not None:
        raise win.error
    if garbage_from is not None:
        yield Garbage(garbage_from, max(win.end(), garbage_from) - garbage_from, garbage_excerpt)


def _parse_header(win: _Window, pos: int) -> tuple[bytes, int] | None:
    """(header block including its blank line, Content-Length) of a record starting at ``pos``."""
    win.fill_to(pos + MAX_HEADER_BYTES)
    i = win.buf.find(_HEADER_END, pos - win.base, pos - win.base + MAX_HEADER_BYTES)
    if i < 0:
        return None
    head = bytes(win.buf[pos - win.base: i + 4])
    match = _CONTENT_LENGTH.search(head)
    if match is None:
        return None
    return head, int(match.group(1))


_BLOCK_DIGEST = re.compile(rb"\r\nWARC-Block-Digest:[ \t]*sha1:([A-Za-z0-9]+)", re.IGNORECASE)
_EMBEDDED = b"\r\n\r\nWARC/"


def swallowed_record(block: bytes, head: bytes) -> int | None:
    """Where a complete WARC record starts inside ``block``, if the block swallowed one.

    A Content-Length that is too large by exactly the length of the following record(s) still
    ends at a record boundary. Such a block holds, after its own content, CRLF CRLF and a chain
    of well-framed records that ends exactly at its end. The record's WARC-Block-Digest decides
    when present; without one, a chain that starts right after the HTTP header block is taken as
    a served WARC file (the payload), not as damage.
    """
    i = block.find(_EMBEDDED)
    if i < 0:
        return None
    digest = _BLOCK_DIGEST.search(head)
    if digest is not None and _digest_matches(block, digest.group(1)):
        return None
    http_end = block.find(b"\r\n\r\n") if block.startswith(b"HTTP/") else -1
    for _ in range(16):
        if i < 0:
            return None
        start = i + 4
        if start - 4 != http_end and _chain_ends_at(block, start):
            return start
        i = block.find(_EMBEDDED, i + 1)
    return None


def _chain_ends_at(block: bytes, start: int) -> bool:
    """Whether well-framed WARC records follow one another from ``start`` to exactly the end of ``block``."""
    pos = start
    for _ in range(1000):
        end = block.find(_HEADER_END, pos, pos + MAX_HEADER_BYTES)
        if end < 0:
            return False
        match = _CONTENT_LENGTH.search(block, pos, end + 4)
        if match is None:
            return False
        after = end + 4 + int(match.group(1))
        if after == len(block):  # the last swallowed record: the outer record's trailer is its own
            return True
        if block[after: after + 4] != _HEADER_END:
            return False
        pos = after + 4
        if pos == len(block):
            return True
        if not block.startswith(b"WARC/", pos):
            return False
    return False


def _digest_note(head: bytes) -> str:
    return ("its WARC-Block-Digest does not match" if _BLOCK_DIGEST.search(head)
            else "found by the record chain; the record has no WARC-Block-Digest")


def _digest_matches(block: bytes, expected: bytes) -> bool:
    """WARC-Block-Digest ``sha1:<base32>`` of the block (checked only where framing is in doubt)."""
    import base64
    import hashlib

    actual = base64.b32encode(hashlib.sha1(block).digest())  # noqa: S324 - the digest WARC defines
    return actual.upper() == expected.upper()
