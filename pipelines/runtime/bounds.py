"""Per-record resource bounds: cheap checks before parsing, and extraction under a wall-clock limit.

A crawl is hostile input: one page must cost at most one page. Three layers, cheapest first:

* ``sniff_binary``: magic bytes and the share of control bytes of a body labelled HTML
  (a PDF or PNG served as text/html) — a few microseconds, no decoding.
* ``html_nesting_depth``: the maximum element nesting depth from one regex pass over the tags.
  resiliparse's extractor is quadratic in depth (docs/reliability.md); the pass is skipped when
  the page has fewer ``<`` than the limit (its depth cannot exceed that).
* ``ExtractionWorker``: extraction in a persistent child process, killed and replaced when a page
  takes longer than the limit. A thread cannot stop C code that holds the GIL; a process can be
  killed. One child per DoFn instance, started on first use.

Pure Python, no Beam.
"""

from __future__ import annotations

import os
import re
import select
import struct
import subprocess
import sys
import time
from itertools import accumulate

# --- binary bodies ---------------------------------------------------------

# Formats whose first bytes identify them; none of them can start an HTML document.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "PDF"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"PK\x03\x04", "ZIP"),
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"BZh91AY&SY", "bzip2"),
    (b"7z\xbc\xaf\x27\x1c", "7-Zip"),
    (b"Rar!\x1a\x07", "RAR"),
    (b"\x7fELF", "ELF"),
    (b"\x00asm", "WebAssembly"),
    (b"wOFF", "WOFF font"),
    (b"wOF2", "WOFF2 font"),
    (b"OggS", "Ogg"),
    (b"fLaC", "FLAC"),
    (b"ID3\x03", "MP3"),
    (b"ID3\x04", "MP3"),
    (b"\x1aE\xdf\xa3", "Matroska/WebM"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "OLE2 (MS Office)"),
)
# RIFF containers (WAV, AVI, WebP) and ISO media (MP4, HEIC) carry their type a few bytes in.
_RIFF = re.compile(rb"RIFF....(WEBP|WAVE|AVI )", re.DOTALL)
_ISO_MEDIA = re.compile(rb"....ftyp", re.DOTALL)
# C0 control bytes that never appear in text: everything below 0x20 except TAB, LF, VT, FF, CR, ESC.
_CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 11, 12, 13, 27))
SNIFF_BYTES = 4096
MAX_CONTROL_SHARE = 0.05  # text in any ASCII-compatible encoding has none; binary ~12 % (1/8 of bytes)


def sniff_binary(body: bytes) -> str | None:
    """What binary format ``body`` is (``"PDF"``, ``"PNG"``, ... or ``"binary data"``), or None if it may be text.

    UTF-16/32 pages (with a BOM) are text: they are full of NUL bytes, so the BOM is checked first.
    """
    head = body[:SNIFF_BYTES]
    if head.startswith((b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf")):
        return None
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if _RIFF.match(head):
        return "RIFF media"
    if _ISO_MEDIA.match(head):
        return "ISO media (MP4/HEIC)"
    if not head:
        return None
    n_control = len(head) - len(head.translate(None, _CONTROL_BYTES))
    if n_control / len(head) > MAX_CONTROL_SHARE:
        return "binary data"
    return None


def control_share(body: bytes) -> float:
    """Share of control bytes in the first ``SNIFF_BYTES`` (the evidence for ``binary data``)."""
    head = body[:SNIFF_BYTES]
    return (len(head) - len(head.translate(None, _CONTROL_BYTES))) / len(head) if head else 0.0


# --- nesting depth ---------------------------------------------------------

_TAG = re.compile(rb"</?[A-Za-z][A-Za-z0-9]*")
# Elements that have no end tag (void) or whose end tag may be omitted: they do not nest when a
# page leaves them open, so they are not counted.
_NOT_NESTING = (
    "area base br col embed hr img input link meta source track wbr param keygen frame basefont isindex "
    "p li td tr th dt dd option optgroup html head body tbody thead tfoot colgroup rb rt rp rtc caption"
).split()
_DELTA: dict[bytes, int] = {}
for _name in _NOT_NESTING:
    for _variant in {_name, _name.upper(), _name.capitalize()}:
        _DELTA[b"<" + _variant.encode()] = 0
        _DELTA[b"</" + _variant.encode()] = 0


def html_nesting_depth(html: bytes, stop_above: int | None = None) -> int:
    """Maximum element nesting depth, counting open minus close tags of nesting elements.

    With ``stop_above``, a page with at most that many ``<`` is not scanned (its depth cannot be
    larger) and the count of ``<`` is returned as the bound.
    """
    n_lt = html.count(b"<")
    if stop_above is not None and n_lt <= stop_above:
        return min(n_lt, stop_above)
    get = _DELTA.get
    deltas = [0] + [get(tag, -1 if tag[1] == 47 else 1) for tag in _TAG.findall(html)]
    # a stray close tag does not make later nesting look shallower: the depth never drops below 0
    return max(accumulate(deltas, lambda depth, d: max(0, depth + d)))


# --- extraction under a wall-clock limit ----------------------------------------

_HEADER = struct.Struct("<BQ")  # request: flag (1 = main content), length; response: status, length
_OK, _ERROR = 0, 1
_READY = b"R"
STARTUP_TIMEOUT_S = 120.0


class ExtractionTimeout(Exception):
    """Extraction of one page took longer than the limit; the worker process was killed."""


class ExtractionCrashed(Exception):
    """The worker process died while extracting a page (e.g. a segfault in C code)."""


class ExtractionWorker:
    """HTML → text in a child process, with a wall-clock limit per page.

    ``extract`` blocks for at most ``timeout_s`` (plus the time to write the page to the pipe);
    past it the child is killed and the next call starts a fresh one. Not thread-safe: one per
    DoFn instance (Beam runs one bundle at a time on an instance).
    """

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    def _start(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "toxsieve.pipelines.runtime.bounds"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0, close_fds=True,
            )
            # The child's start (interpreter and imports, ~0.5 s) does not count against a page's limit.
            assert self._proc.stdout is not None
            try:
                ready = self._read(self._proc.stdout.fileno(), 1, time.monotonic() + STARTUP_TIMEOUT_S)
            except ExtractionTimeout as exc:
                raise ExtractionCrashed(f"extraction process did not start within {STARTUP_TIMEOUT_S:g} s") from exc
            if ready != _READY:
                self._kill()
                raise ExtractionCrashed("extraction process sent an unexpected greeting")
        return self._proc

    def extract(self, html: bytes, main_content: bool) -> str:
        proc = self._start()
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(_HEADER.pack(1 if main_content else 0, len(html)))
            proc.stdin.write(html)
        except (BrokenPipeError, OSError) as exc:
            self._kill()
            raise ExtractionCrashed(f"extraction process died: {exc}") from exc
        deadline = time.monotonic() + self.timeout_s
        fd = proc.stdout.fileno()
        header = self._read(fd, _HEADER.size, deadline)
        status, length = _HEADER.unpack(header)
        payload = self._read(fd, length, deadline)
        text = payload.decode("utf-8", "surrogatepass")
        if status == _ERROR:
            raise ValueError(text)
        return text

    def _read(self, fd: int, n: int, deadline: float) -> bytes:
        chunks: list[bytes] = []
        while n > 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                self._kill()
                raise ExtractionTimeout(f"extraction took longer than {self.timeout_s:g} s")
            chunk = os.read(fd, min(n, 1 << 20))
            if not chunk:
                code = self._kill()
                raise ExtractionCrashed(f"extraction process died (exit status {code})")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def _kill(self) -> int | None:
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        self.restarts += 1
        if proc.poll() is None:
            proc.kill()
        code = proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        return code

    def close(self) -> None:
        self._kill()
        self.restarts = max(0, self.restarts - 1)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def _read_exact(fd: int, n: int) -> bytes | None:
    chunks = []
    while n > 0:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _serve(fd_in: int, fd_out: int) -> None:
    """The child's loop: read a page, extract, write the text; exit when the parent closes the pipe."""
    from toxsieve.pipelines.stages.extract import html_to_text

    html_to_text(b"<p>warm</p>")  # load resiliparse before saying ready
    os.write(fd_out, _READY)
    while True:
        header = _read_exact(fd_in, _HEADER.size)
        if header is None:
            return
        flag, length = _HEADER.unpack(header)
        html = _read_exact(fd_in, length) if length else b""
        if html is None:
            return
        try:
            out, status = html_to_text(html, bool(flag)).encode("utf-8", "surrogatepass"), _OK
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which decides
            out, status = f"{type(exc).__name__}: {exc}".encode("utf-8", "surrogatepass"), _ERROR
        os.write(fd_out, _HEADER.pack(status, len(out)))
        view = memoryview(out)
        while view:
            view = view[os.write(fd_out, view):]


if __name__ == "__main__":
    # The protocol owns the original stdout; anything a library prints goes to stderr instead.
    _protocol_out = os.dup(1)
    os.dup2(2, 1)
    _serve(sys.stdin.fileno(), _protocol_out)
