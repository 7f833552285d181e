# SPDX-License-Identifier: MIT OR Apache-2.0
"""The record format's test vectors (docs/record-format/vectors/): made here, from fixed inputs.

Each vector is a record blob (``parts/*.cbor``) or an event of several blobs,
and ``index.json`` says what a reader must make of it: the fields of a valid
part (byte strings in hex), the SHA-256 of a valid event's whole transcript,
or the rule an invalid one breaks (``error``, the codes of
``docs/record-format.md``).  A reader in another language is tested by
reading ``index.json`` and each blob.

Regenerate after changing the format: ``python3 tests/unit/record_vectors.py
docs/record-format/vectors`` (the unit tests fail while the files differ).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import cbor2
import zstandard

SRC = Path(__file__).resolve().parents[2] / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))

from memlog import compaction  # noqa: E402

SESSION = "3f1c2a4e-9b7d-4c1e-8f00-123456789abc"
TS = 1_796_032_308_123_456_789
TRANSCRIPT = b"".join(
    json.dumps({"type": "user", "message": {"role": "user", "content": f"turn {n} " * 20}}).encode()
    + b"\n"
    for n in range(400)
)


def _parts(payload: bytes, **fields: Any) -> list[compaction.Part]:
    base: dict[str, Any] = {
        "source": "claude-code",
        "session": SESSION,
        "trigger": "manual",
        "ts": TS,
        "media_type": compaction.MEDIA_CLAUDE_CODE,
    }
    return compaction.encode_event(payload, **{**base, **fields})


def _map(**changes: Any) -> dict[str, Any]:
    """A valid one-part capture's map, changed."""
    fields = _parts(b'{"type":"user"}\n', event="e0")[0].to_map()
    fields.update(changes)
    return {k: v for k, v in fields.items() if v is not None}


def _canonical(fields: dict[str, Any]) -> bytes:
    return bytes(cbor2.dumps(fields, canonical=True))


def _hexed(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: _hexed(v) for k, v in value.items()}
    return value


def _invalid_parts() -> dict[str, tuple[bytes, str]]:
    valid = _map()
    # "v" (61 76) sorts before "kind" (64 6b ...): here it comes after
    unsorted = b"\xa2" + cbor2.dumps("kind") + cbor2.dumps("compaction")
    unsorted += cbor2.dumps("v") + cbor2.dumps(2)
    body = _canonical(valid)
    duplicated = bytes([body[0] + 1]) + body[1:] + cbor2.dumps("v") + cbor2.dumps(2)
    long_ts = _canonical(valid).replace(
        cbor2.dumps("ts") + cbor2.dumps(TS),
        cbor2.dumps("ts") + b"\xc2\x48" + TS.to_bytes(8, "big"),  # the same number, as a bignum
    )
    return {
        "unsorted-keys": (unsorted, "not-deterministic"),
        "duplicate-key": (duplicated, "not-deterministic"),
        "bignum-ts": (long_ts, "not-deterministic"),
        "trailing-bytes": (body + b"\x00", "not-deterministic"),
        "unknown-version": (_canonical(_map(v=3)), "unknown-version"),
        "id-with-slash": (_canonical(_map(session="a/b")), "bad-id"),
        "id-not-starting-with-a-letter": (_canonical(_map(event="-e0")), "bad-id"),
        "source-with-newline": (_canonical(_map(source="a\nb")), "bad-text"),
        "source-of-129-code-points": (_canonical(_map(source="é" * 129)), "bad-text"),
        "cwd-of-4097-bytes": (_canonical(_map(cwd="é" * 2048 + "x")), "bad-text"),
        "part-not-below-parts": (_canonical(_map(part=1)), "out-of-range"),
        "offset-without-base": (_canonical(_map(offset=5)), "bad-delta"),
        "sha256-of-31-bytes": (_canonical(_map(sha256=bytes(31))), "bad-field"),
        "no-media-type": (_canonical(_map(media_type=None)), "bad-field"),
    }


def _events() -> dict[str, tuple[list[bytes], dict[str, Any]]]:
    whole = TRANSCRIPT
    cut = len(whole) // 2
    first = _parts(whole[:cut], event="e1")
    delta = _parts(
        whole[cut:],
        event="e2",
        delta=compaction.Delta("e1", cut, hashlib.sha256(whole[:cut]).digest()),
        transcript_sha256=hashlib.sha256(whole).digest(),
    )
    frame = zstandard.ZstdCompressor(level=3).compress(whole)
    two_frames = _map(
        encoding="zstd",
        data=frame + frame[:20],
        size=len(whole),
        sha256=hashlib.sha256(whole).digest(),
        transcript_sha256=hashlib.sha256(whole).digest(),
    )
    other = _parts(b"another payload\n", event="e3")[0]
    again = compaction.Part(**{**other.__dict__, "data": b"other bytes\n"})
    bad_link = _parts(
        whole[cut:],
        event="e4",
        delta=compaction.Delta("e1", cut, bytes(32)),
        transcript_sha256=hashlib.sha256(whole).digest(),
    )
    blobs = [p.to_blob() for p in first]
    return {
        "whole-capture": (blobs, {"event": "e1", "transcript_sha256": _sha(whole[:cut])}),
        "delta-after-its-base": (
            blobs + [p.to_blob() for p in delta],
            {"event": "e2", "transcript_sha256": _sha(whole)},
        ),
        "delta-without-its-base": ([p.to_blob() for p in delta], {"error": "missing-base"}),
        "delta-whose-prefix-differs": (
            blobs + [p.to_blob() for p in bad_link],
            {"event": "e4", "error": "broken-link"},
        ),
        "zstd-with-trailing-bytes": ([_canonical(two_frames)], {"error": "zstd-frames"}),
        "same-part-with-other-data": (
            [other.to_blob(), again.to_blob()],
            {"event": "e3", "error": "conflict"},
        ),
    }


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build() -> dict[str, bytes]:
    """Every file of the vectors directory, by its path there."""
    files: dict[str, bytes] = {}
    index: dict[str, list[dict[str, Any]]] = {"parts": [], "events": []}
    valid = {
        "capture": _map(),
        "capture-with-optional-fields": _map(
            hook="PreCompact", cwd="/home/alice", custom_instructions="keep the names"
        ),
        "compacted": _parts(
            b"The summary.",
            event="e0",
            kind="compacted",
            media_type=compaction.MEDIA_SUMMARY,
        )[0].to_map(),
        "remote-session-id": _map(session="served:01HZX3"),
        "unknown-key-kept-aside": {**_map(), "future": [1, 2]},
    }
    for name, fields in valid.items():
        files[f"parts/{name}.cbor"] = _canonical(fields)
        index["parts"].append({"name": name, "valid": True, "fields": _hexed(fields)})
    for name, (blob, code) in _invalid_parts().items():
        files[f"parts/{name}.cbor"] = blob
        index["parts"].append({"name": name, "valid": False, "error": code})
    for name, (blobs, expect) in _events().items():
        paths = []
        for n, blob in enumerate(blobs):
            paths.append(f"events/{name}/{n:02d}.cbor")
            files[paths[-1]] = blob
        index["events"].append({"name": name, "records": paths, **expect})
    files["index.json"] = (json.dumps(index, indent=1, sort_keys=True) + "\n").encode()
    return files


def main(directory: str) -> None:
    target = Path(directory)
    for path, data in build().items():
        (target / path).parent.mkdir(parents=True, exist_ok=True)
        (target / path).write_bytes(data)


if __name__ == "__main__":
    main(sys.argv[1])
