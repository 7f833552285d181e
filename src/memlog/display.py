# SPDX-License-Identifier: MIT OR Apache-2.0
"""Records for people: one line each, as journalctl prints a journal.

``time uid pid session size blob``, the blob shown by what it is: a
compaction part as a one-line summary, printable UTF-8 as text, other CBOR
in diagnostic notation (RFC 8949 section 8), anything else as a short hex
preview.  Control characters are escaped, so a record is always one line.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import cbor2

from memlog import compaction
from memlog.compaction import EventFormatError
from memlog.records import Record

HEX_PREVIEW = 32
"""Bytes shown of a blob that is neither text nor CBOR (and of byte strings inside CBOR)."""

_ZERO_SESSION = bytes(16)


def format_size(n: int) -> str:
    """``512 B``, ``1.5 KiB``, ``3.0 MiB``."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    unit = "B"
    for unit in ("KiB", "MiB", "GiB"):  # noqa: B007 - the unit the loop stops at is the answer
        value /= 1024
        if value < 1024:
            break
    return f"{value:.1f} {unit}"


def _text(blob: bytes) -> str | None:
    """The blob as one line of text if it is printable UTF-8 (tabs and newlines escaped)."""
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not all(ch.isprintable() or ch in "\t\n\r" for ch in text):
        return None
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


def hex_preview(data: bytes, limit: int = HEX_PREVIEW) -> str:
    """``h'0011…'`` for the first ``limit`` bytes, with how many there are in all if more."""
    if len(data) <= limit:
        return f"h'{data.hex()}'"
    return f"h'{data[:limit].hex()}…' ({len(data)} bytes)"


def diagnostic(value: Any) -> str:
    """``value`` (as cbor2 decodes it) in CBOR diagnostic notation, long byte strings cut short."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bytes | bytearray):
        return hex_preview(bytes(value))
    if isinstance(value, cbor2.CBORSimpleValue):  # a tuple in cbor2 5.4 (Debian 12)
        return f"simple({value.value})"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(diagnostic(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{diagnostic(k)}: {diagnostic(v)}" for k, v in value.items()) + "}"
    if isinstance(value, frozenset | set):
        return "258([" + ", ".join(diagnostic(v) for v in value) + "])"
    if isinstance(value, cbor2.CBORTag):
        return f"{value.tag}({diagnostic(value.value)})"
    if value is cbor2.undefined:
        return "undefined"
    if isinstance(value, dt.datetime):
        return f'0("{value.isoformat()}")'
    return json.dumps(str(value), ensure_ascii=False)  # other tags cbor2 decodes into objects


def _cbor(blob: bytes) -> str | None:
    """The blob in diagnostic notation if it is exactly one CBOR item."""
    try:
        value = compaction.decode_cbor(blob)
    except Exception:  # cbor2 raises many kinds on arbitrary bytes
        return None
    try:
        return diagnostic(value)
    except (ValueError, OverflowError, RecursionError):  # huge integers, deep nesting
        return None


def _part_summary(part: compaction.Part) -> str:
    size = f", {format_size(part.size)} in all" if part.size is not None else ""
    after = f" after {format_size(part.offset)} of event {part.base}" if part.base else ""
    return (
        f"[{part.kind} {part.source} session {part.session} event {part.event} "
        f"part {part.part + 1}/{part.parts} trigger {part.trigger}, "
        f"{part.encoding} {format_size(len(part.data))}{size}{after}]"
    )


def describe_blob(blob: bytes) -> str:
    """The blob as a person wants to see it, on one line."""
    try:
        part = compaction.decode_part(blob)
    except EventFormatError as exc:
        return f"[malformed compaction part: {exc}] {hex_preview(blob)}"
    if part is not None:
        return _part_summary(part)
    text = _text(blob)
    if text is not None:
        return text
    cbor = _cbor(blob)
    if cbor is not None:
        return cbor
    return hex_preview(blob)


def format_time(ts_ns: int) -> str:
    """``2026-11-30 09:51:48.123456`` in UTC; ``?`` past the year 9999 (a writer's choice)."""
    seconds, nanos = divmod(ts_ns, 1_000_000_000)
    try:
        stamp = dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    except (ValueError, OverflowError, OSError):
        return "?"
    return stamp.strftime("%Y-%m-%d %H:%M:%S") + f".{nanos // 1000:06d}"


def record_line(record: Record) -> str:
    """One line for ``record``: time, uid, pid, session (first 8 hex digits), size, blob."""
    session = "-" if record.session_id == _ZERO_SESSION else record.session_id.hex()[:8]
    return (
        f"{format_time(record.ts_ns)} uid={record.uid} pid={record.pid} session={session} "
        f"{format_size(len(record.blob))}: {describe_blob(record.blob)}"
    )
