# SPDX-License-Identifier: MIT OR Apache-2.0
"""The compaction-event record format (v2; v1 is still read): one event, one or more records.

An agent about to compact its context writes what it drops as one *event*:
the payload (a transcript's bytes, JSON lines) is compressed (zstd, unless
that does not make it smaller), cut into parts, and each part is one record
whose blob is a CBOR map (RFC 8949, deterministic encoding)::

    {"v": 2, "kind": "compaction", "source": "claude-code",
     "session": "<the agent's session id>", "event": "<id shared by the parts>",
     "part": 0, "parts": 3, "trigger": "auto", "ts": <ns since the epoch>,
     "media_type": "application/x-ndjson; schema=claude-code-transcript",
     "encoding": "zstd", "size": <uncompressed bytes>,
     "sha256": <32 bytes: SHA-256 of the uncompressed payload>,
     "offset": <where the payload starts in the whole transcript>,
     "transcript_sha256": <32 bytes: SHA-256 of the transcript through this event>,
     "data": <this part's bytes of the encoded payload>}

A payload with ``offset`` > 0 is a *delta*: the bytes appended since the
event ``base``, whose transcript it continues (``prefix_sha256``: the SHA-256
of the first ``offset`` bytes).  An event of kind ``"compacted"`` confirms
the capture of the same id: the agent did compact (its payload: the summary).
Optional text fields (``cwd``, ``hook``, ...) follow.  Every record, its 56-byte
header included, fits in 64 KiB.  ``docs/record-format.md`` is the full
contract; this module writes and reads it and knows nothing of devices.
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

VERSION = 2
"""The version written; readers accept READ_VERSIONS and skip others with a warning."""
READ_VERSIONS = (1, 2)
KIND = "compaction"
"""A capture: what the agent is about to drop (a transcript or a message list)."""
KIND_COMPACTED = "compacted"
"""The agent's confirmation that it compacted, for the capture of the same event id."""
KINDS = (KIND, KIND_COMPACTED)
ENCODINGS = ("zstd", "identity")

MEDIA_CLAUDE_CODE = "application/x-ndjson; schema=claude-code-transcript"
"""A Claude Code transcript (its .jsonl file's bytes, or part of them)."""
MEDIA_MESSAGES = "application/x-ndjson; schema=anthropic-messages"
"""Messages API messages, one JSON object per line (the SDK helpers)."""
MEDIA_SUMMARY = "text/plain; charset=utf-8"
"""A compaction's summary (the payload of a "compacted" event)."""

BLOB_MAX = uapi.RECORD_MAX - uapi.RECORD_HEADER.size
"""The largest blob of a part: a record, header included, fits in 64 KiB."""

ZSTD_LEVEL = 3
"""zstd's default level: a 10 MB transcript compresses in well under a second."""

PAYLOAD_MAX = uapi.RING_SIZE_MAX
"""The largest payload an event carries (256 MiB): a reader never inflates more."""

PARTS_MAX = uapi.RING_SIZE_MAX // 64
"""More parts than the largest ring can hold records: no such event can be complete."""

TEXT_MAX = 128
"""The longest ``source``, ``trigger`` and ``media_type``, in code points."""

OPTIONAL_TEXT_MAX = 4096
"""The longest optional text field (``cwd``, ``custom_instructions``, ...), in UTF-8 bytes."""

_SHA256_LEN = 32

_U64 = 1 << 64

_UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
"""A UUID's canonical text form, the only one mapped to its 16 bytes (fullmatch only)."""

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
"""Session and event ids usable as file names (they name promoted files); fullmatch only.

``:`` is allowed: Claude Code's remote sessions are named ``served:<id>``.
"""

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

_V2_REQUIRED: dict[str, type] = {"media_type": str, "offset": int}
"""Fields version 2 adds to every part (``transcript_sha256`` too, for captures)."""

_DELTA_FIELDS = ("base", "prefix_sha256")
"""Present together, exactly when ``offset`` > 0."""

_OWN_FIELDS = {*_REQUIRED, *_V2_REQUIRED, *_DELTA_FIELDS, "size", "transcript_sha256"}

OPTIONAL_FIELDS = (
    "cwd",
    "hook",
    "reason",
    "custom_instructions",
    "prompt_id",
    "agent_id",
    "agent_type",
    "parent_session",
    "transcript",
)
"""The optional text fields the format documents; readers keep other keys but use none."""


class EventFormatError(MemlogError):
    """A blob claims to be a compaction part but breaks the format.

    ``code`` names the rule broken, as ``docs/record-format.md`` and its test
    vectors do (``not-deterministic``, ``unknown-version``, ``bad-field``, ...).
    """

    def __init__(self, message: str, code: str = "bad-field") -> None:
        super().__init__(message)
        self.code = code


def check_id(value: str, what: str) -> str:
    """``value`` if it can name a file (letters, digits, ``.``, ``_``, ``:``, ``-``), else an
    error."""
    if not _ID.fullmatch(value):
        raise MemlogError(
            f"{what} {value!r} is not usable as a file name: letters, digits, '.', '_', "
            "':' and '-' only, 1 to 128 characters, starting with a letter or digit"
        )
    return value


def new_event_id() -> str:
    """A fresh event id: a random UUID's 32 hex digits."""
    return uuid.uuid4().hex


def header_session_id(session: str) -> bytes:
    """The 16 bytes the record header carries for ``session``.

    The UUID's own 16 bytes when the session id is a UUID in its canonical
    text form (RFC 9562: 8-4-4-4-12 lowercase hex digits, as Claude Code
    writes them), else the first 16 bytes of the SHA-256 of its UTF-8 text:
    ``3F1C...`` in capitals, without hyphens or in braces is not that form.
    """
    if _UUID_TEXT.fullmatch(session):
        return uuid.UUID(session).bytes
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
    kind: str = KIND
    version: int = VERSION
    media_type: str | None = None
    offset: int = 0
    base: str | None = None
    prefix_sha256: bytes | None = None
    transcript_sha256: bytes | None = None

    def to_map(self) -> dict[str, Any]:
        """The CBOR map of this part (before encoding)."""
        fields: dict[str, Any] = {
            "v": self.version,
            "kind": self.kind,
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
        if self.version >= 2:
            fields["media_type"] = self.media_type
            fields["offset"] = self.offset
            if self.transcript_sha256 is not None:
                fields["transcript_sha256"] = self.transcript_sha256
            if self.base is not None:
                fields["base"] = self.base
                fields["prefix_sha256"] = self.prefix_sha256
        fields.update(self.extra)
        return fields

    def to_blob(self) -> bytes:
        """The record blob: the map in CBOR's deterministic encoding."""
        return cbor2.dumps(self.to_map(), canonical=True)

    def whole(self) -> tuple[Any, ...]:
        """What every part of one event agrees on (all but ``part`` and ``data``)."""
        return tuple(v for k, v in self.__dict__.items() if k not in ("part", "data"))

    @property
    def end(self) -> int:
        """The transcript's length through this event: ``offset`` + the payload's size."""
        return self.offset + (self.size or 0)


@dataclass(frozen=True)
class Delta:
    """Where a payload continues an earlier event's transcript."""

    base: str
    offset: int
    prefix_sha256: bytes


def encode_event(
    payload: bytes,
    *,
    source: str,
    session: str,
    trigger: str,
    ts: int,
    media_type: str,
    event: str | None = None,
    extra: dict[str, str] | None = None,
    kind: str = KIND,
    delta: Delta | None = None,
    transcript_sha256: bytes | None = None,
) -> list[Part]:
    """Cut ``payload`` into the parts of one event (at least one part).

    The payload is zstd-compressed unless that does not make it smaller;
    ``extra`` adds optional text fields (``cwd``) to every part.  With
    ``delta``, the payload continues the transcript of ``delta.base``;
    ``transcript_sha256`` is the SHA-256 of the whole transcript through this
    payload (by default, of the payload itself: a full capture).
    """
    check_id(session, "session id")
    if event is not None:
        check_id(event, "event id")
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    for what, text in (("source", source), ("trigger", trigger), ("media type", media_type)):
        if not _short_text(text):
            raise MemlogError(f"{what} {text!r} is not 1 to {TEXT_MAX} printable characters")
    if len(payload) > PAYLOAD_MAX:
        raise MemlogError(
            f"a payload of {len(payload)} bytes is more than the {PAYLOAD_MAX} an event carries"
        )
    extra = dict(extra or {})
    for key, value in extra.items():
        if key in _OWN_FIELDS:
            raise ValueError(f"extra field {key!r} is one of the format's own")
        if not _optional_text(value):
            raise MemlogError(
                f"the field {key} is not text of at most {OPTIONAL_TEXT_MAX} UTF-8 bytes"
            )
    if delta is not None:
        check_id(delta.base, "base event id")
        if delta.offset <= 0 or len(delta.prefix_sha256) != _SHA256_LEN:
            raise ValueError("a delta starts past 0 and names its prefix's SHA-256")
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
        kind=kind,
        media_type=media_type,
        offset=delta.offset if delta else 0,
        base=delta.base if delta else None,
        prefix_sha256=delta.prefix_sha256 if delta else None,
        transcript_sha256=(transcript_sha256 or digest) if kind == KIND else None,
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


def _optional_text(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return len(value.encode()) <= OPTIONAL_TEXT_MAX
    except UnicodeEncodeError:  # a lone surrogate: not text CBOR can carry
        return False


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


class _TooLong(Exception):
    pass


class _BoundedWriter:
    """A file for cbor2's encoder that refuses to grow past ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.chunks: list[bytes] = []
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > self.limit:
            raise _TooLong
        self.chunks.append(bytes(data))
        return len(data)


_PLAIN = (str, bytes, int, float, bool, type(None))


def _untagged(value: Any, depth: int = 0) -> bool:
    """Whether ``value`` holds only what untagged CBOR decodes to (no UUID, set, date...)."""
    if depth > 64:
        return False
    if isinstance(value, dict):
        return all(_untagged(k, depth + 1) and _untagged(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return all(_untagged(v, depth + 1) for v in value)
    return type(value) in _PLAIN


def _is_deterministic(value: dict[Any, Any], blob: bytes) -> bool:
    """Whether ``blob`` is exactly the deterministic encoding of ``value``, which it decoded to.

    The encoding stops as soon as it outgrows ``blob``: shared values (tags 28
    and 29) decode to a graph whose encoding as a tree is exponentially larger.
    Only then are the values walked, to refuse tags that encode back as they were.
    """
    out = _BoundedWriter(len(blob))
    try:
        cbor2.CBOREncoder(out, canonical=True).encode(value)
    except _TooLong:
        return False
    except Exception:  # a decoded value cbor2 cannot encode back: not one of ours
        return False
    return b"".join(out.chunks) == blob and _untagged(value)


def _is_uint(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _U64


def decode_part(blob: bytes) -> Part | None:
    """The compaction part ``blob`` holds; None if it is not one (another kind of record).

    A blob that is a CBOR map with ``kind`` "compaction" or "compacted" but
    breaks the format raises EventFormatError: wrong types, numbers out of
    range (every integer is below 2**64, ``parts`` at most PARTS_MAX, ``size``
    at most PAYLOAD_MAX), an unknown version or encoding, ids that cannot name
    a file, ``source``, ``trigger`` or ``media_type`` not short printable text,
    an optional field that is not text.  Its message never quotes the blob's
    own numbers or text.
    """
    if not blob or not 0xA0 <= blob[0] <= 0xBF:  # not a CBOR map: cheap early out
        return None
    try:
        value = cbor2.CBORDecoder(io.BytesIO(blob)).decode()  # trailing bytes: see below
    except Exception:  # cbor2 raises many kinds on arbitrary bytes (and RecursionError)
        return None
    if not isinstance(value, dict) or value.get("kind") not in KINDS:
        return None
    if not _is_deterministic(value, blob):  # trailing bytes too
        raise EventFormatError(
            "compaction part not in deterministic CBOR (keys unsorted or repeated, a number "
            "or length not in its shortest form, an indefinite length, or a tag)",
            "not-deterministic",
        )
    if not _is_uint(value.get("v")) or value["v"] not in READ_VERSIONS:
        raise EventFormatError("compaction part of an unknown format version", "unknown-version")
    version = value["v"]
    if version == 1 and value["kind"] != KIND:
        raise EventFormatError("compaction part of kind 'compacted' in format version 1")
    required = {**_REQUIRED, **(_V2_REQUIRED if version >= 2 else {})}
    for key, kind in required.items():
        if not isinstance(value.get(key), kind) or isinstance(value.get(key), bool):
            raise EventFormatError(f"compaction part without a valid {key!r} field")
    size = value.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool)):
        raise EventFormatError("compaction part with an invalid 'size'")
    if size is not None and not _is_uint(size):
        raise EventFormatError("compaction part whose size is out of range", "out-of-range")
    numbers = [value[k] for k in ("part", "parts", "ts")] + (
        [value["offset"]] if version >= 2 else []
    )
    if not all(_is_uint(n) for n in numbers):
        raise EventFormatError("compaction part with a number out of range", "out-of-range")
    if value["encoding"] not in ENCODINGS:
        raise EventFormatError("compaction part with an unknown encoding")
    if not value["part"] < value["parts"] <= PARTS_MAX:
        raise EventFormatError(
            "compaction part whose part or parts is out of range", "out-of-range"
        )
    if size is not None and size > PAYLOAD_MAX:
        raise EventFormatError(f"compaction part whose size is over {PAYLOAD_MAX}", "out-of-range")
    if len(value["sha256"]) != _SHA256_LEN:
        raise EventFormatError("compaction part whose sha256 is not 32 bytes")
    if not (_ID.fullmatch(value["session"]) and _ID.fullmatch(value["event"])):
        raise EventFormatError(
            "compaction part whose session or event id cannot name a file", "bad-id"
        )
    if not (_short_text(value["source"]) and _short_text(value["trigger"])):
        raise EventFormatError(
            "compaction part whose source or trigger is not short text", "bad-text"
        )
    delta: dict[str, Any] = {}
    if version >= 2:
        delta = _decode_v2(value, size)
    known = {*_OWN_FIELDS}
    extra = {k: v for k, v in value.items() if isinstance(k, str) and k not in known}
    if not all(_optional_text(extra[k]) for k in OPTIONAL_FIELDS if k in extra):
        raise EventFormatError(
            "compaction part with an optional field that is not short text", "bad-text"
        )
    fields = {k: value[k] for k in _REQUIRED if k not in ("v", "kind")}
    return Part(**fields, size=size, extra=extra, kind=value["kind"], version=version, **delta)


def _decode_v2(value: dict[Any, Any], size: int | None) -> dict[str, Any]:
    """The fields version 2 adds, checked (see decode_part)."""
    if not _short_text(value["media_type"]):
        raise EventFormatError("compaction part whose media_type is not short text", "bad-text")
    if size is None:
        raise EventFormatError("compaction part of version 2 without its size")
    offset = value["offset"]
    whole = value.get("transcript_sha256")
    if value["kind"] == KIND:
        if not isinstance(whole, bytes) or len(whole) != _SHA256_LEN:
            raise EventFormatError("capture without a 32-byte transcript_sha256", "bad-delta")
        if offset + size > PAYLOAD_MAX:
            raise EventFormatError(
                f"capture whose transcript is over {PAYLOAD_MAX} bytes", "out-of-range"
            )
    elif whole is not None or offset:
        raise EventFormatError("'compacted' part with a transcript offset or digest", "bad-delta")
    base, prefix = value.get("base"), value.get("prefix_sha256")
    if offset == 0:
        if base is not None or prefix is not None:
            raise EventFormatError(
                "compaction part at offset 0 with a base or prefix_sha256", "bad-delta"
            )
    elif not (isinstance(base, str) and isinstance(prefix, bytes)):
        raise EventFormatError("delta without a valid base and prefix_sha256", "bad-delta")
    elif not _ID.fullmatch(base):
        raise EventFormatError("delta whose base cannot name a file", "bad-id")
    elif len(prefix) != _SHA256_LEN:
        raise EventFormatError("delta whose prefix_sha256 is not 32 bytes")
    return {
        "media_type": value["media_type"],
        "offset": offset,
        "base": base,
        "prefix_sha256": prefix,
        "transcript_sha256": whole,
    }


def decode_payload(encoding: str, data: bytes, sha256: bytes, size: int | None) -> bytes:
    """The uncompressed payload of an event's reassembled ``data``, checked against sha256.

    zstd data inflates to exactly ``size`` bytes (which it must carry) or is
    refused before anything is allocated for it: a zstd frame may claim any
    size, and a small one can expand to gigabytes.
    """
    if encoding == "zstd":
        if size is None or size > PAYLOAD_MAX:
            raise EventFormatError(
                "the event's zstd data has no size (or one over the limit)", "zstd-size"
            )
        try:
            claimed = zstandard.frame_content_size(data)
            if claimed != size:
                raise EventFormatError(
                    "the event's zstd frame claims another size than its parts", "zstd-size"
                )
            inflate = zstandard.ZstdDecompressor().decompressobj()
            payload = inflate.decompress(data)  # at most size bytes: zstd checks the frame
            if not inflate.eof or inflate.unused_data:
                raise EventFormatError(
                    "the event's zstd data is not exactly one whole frame", "zstd-frames"
                )
        except zstandard.ZstdError as exc:
            raise EventFormatError(
                f"the event's zstd data does not decompress: {exc}", "zstd-frames"
            ) from None
    else:
        payload = data
    if size is not None and len(payload) != size:
        raise EventFormatError(
            "the event's payload is not as long as its parts say", "size-mismatch"
        )
    if hashlib.sha256(payload).digest() != sha256:
        raise EventFormatError("the event's payload does not match its sha256", "sha256-mismatch")
    return payload
