# SPDX-License-Identifier: MIT OR Apache-2.0
"""The compaction-event record format: parts that fit, deterministic CBOR, checked payloads."""

from __future__ import annotations

import hashlib
import json
import random
import uuid

import cbor2
import pytest

from memlog import compaction, uapi
from memlog.compaction import EventFormatError

SESSION = "3f1c2a4e-9b7d-4c1e-8f00-123456789abc"


def transcript(size: int, seed: int = 1) -> bytes:
    """JSON lines shaped like a Claude Code transcript, about ``size`` bytes, some entropy."""
    rng = random.Random(seed)
    words = [f"w{rng.getrandbits(20):x}" for _ in range(4000)]
    lines, total = [], 0
    while total < size:
        text = " ".join(rng.choice(words) for _ in range(rng.randint(5, 80)))
        line = json.dumps(
            {"type": "user", "sessionId": SESSION, "message": {"role": "user", "content": text}}
        ).encode()
        lines.append(line + b"\n")
        total += len(line) + 1
    return b"".join(lines)[:size]


def encode(payload: bytes, **kwargs: object) -> list[compaction.Part]:
    fields: dict = {
        "source": "claude-code",
        "session": SESSION,
        "trigger": "auto",
        "ts": 10**18,
        "media_type": compaction.MEDIA_CLAUDE_CODE,
    }
    return compaction.encode_event(payload, **{**fields, **kwargs})


@pytest.mark.parametrize(
    "payload",
    [b"x", transcript(1 << 20), random.Random(2).randbytes(300_000), bytes(5 << 20)],
    ids=["1 byte", "1 MB transcript", "300 KB random", "5 MB zeros"],
)
def test_every_part_fits_in_a_64_kib_record_with_its_header(payload: bytes) -> None:
    for part in encode(payload):
        assert uapi.RECORD_HEADER.size + len(part.to_blob()) <= uapi.RECORD_MAX


def test_incompressible_payloads_are_kept_as_identity_and_split_into_parts() -> None:
    payload = random.Random(3).randbytes(300_000)
    parts = encode(payload)
    assert {p.encoding for p in parts} == {"identity"}
    assert len(parts) == 5  # 300,000 bytes in parts of at most 65,480 bytes of blob
    assert [p.part for p in parts] == list(range(5)) and {p.parts for p in parts} == {5}


def test_a_transcript_is_compressed_with_zstd() -> None:
    payload = transcript(1 << 20)
    parts = encode(payload)
    assert parts[0].encoding == "zstd"
    assert sum(len(p.data) for p in parts) < len(payload) // 2


def test_parts_share_event_session_sha256_and_size() -> None:
    payload = transcript(1 << 20)
    parts = encode(payload)
    assert len({(p.event, p.session, p.sha256, p.size, p.ts) for p in parts}) == 1
    assert parts[0].sha256 == hashlib.sha256(payload).digest()
    assert parts[0].size == len(payload)


def test_parts_reassemble_to_the_payload_byte_for_byte() -> None:
    payload = transcript(1 << 20)
    parts = [compaction.decode_part(p.to_blob()) for p in encode(payload)]
    data = b"".join(p.data for p in parts if p)
    first = parts[0]
    assert first is not None
    assert compaction.decode_payload(first.encoding, data, first.sha256, first.size) == payload


def test_encoding_is_deterministic_for_the_same_event() -> None:
    payload = transcript(200_000)
    first = [p.to_blob() for p in encode(payload, event="e1")]
    again = [p.to_blob() for p in encode(payload, event="e1")]
    assert first == again


def test_map_keys_are_in_rfc_8949_deterministic_order() -> None:
    """Core deterministic encoding: keys sorted by their encoded bytes (shorter first here)."""
    blob = encode(b"hello", extra={"cwd": "/home/alice"})[0].to_blob()
    keys = list(cbor2.loads(blob))
    assert keys == sorted(keys, key=lambda k: cbor2.dumps(k))
    assert keys[:2] == ["v", "ts"]


def test_a_part_carries_every_field_of_the_format() -> None:
    blob = encode(b"hello", extra={"cwd": "/home/alice"})[0].to_blob()
    fields = cbor2.loads(blob)
    assert fields["v"] == 2 and fields["kind"] == "compaction"
    assert set(fields) == {
        "v", "kind", "source", "session", "event", "part", "parts", "trigger", "ts",
        "encoding", "sha256", "data", "size", "cwd", "media_type", "offset",
        "transcript_sha256",
    }  # fmt: skip
    assert fields["offset"] == 0 and fields["transcript_sha256"] == fields["sha256"]


@pytest.mark.parametrize(
    "blob",
    [b"", b"hello", b'{"hello":"world"}', cbor2.dumps({"kind": "note"}), cbor2.dumps([1, 2])],
)
def test_other_records_are_not_compaction_parts(blob: bytes) -> None:
    assert compaction.decode_part(blob) is None


def _part_map(**changes: object) -> dict:
    fields = encode(b"hello")[0].to_map()
    fields.update(changes)
    return {k: v for k, v in fields.items() if v is not None}


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"sha256": None}, "bad-field"),
        ({"v": 3}, "unknown-version"),
        ({"encoding": "gzip"}, "bad-field"),
        ({"part": 1}, "out-of-range"),
        ({"parts": True}, "bad-field"),
        ({"sha256": b"short"}, "bad-field"),
        ({"session": 7}, "bad-field"),
        ({"media_type": None}, "bad-field"),
        ({"offset": -1}, "out-of-range"),
        ({"transcript_sha256": None}, "bad-delta"),
        ({"offset": 5}, "bad-delta"),
        ({"base": "e0"}, "bad-delta"),
        ({"offset": 5, "base": "e0", "prefix_sha256": b"short"}, "bad-field"),
        ({"offset": 5, "base": "../e0", "prefix_sha256": bytes(32)}, "bad-id"),
        ({"cwd": 7}, "bad-text"),
        ({"custom_instructions": "x" * 4097}, "bad-text"),
        ({"size": None}, "bad-field"),
        ({"size": 2**64}, "out-of-range"),
        ({"session": "a/b"}, "bad-id"),
        ({"source": "a\nb"}, "bad-text"),
    ],
    ids=[
        "no sha256",
        "version 3",
        "unknown encoding",
        "part past parts",
        "bool",
        "short",
        "type",
        "no media type",
        "negative offset",
        "capture without transcript_sha256",
        "offset without base",
        "base at offset 0",
        "short prefix digest",
        "base not an id",
        "cwd not text",
        "optional text too long",
        "version 2 without size",
        "size past 2**64",
        "session not an id",
        "source not printable",
    ],
)
def test_a_malformed_compaction_part_is_an_error_naming_its_rule(changes: dict, code: str) -> None:
    with pytest.raises(EventFormatError) as error:
        compaction.decode_part(cbor2.dumps(_part_map(**changes), canonical=True))
    assert error.value.code == code


def _shared_bomb(levels: int) -> object:
    """Tags 28/29 (shared values): a graph of ``levels`` that is 2**levels items as a tree."""
    value: object = cbor2.CBORTag(28, [])
    for _ in range(levels):
        value = cbor2.CBORTag(28, [value, cbor2.CBORTag(29, 0)])
    return value


def test_shared_values_that_expand_exponentially_are_refused_at_once() -> None:
    fields = _part_map()
    blob = bytearray(cbor2.dumps(fields, canonical=True))
    blob[0] += 1  # one more entry in the map: a key sorting after the others
    blob += cbor2.dumps("zzzz") + cbor2.dumps(_shared_bomb(60))
    with pytest.raises(EventFormatError) as error:
        compaction.decode_part(bytes(blob))
    assert error.value.code == "not-deterministic"


@pytest.mark.parametrize(
    "tagged", [uuid.UUID(SESSION), frozenset({1})], ids=["uuid (37)", "set (258)"]
)
def test_tags_that_encode_back_as_they_were_are_refused_too(tagged: object) -> None:
    with pytest.raises(EventFormatError) as error:
        compaction.decode_part(cbor2.dumps(_part_map(future=tagged), canonical=True))
    assert error.value.code == "not-deterministic"


def test_a_payload_not_matching_its_sha256_is_refused() -> None:
    part = encode(b"hello world")[0]
    with pytest.raises(EventFormatError, match="sha256"):
        compaction.decode_payload(part.encoding, b"hello there", part.sha256, None)


def test_header_session_of_a_uuid_session_is_the_uuid_bytes() -> None:
    assert compaction.header_session_id(SESSION) == uuid.UUID(SESSION).bytes


def test_header_session_of_another_session_is_its_sha256_prefix() -> None:
    assert compaction.header_session_id("chat-42") == hashlib.sha256(b"chat-42").digest()[:16]


@pytest.mark.parametrize("bad", ["", "../etc", ".hidden", "a/b", "x" * 129, "tab\there"])
def test_ids_that_cannot_name_a_file_are_refused(bad: str) -> None:
    with pytest.raises(compaction.MemlogError):
        compaction.check_id(bad, "session id")


def test_a_delta_names_its_base_offset_and_prefix_digest() -> None:
    whole = transcript(300_000)
    prefix = whole[:100_000]
    delta = compaction.Delta("e0", len(prefix), hashlib.sha256(prefix).digest())
    [part] = encode(whole[100_000:], delta=delta, transcript_sha256=hashlib.sha256(whole).digest())
    decoded = compaction.decode_part(part.to_blob())
    assert decoded is not None
    assert (decoded.base, decoded.offset) == ("e0", 100_000)
    assert decoded.prefix_sha256 == hashlib.sha256(prefix).digest()
    assert decoded.transcript_sha256 == hashlib.sha256(whole).digest()
    assert decoded.end == len(whole)


def test_a_compacted_event_carries_no_transcript_digest() -> None:
    [part] = encode(b"the summary", kind="compacted", media_type=compaction.MEDIA_SUMMARY)
    fields = cbor2.loads(part.to_blob())
    assert fields["kind"] == "compacted" and "transcript_sha256" not in fields
    assert compaction.decode_part(part.to_blob()) == part


def test_a_version_1_part_is_still_read() -> None:
    fields = encode(b"hello")[0].to_map()
    for key in ("media_type", "offset", "transcript_sha256"):
        del fields[key]
    fields["v"] = 1
    part = compaction.decode_part(cbor2.dumps(fields, canonical=True))
    assert part is not None and part.version == 1 and part.media_type is None
    assert part.offset == 0 and part.data == b"hello"


def test_a_remote_sessions_id_with_a_colon_is_an_id() -> None:
    assert compaction.check_id("served:0f3c2a", "session id") == "served:0f3c2a"


def test_unknown_keys_of_any_type_are_kept_aside_not_refused() -> None:
    blob = cbor2.dumps(_part_map(future={"nested": [1, 2]}), canonical=True)
    part = compaction.decode_part(blob)
    assert part is not None and part.extra == {"future": {"nested": [1, 2]}}


@pytest.mark.parametrize(
    "extra",
    [{"offset": "1"}, {"base": "e0"}, {"transcript_sha256": "x"}],
    ids=["offset", "base", "transcript_sha256"],
)
def test_the_formats_own_fields_are_not_extra_fields(extra: dict) -> None:
    with pytest.raises(ValueError, match="one of the format's own"):
        encode(b"x", extra=extra)


@pytest.mark.parametrize(
    "session",
    [SESSION.upper(), SESSION.replace("-", ""), "{" + SESSION + "}", "urn:uuid:" + SESSION],
    ids=["capitals", "no hyphens", "braces", "urn"],
)
def test_only_a_uuids_canonical_text_gives_the_header_its_bytes(session: str) -> None:
    """Python's uuid.UUID accepts all of these; the format maps only the canonical form."""
    assert compaction.header_session_id(session) == hashlib.sha256(session.encode()).digest()[:16]
