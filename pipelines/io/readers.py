"""Streaming readers for crawl shards: WARC, WET, JSONL (.gz/.zst) and Parquet.

Pure functions over a binary stream: each yields one ``Document`` per input record or a
``DeadLetter`` where a record (or the rest of a shard) cannot be parsed. No shard is ever
held in memory whole.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import zlib
from collections.abc import Iterator
from typing import IO, Any

import xxhash

from toxsieve.pipelines.config import InputConfig
from toxsieve.pipelines.document import DeadLetter, Document, Removal, clean_str, excerpt
from toxsieve.pipelines.io.warc_frames import Damaged, Frame, Garbage, iter_warc_frames
from toxsieve.pipelines.runtime.bounds import MAX_CONTROL_SHARE, SNIFF_BYTES, control_share, sniff_binary
from toxsieve.schemas import Reason, Stage

ReadResult = Document | DeadLetter

_SUFFIXES: tuple[tuple[str, str], ...] = (
    (".warc.wet.gz", "wet"),
    (".wet.gz", "wet"),
    (".wet", "wet"),
    (".warc.gz", "warc"),
    (".warc", "warc"),
    (".arc.gz", "warc"),
    (".jsonl.gz", "jsonl"),
    (".jsonl.zst", "jsonl"),
    (".jsonl.zstd", "jsonl"),
    (".jsonl", "jsonl"),
    (".json.gz", "jsonl"),  # dolma's documents/*.json.gz are JSON Lines
    (".ndjson", "jsonl"),
    (".parquet", "parquet"),
)

HTML_TYPES = ("text/html", "application/xhtml+xml")


class UnknownFormatError(ValueError):
    pass


def detect_format(path: str, forced: str = "auto") -> str:
    """The input format of a shard, from its name unless the config forces one."""
    if forced != "auto":
        return forced
    name = path.lower()
    for suffix, fmt in _SUFFIXES:
        if name.endswith(suffix):
            return fmt
    raise UnknownFormatError(
        f"cannot tell the format of {path!r} from its name; set input.format in the config "
        "(warc, wet, jsonl or parquet)"
    )


def fallback_doc_id(source_path: str, offset: int) -> str:
    """A stable id for records that carry none: hash of where the record came from."""
    return "h:" + xxhash.xxh3_128_hexdigest(f"{source_path}\x00{offset}".encode())


def read_shard(stream: IO[bytes], path: str, fmt: str, cfg: InputConfig) -> Iterator[ReadResult]:
    """Yield every record of one shard as a Document or a DeadLetter."""
    if fmt in ("warc", "wet"):
        yield from _read_warc(stream, path, fmt, cfg)
    elif fmt == "jsonl":
        yield from _read_jsonl(stream, path, cfg)
    elif fmt == "parquet":
        yield from _read_parquet(stream, path, cfg)
    else:
        raise UnknownFormatError(f"unknown input format {fmt!r}")


# --- WARC / WET ------------------------------------------------------------


def _strip_brackets(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    return value or None


def _seekable(stream: IO[bytes]) -> IO[bytes]:
    """fastwarc's Rust core seeks; spool a non-seekable stream (e.g. a pipe) to a temp file."""
    try:
        if stream.seekable():
            return stream
    except (AttributeError, OSError):
        pass
    import shutil
    import tempfile

    spooled = tempfile.SpooledTemporaryFile(max_size=64 << 20)
    shutil.copyfileobj(stream, spooled, 1 << 20)
    spooled.seek(0)
    return spooled  # type: ignore[return-value]


def _read_warc(stream: IO[bytes], path: str, fmt: str, cfg: InputConfig) -> Iterator[ReadResult]:
    """Records framed and validated by ``iter_warc_frames`` (a wrong Content-Length costs one record,
    never the records after it), each parsed by fastwarc."""
    from fastwarc.warc import WarcRecordType

    wanted = WarcRecordType.conversion if fmt == "wet" else WarcRecordType.response
    last_pos = 0
    source = _warc_stream(stream, path)
    try:
        for frame in iter_warc_frames(source, cfg.max_record_bytes):
            last_pos = frame.offset
            if isinstance(frame, Garbage):
                yield DeadLetter(path, frame.offset, fmt, "WarcParseError",
                                 f"{frame.length} unparseable bytes (no WARC record header); reading resumed at "
                                 "the next record header" if frame.length else "unparseable WARC data",
                                 excerpt(frame.excerpt))
                continue
            if isinstance(frame, Damaged):
                yield DeadLetter(path, frame.offset, fmt, "WarcFramingError",
                                 f"WARC record at offset {frame.offset} {frame.problem}; the record is dropped and "
                                 "reading resumed at the next record header", excerpt(frame.header))
                continue
            result = _frame_to_result(frame, path, fmt, cfg, wanted)
            if result is not None:
                yield result
    except BaseException as exc:  # noqa: BLE001 - fastwarc panics are BaseException; bad input becomes data
        if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
            raise
        yield DeadLetter(path, last_pos, fmt, type(exc).__name__, f"shard unreadable after offset {last_pos}: {exc}")


def _frame_to_result(frame: Frame, path: str, fmt: str, cfg: InputConfig, wanted: Any) -> ReadResult | None:
    """One framed record as a Document, a DeadLetter, or None (a record type that is not a document)."""
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    declared = _declared_type(frame.header)
    if declared != ("conversion" if fmt == "wet" else "response") and _WARC_TYPE_TOKEN.fullmatch(declared):
        return None  # a well-formed record of another type (request, metadata, x-custom ...): not a document
    if frame.data is None:  # oversized
        return DeadLetter(path, frame.offset, fmt, "RecordTooLarge",
                          f"record of {frame.content_length} bytes exceeds input.max_record_bytes="
                          f"{cfg.max_record_bytes}", excerpt(frame.header))
    record = next(iter(ArchiveIterator(io.BytesIO(frame.data), parse_http=(fmt == "warc"),
                                       auto_decode="all", stream_detect=False)), None)
    if record is None or record.record_type == WarcRecordType.unknown:
        return DeadLetter(path, frame.offset, fmt, "WarcParseError", "unparseable WARC record header",
                          excerpt(frame.header))
    if not record.record_type & wanted:
        return None
    return _warc_record_to_document(record, path, fmt, cfg, frame.offset)


def _declared_type(header: bytes) -> str:
    match = re.search(rb"\r\nWARC-Type:[ \t]*([^\r\n]*)", header, re.IGNORECASE)
    return match.group(1).strip().lower().decode("ascii", "replace") if match else ""


_WARC_TYPE_TOKEN = re.compile(r"[a-z0-9][a-z0-9_.+-]{0,63}")


def _warc_stream(stream: IO[bytes], path: str) -> IO[bytes]:
    # Python's gzip raises EOFError on a truncated member; fastwarc's own decoder stops
    # silently, which would lose the tail of a shard without a trace. Offsets are therefore
    # positions in the decompressed stream.
    if path.lower().endswith((".gz", ".gzip")):
        return _GzipShortReads(fileobj=stream, mode="rb")  # type: ignore[return-value]
    return _seekable(stream)


class _GzipShortReads(gzip.GzipFile):
    """``read(n)`` returns what is decoded so far, like ``read1``.

    fastwarc reads 64 KiB at a time; a full ``read(n)`` at a truncated member would throw away
    the bytes it had decoded together with the EOFError, and with them the last complete records.
    """

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return super().read(size)
        return self.read1(size)


def _warc_record_to_document(record: Any, path: str, fmt: str, cfg: InputConfig, offset: int) -> ReadResult:
    headers = record.headers
    record_id = _strip_brackets(headers.get("WARC-Record-ID"))
    doc_id = clean_str(record_id) or fallback_doc_id(path, offset)
    url = clean_str(_strip_brackets(headers.get("WARC-Target-URI")))
    date = clean_str(headers.get("WARC-Date"))
    payload = record.reader.read()  # a failure here ends the shard: the caller dead-letters it
    if fmt == "wet":
        binary = sniff_binary(payload)
        if binary is not None:  # the garbage is never decoded or stored as text
            return Document(doc_id, path, offset, fmt, url=url, crawl_date=date, content_type="text/plain",
                            n_bytes_raw=len(payload)).removed(_binary_removal(binary, payload, "WET text"))
        text = payload.decode("utf-8", errors="replace")
        return Document(doc_id, path, offset, fmt, url=url, crawl_date=date,
                        content_type="text/plain", n_bytes_raw=len(payload), text=text)
    http = record.http_headers
    if http is None:
        return DeadLetter(path, offset, fmt, "HttpParseError", "response record without parseable HTTP headers",
                          excerpt(payload))
    status = int(http.status_code) if http.status_code is not None else None
    content_type = (record.http_content_type or "").lower() or None
    doc = Document(doc_id, path, offset, fmt, url=url, crawl_date=date, http_status=status,
                   content_type=content_type, n_bytes_raw=len(payload), html=payload)
    if status != 200:
        return doc.removed(Removal(Stage.READ, Reason.HTTP_STATUS, score=float(status or 0), threshold=200.0,
                                   detail=f"HTTP status {status}"))
    if content_type not in HTML_TYPES:
        return doc.removed(Removal(Stage.READ, Reason.NOT_HTML, detail=f"Content-Type {content_type}"))
    binary = sniff_binary(payload)
    if binary is not None:
        return doc.removed(_binary_removal(binary, payload, f"Content-Type {content_type}"))
    return doc


def _binary_removal(kind: str, payload: bytes, label: str) -> Removal:
    """READ/binary_content: the body is binary although labelled text; the evidence says how we know."""
    share = control_share(payload)
    how = ("magic bytes" if kind != "binary data"
           else f"{share:.1%} control bytes in the first {SNIFF_BYTES} > {MAX_CONTROL_SHARE:.0%}")
    return Removal(Stage.READ, Reason.BINARY_CONTENT, score=round(share, 4), threshold=MAX_CONTROL_SHARE,
                   detail=f"{kind} body ({how}) labelled {label}")


# --- JSONL -----------------------------------------------------------------


def decompressed(stream: IO[bytes], path: str) -> IO[bytes]:
    """``stream`` decompressed by the name's suffix (.gz, .zst); a truncated file raises, never ends quietly."""
    name = path.lower()
    if name.endswith((".gz", ".gzip")):
        return gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[return-value]
    if name.endswith((".zst", ".zstd")):
        return io.BufferedReader(_ZstdRaw(stream), buffer_size=1 << 16)  # type: ignore[return-value]
    return stream


class _ZstdRaw(io.RawIOBase):
    """Multi-frame zstd decoding that raises on a truncated frame.

    ``zstandard``'s stream_reader ends quietly on a truncated input, which would lose the tail
    of a shard without a trace.
    """

    def __init__(self, raw: IO[bytes]) -> None:
        import zstandard

        self._zstd = zstandard
        self._raw = raw
        self._obj = zstandard.ZstdDecompressor().decompressobj()
        self._pending = b""
        self._in_frame = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = self._raw.read(1 << 16)
            if not chunk:
                if self._in_frame:
                    raise EOFError("zstd stream ended inside a frame (truncated file)")
                return 0
            self._feed(chunk)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def _feed(self, chunk: bytes) -> None:
        while chunk:
            self._in_frame = True
            try:
                self._pending += self._obj.decompress(chunk)
            except self._zstd.ZstdError as exc:  # not an OSError: the reader's handler would miss it
                raise OSError(f"corrupt zstd data: {exc}") from exc
            if not self._obj.eof:
                return
            chunk = self._obj.unused_data
            self._obj = self._zstd.ZstdDecompressor().decompressobj()
            self._in_frame = False


def _get_field(obj: dict[str, Any], dotted: str | None) -> Any:
    if not dotted:
        return None
    value: Any = obj
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _read_jsonl(stream: IO[bytes], path: str, cfg: InputConfig) -> Iterator[ReadResult]:
    # No extra buffering layer on top: a read-ahead would turn a truncated tail into the loss
    # of every line decoded before it.
    lines = decompressed(stream, path)
    line_no = 0
    while True:
        try:
            line = lines.readline(cfg.max_record_bytes + 1)
        except (OSError, EOFError, zlib.error, ValueError, ImportError) as exc:  # corrupt or truncated compression
            yield DeadLetter(path, line_no, "jsonl", type(exc).__name__,
                             f"shard unreadable after line {line_no}: {exc}")
            return
        if not line:
            return
        if len(line) > cfg.max_record_bytes and not line.endswith(b"\n"):
            yield DeadLetter(path, line_no, "jsonl", "RecordTooLarge",
                             f"line exceeds input.max_record_bytes={cfg.max_record_bytes}", excerpt(line))
            _skip_rest_of_line(lines)
            line_no += 1
            continue
        offset = line_no
        line_no += 1
        if not line.strip():
            continue  # blank lines are not records
        yield _json_line_to_document(line, path, offset, cfg)


def _skip_rest_of_line(lines: IO[bytes]) -> None:
    while True:
        chunk = lines.readline(1 << 20)
        if not chunk or chunk.endswith(b"\n"):
            return


def _json_line_to_document(line: bytes, path: str, offset: int, cfg: InputConfig) -> ReadResult:
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError) as exc:
        return DeadLetter(path, offset, "jsonl", "JSONDecodeError", str(exc), excerpt(line))
    if not isinstance(obj, dict):
        return DeadLetter(path, offset, "jsonl", "NotAnObject",
                          f"line is a JSON {type(obj).__name__}, not an object", excerpt(line))
    return _fields_to_document(obj, path, offset, "jsonl", cfg, len(line), lambda: excerpt(line))


def _fields_to_document(obj: dict[str, Any], path: str, offset: int, fmt: str, cfg: InputConfig,
                        n_bytes: int, show: Any) -> ReadResult:
    text = _get_field(obj, cfg.text_field)
    if not isinstance(text, str):
        problem = "missing" if text is None else f"a {type(text).__name__}, not a string"
        return DeadLetter(path, offset, fmt, "MissingTextField",
                          f"text field {cfg.text_field!r} is {problem}", show())
    given_id = _get_field(obj, cfg.id_field)
    if given_id is None or given_id == "":
        doc_id = fallback_doc_id(path, offset)
    elif isinstance(given_id, str) or (isinstance(given_id, int) and not isinstance(given_id, bool)):
        doc_id = str(given_id)
    else:  # a float (NaN would collide with the string "nan"), a bool, a list, an object ...
        return DeadLetter(path, offset, fmt, "InvalidId",
                          f"id field {cfg.id_field!r} is a {type(given_id).__name__} ({excerpt(repr(given_id), 60)}); "
                          "ids must be strings or integers (or absent: then the record's position is its id)", show())
    url = _get_field(obj, cfg.url_field)
    date = _get_field(obj, cfg.date_field)
    return Document(
        clean_str(doc_id) or doc_id, path, offset, fmt,
        url=clean_str(url) if isinstance(url, str) else None,
        crawl_date=clean_str(str(date)) if date is not None else None,
        n_bytes_raw=n_bytes, text=clean_str(text),
    )


# --- Parquet ---------------------------------------------------------------


def _read_parquet(stream: IO[bytes], path: str, cfg: InputConfig) -> Iterator[ReadResult]:
    import pyarrow.parquet as pq

    try:
        pfile = pq.ParquetFile(stream)
    except Exception as exc:  # noqa: BLE001
        yield DeadLetter(path, 0, "parquet", type(exc).__name__, f"not a readable Parquet file: {exc}")
        return
    top = {cfg.text_field, cfg.id_field, cfg.url_field, cfg.date_field}
    columns = [c for c in pfile.schema_arrow.names if c in {f.split(".")[0] for f in top if f}]
    row = 0
    try:
        for batch in pfile.iter_batches(batch_size=1024, columns=columns):
            for obj in batch.to_pylist():
                n_bytes = len(obj.get(cfg.text_field) or "") if isinstance(obj.get(cfg.text_field), str) else 0
                yield _fields_to_document(obj, path, row, "parquet", cfg, n_bytes, lambda o=obj: excerpt(repr(o)))
                row += 1
    except Exception as exc:  # noqa: BLE001
        yield DeadLetter(path, row, "parquet", type(exc).__name__, f"shard unreadable after row {row}: {exc}")
