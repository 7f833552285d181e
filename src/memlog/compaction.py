# SPDX-License-Identifier: MIT OR Apache-2.0
"""The compaction-event record format (v1): one event, one or more CBOR records.

An agent about to compact its context writes what it drops as one *event*:
the payload (a transcript, JSON lines) is compressed (zstd, unless that
does not make it smaller), cut into parts, and each part is one record
whose blob is a CBOR map (RFC 8949, deterministic encoding)::

    {"v": 1, "kind": "compaction", "source": "claude-code",
     "session": "<the agent's session id>", "event": "<id shared by the parts>",
     "part": 0, "parts": 3, "trigger": "auto", "ts": <ns since the epoch>,
     "encoding": "zstd", "size": <uncompressed bytes>,
     "sha256": <32 bytes: SHA-256 of the uncompressed payload>,
     "data": <this part's bytes of the encoded payload>}

plus optional text fields (``cwd``).  Every record, its 56-byte header
included, fits in 64 KiB.  ``docs/record-format.md`` is the full contract;
this module writes and reads it and knows nothing of devices.
"""

from __future__ import annotations

import hashlib
import io
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import cbor2
import zstandard

from memlog import uapi
from memlog.errors import MemlogError

VERSION = 1
KIND = "compaction"
ENCODINGS = ("zstd", "identity")

BLOB_MAX = uapi.RECORD_MAX - uapi.RECORD_HEADER.size
"""The largest blob of a part: a record, header included, fits in 64 KiB."""

ZSTD_LEVEL = 3
"""zstd's default level: a 10 MB transcript compresses in well under a second."""

PAYLOAD_MAX = uapi.RING_SIZE_MAX
"""The largest payload an event carries (256 MiB): a reader never inflates more."""

PARTS_MAX = uapi.RING_SIZE_MAX // 64
"""More parts than the largest ring can hold records: no such event can be complete."""

TEXT_MAX = 128
"""The longest ``source`` and ``trigger``."""

_U64 = 1 << 64

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
"""Session and event ids usable as file names (they name promoted files); fullmatch only."""

_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "v": int,
    "kind": str,
    "source": str,
    "session": str,
    "event": str,
    "part": int,
    "parts": int,
    "trigger": str,
    "ts": int,
    "encoding": str,
    "sha256": bytes,
    "data": bytes,
}


class EventFormatError(MemlogError):
    """A blob claims to be a compaction part but breaks the format."""


def check_id(value: str, what: str) -> str:
    """``value`` if it can name a file (letters, digits, ``.``, ``_``, ``-``), else an error."""
    if not _ID.fullmatch(value):
        raise MemlogError(
            f"{what} {value!r} is not usable as a file name: letters, digits, '.', '_' "
            "and '-' only, 1 to 128 characters, not starting with '.', '_' or '-'"
        )
    return value


def new_event_id() -> str:
    """A fresh event id: a random UUID's 32 hex digits."""
    return uuid.uuid4().hex


def header_session_id(session: str) -> bytes:
    """The 16 bytes the record header carries for ``session``.

    The UUID's own 16 bytes when the session id is a UUID, else the first 16
    bytes of the SHA-256 of its UTF-8 text.
    """
    try:
        return uuid.UUID(session).bytes
    except ValueError:
        return hashlib.sha256(session.encode()).digest()[: uapi.SESSION_ID_LEN]


@dataclass(frozen=True)
class Part:
    """One part of an event, as one record's blob holds it."""

    source: str
    session: str
    event: str
    part: int
    parts: int
    trigger: str
    ts: int
    encoding: str
    sha256: bytes
    data: bytes
    size: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_map(self) -> dict[str, Any]:
        """The CBOR map of this part (before encoding)."""
        fields: dict[str, Any] = {
            "v": VERSION,
            "kind": KIND,
            "source": self.source,
            "session": self.session,
            "event": self.event,
            "part": self.part,
            "parts": self.parts,
            "trigger": self.trigger,
            "ts": self.ts,
            "encoding": self.encoding,
            "sha256": self.sha256,
            "data": self.data,
        }
        if self.size is not None:
            fields["size"] = self.size
        fields.update(self.extra)
        return fields

    def to_blob(self) -> bytes:
        """The record blob: the map in CBOR's deterministic encoding."""
        return cbor2.dumps(self.to_map(), canonical=True)


def encode_event(
    payload: bytes,
    *,
    source: str,
    session: str,
    trigger: str,
    ts: int,
    event: str | None = None,
    extra: dict[str, str] | None = None,
) -> list[Part]:
    """Cut ``payload`` into the parts of one event (at least one part).

    The payload is zstd-compressed unless that does not make it smaller;
    ``extra`` adds optional text fields (``cwd``) to every part.
    """
    check_id(session, "session id")
    if event is not None:
        check_id(event, "event id")
    for what, text in (("source", source), ("trigger", trigger)):
        if not _short_text(text):
            raise MemlogError(f"{what} {text!r} is not 1 to {TEXT_MAX} printable characters")
    if len(payload) > PAYLOAD_MAX:
        raise MemlogError(
            f"a payload of {len(payload)} bytes is more than the {PAYLOAD_MAX} an event carries"
        )
    extra = dict(extra or {})
    for key in extra:
        if key in _REQUIRED or key == "size":
            raise ValueError(f"extra field {key!r} is one of the format's own")
    digest = hashlib.sha256(payload).digest()
    compressed = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(payload)
    encoding, encoded = (
        ("zstd", compressed)
        if len(compressed) < len(payload)
        else (
            "identity",
            payload,
        )
    )
    template = Part(
        source=source,
        session=session,
        event=event or new_event_id(),
        part=0xFFFFFFFF,  # the largest part numbers the format allows: the widest map
        parts=0xFFFFFFFF,
        trigger=trigger,
        ts=ts,
        encoding=encoding,
        sha256=digest,
        data=b"",
        size=len(payload),
        extra=extra,
    )
    # The map around the data, at its widest, plus the data's own 3-byte head
    # (a byte string of 256 to 65535 bytes): what a part may hold is the rest.
    room = BLOB_MAX - len(template.to_blob()) - 2
    if room < 1024:
        raise MemlogError("the event's ids and fields leave no room for data in a 64 KiB record")
    chunks = [encoded[i : i + room] for i in range(0, len(encoded), room)] or [b""]
    parts = [
        Part(**{**template.__dict__, "part": index, "parts": len(chunks), "data": chunk})
        for index, chunk in enumerate(chunks)
    ]
    for part in parts:
        if len(part.to_blob()) > BLOB_MAX:  # the arithmetic above is the format's promise
            raise AssertionError(f"part {part.part} is {len(part.to_blob())} bytes")
    return parts


def _short_text(text: str) -> bool:
    return 0 < len(text) <= TEXT_MAX and text.isprintable()


def decode_cbor(blob: bytes) -> Any:
    """The one CBOR item ``blob`` holds, or raise ValueError (trailing bytes too).

    cbor2 raises many kinds of exception on arbitrary bytes (RecursionError
    included): the caller catches Exception.
    """
    stream = io.BytesIO(blob)
    value = cbor2.CBORDecoder(stream).decode()
    if stream.tell() != len(blob):
        raise ValueError("trailing bytes after the CBOR item")
    return value


def decode_part(blob: bytes) -> Part | None:
    """The compaction part ``blob`` holds; None if it is not one (another kind of record).

    A blob that is a CBOR map with ``kind`` "compaction" but breaks the
    format raises EventFormatError: wrong types, numbers out of range (every
    integer is below 2**64, ``parts`` at most PARTS_MAX, ``size`` at most
    PAYLOAD_MAX), an unknown version or encoding, ids that cannot name a file,
    ``source`` or ``trigger`` not short printable text.  Its message never
    quotes the blob's own numbers or text.
    """
    if not blob or not 0xA0 <= blob[0] <= 0xBF:  # not a CBOR map: cheap early out
        return None
    try:
        value = decode_cbor(blob)
    except Exception:  # cbor2 raises many kinds on arbitrary bytes (and RecursionError)
        return None
    if not isinstance(value, dict) or value.get("kind") != KIND:
        return None
    for key, kind in _REQUIRED.items():
        if not isinstance(value.get(key), kind) or isinstance(value.get(key), bool):
            raise EventFormatError(f"compaction part without a valid {key!r} field")
    size = value.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool)):
        raise EventFormatError("compaction part with an invalid 'size'")
    numbers = [value[k] for k in ("v", "part", "parts", "ts")] + (
        [size] if size is not None else []
    )
    if not all(0 <= n < _U64 for n in numbers):
        raise EventFormatError("compaction part with a number out of range")
    if value["v"] != VERSION:
        raise EventFormatError("compaction part of another format version than 1")
    if value["encoding"] not in ENCODINGS:
        raise EventFormatError("compaction part with an unknown encoding")
    if not value["part"] < value["parts"] <= PARTS_MAX:
        raise EventFormatError("compaction part whose part or parts is out of range")
    if size is not None and size > PAYLOAD_MAX:
        raise EventFormatError(f"compaction part whose size is over {PAYLOAD_MAX}")
    if len(value["sha256"]) != hashlib.sha256().digest_size:
        raise EventFormatError("compaction part whose sha256 is not 32 bytes")
    if not (_ID.fullmatch(value["session"]) and _ID.fullmatch(value["event"])):
        raise EventFormatError("compaction part whose session or event id cannot name a file")
    if not (_short_text(value["source"]) and _short_text(value["trigger"])):
        raise EventFormatError("compaction part whose source or trigger is not short text")
    known = {*_REQUIRED, "size"}
    extra = {k: v for k, v in value.items() if isinstance(k, str) and k not in known}
    fields = {k: value[k] for k in _REQUIRED if k not in ("v", "kind")}
    return Part(**fields, size=size, extra=extra)


def decode_payload(encoding: str, data: bytes, sha256: bytes, size: int | None) -> bytes:
    """The uncompressed payload of an event's reassembled ``data``, checked against sha256.

    zstd data inflates to exactly ``size`` bytes (which it must carry) or is
    refused before anything is allocated for it: a zstd frame may claim any
    size, and a small one can expand to gigabytes.
    """
    if encoding == "zstd":
        if size is None or size > PAYLOAD_MAX:
            raise EventFormatError("the event's zstd data has no size (or one over the limit)")
        try:
            claimed = zstandard.frame_content_size(data)
            if claimed != size:
                raise EventFormatError("the event's zstd frame claims another size than its parts")
            payload = zstandard.ZstdDecompressor().decompress(data)  # at most size bytes
        except zstandard.ZstdError as exc:
            raise EventFormatError(f"the event's zstd data does not decompress: {exc}") from None
    else:
        payload = data
    if size is not None and len(payload) != size:
        raise EventFormatError("the event's payload is not as long as its parts say")
    if hashlib.sha256(payload).digest() != sha256:
        raise EventFormatError("the event's payload does not match its sha256")
    return payload
