"""XES event logs (IEEE 1849): one row per event, trace attributes as ``case:<key>`` columns."""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, BinaryIO
from xml.parsers import expat

import numpy as np

from ersattning.ingest.readers.chunk import BLOCK_BYTES, Chunk, as_path, check_file, object_column, read_error, text_frame

if TYPE_CHECKING:
    from xml.parsers.expat import XMLParserType

_XES_VALUES = frozenset({"string", "date", "int", "float", "boolean", "id"})


class _XesStop(Exception):
    pass


def _local(tag: str) -> str:
    return tag.rpartition(":")[2]


def _open_xes(path: str) -> tuple[BinaryIO | gzip.GzipFile, BinaryIO]:
    """The file's bytes (decompressed when gzip), and the file itself to close."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed by the caller's with
        magic = fh.read(2)
        fh.seek(0)
    except OSError as e:
        raise read_error(path, e.strerror or str(e)) from None
    if magic == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=fh, mode="rb"), fh
    return fh, fh


def _xes_parser(start: Callable[[str, dict[str, str]], None], end: Callable[[str], None]) -> XMLParserType:
    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    return parser


def _xes_parse(path: str, parser: XMLParserType) -> Iterator[None]:
    """Feed the file to an expat parser; yields after each block so the caller can hand out finished rows."""
    stream, raw = _open_xes(path)
    with raw, stream:
        while True:
            try:
                data = stream.read(BLOCK_BYTES)
            except (OSError, EOFError, zlib.error) as e:
                raise read_error(path, f"cannot be read: {e}", parser.CurrentLineNumber) from None
            try:
                parser.Parse(data, not data)
            except expat.ExpatError as e:
                raise read_error(path, f"malformed XML: {expat.ErrorString(e.code)} (column {e.offset + 1})", e.lineno) from None
            except _XesStop as e:
                raise read_error(path, str(e), parser.CurrentLineNumber) from None
            yield
            if not data:
                return


def _xes_columns(path: str) -> list[str]:
    """First pass: every column in first-seen order (case columns first)."""
    stack: list[str] = []
    case_keys: dict[str, None] = {"case:concept:name": None}
    event_keys: dict[str, None] = {}

    def start(tag: str, attrs: dict[str, str]) -> None:
        local = _local(tag)
        if not stack and local != "log":
            raise _XesStop(f"not an XES log: the root element is <{tag}>, not <log>")
        parent = stack[-1] if stack else None
        stack.append(local)
        if local in _XES_VALUES and "key" in attrs:
            if parent == "event" and len(stack) >= 2:
                event_keys.setdefault(attrs["key"], None)
            elif parent == "trace":
                case_keys.setdefault("case:" + attrs["key"], None)

    def end(tag: str) -> None:
        stack.pop()

    for _ in _xes_parse(path, _xes_parser(start, end)):
        pass
    return list(case_keys) + [k for k in event_keys if k not in case_keys]


def read_xes(path: str | os.PathLike, *, chunk_rows: int = 200_000) -> Iterator[Chunk]:
    """Stream an IEEE 1849 XES event log (optionally gzip-compressed) as one row per event."""
    path = as_path(path)
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, not {chunk_rows}")
    check_file(path)
    return _read_xes(path, chunk_rows)


def _read_xes(path: str, chunk_rows: int) -> Iterator[Chunk]:
    columns = _xes_columns(path)
    stack: list[str] = []
    done: list[tuple[int, dict]] = []  # finished events: (line, cells)
    trace: dict | None = None  # case cells of the open trace
    trace_events: list[tuple[int, dict]] = []
    event: dict | None = None
    event_line = 0

    def start(tag: str, attrs: dict[str, str]) -> None:
        nonlocal trace, event, event_line
        local = _local(tag)
        parent = stack[-1] if stack else None
        stack.append(local)
        if local in _XES_VALUES:
            key = attrs.get("key")
            if key is None:
                return
            value = attrs.get("value") or None
            if parent == "event" and event is not None:
                event[key] = value
            elif parent == "trace" and trace is not None:
                trace["case:" + key] = value
        elif local == "event" and parent in ("trace", "log"):
            event = {}
            event_line = parser.CurrentLineNumber
        elif local == "trace" and parent == "log":
            trace = {}
            trace_events.clear()

    def end(tag: str) -> None:
        nonlocal trace, event
        local = stack.pop()
        if local == "event" and event is not None and stack and stack[-1] in ("trace", "log"):
            if stack[-1] == "trace":
                trace_events.append((event_line, event))
            else:
                done.append((event_line, event))
            event = None
        elif local == "trace" and trace is not None and stack and stack[-1] == "log":
            for line, cells in trace_events:
                done.append((line, {**trace, **cells}))
            trace_events.clear()
            trace = None

    parser = _xes_parser(start, end)
    first_row = 1
    for _ in _xes_parse(path, parser):
        while len(done) >= chunk_rows:
            part = done[:chunk_rows]
            del done[:chunk_rows]
            yield _xes_chunk(path, first_row, columns, part)
            first_row += len(part)
    if done:
        yield _xes_chunk(path, first_row, columns, done)


def _xes_chunk(path: str, first_row: int, columns: list[str], events: list[tuple[int, dict]]) -> Chunk:
    data = [object_column([cells.get(c) for _, cells in events]) for c in columns]
    lines = np.fromiter((line for line, _ in events), dtype=np.int64, count=len(events))
    return Chunk(path=path, first_row=first_row, frame=text_frame(columns, data), lines=lines)
