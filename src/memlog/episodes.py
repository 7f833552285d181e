# SPDX-License-Identifier: MIT OR Apache-2.0
"""Compaction events in and out of /dev/memlog: write one, find them, promote one to files.

Writing: :func:`write_event` stores an event's parts, refusing up front an
event the ring cannot hold whole, and checks afterwards that no part was
evicted while it wrote.  Reading: :func:`collect_events` groups the parts of
a reader's view into :class:`Event` objects; :func:`promote` reassembles a
complete one and writes ``<dir>/<session>/<event>.jsonl`` and ``.json``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memlog import compaction, uapi
from memlog.compaction import EventFormatError, Part
from memlog.device import Device
from memlog.errors import MemlogError
from memlog.records import Record


class IncompleteEventError(MemlogError):
    """An event's parts are not all in the ring (evicted, or never written)."""


def record_bytes(blob_len: int) -> int:
    """Bytes a record of ``blob_len`` takes in a ring: header and blob, padded to 8."""
    return (uapi.RECORD_HEADER.size + blob_len + 7) & ~7


def write_event(dev: Device, parts: list[Part]) -> list[int]:
    """Write ``parts`` (one event) through ``dev``; return the blob sizes written.

    Raises MemlogError, naming the part, if the ring cannot hold the whole
    event, if a write fails, or if a part was evicted before the last one
    was written (the ring filled meanwhile): an event never half-happens
    silently.
    """
    blobs = [part.to_blob() for part in parts]
    need = sum(record_bytes(len(b)) for b in blobs)
    before = dev.stats()
    if need > before.ring_capacity:
        raise MemlogError(
            f"the event needs {need} bytes in {len(blobs)} records but the ring holds at most "
            f"{before.ring_capacity}: raise kernel.memlog.ring_size (sysctl) or write less"
        )
    dev.set_session(compaction.header_session_id(parts[0].session))
    for index, blob in enumerate(blobs):
        try:
            dev.write(blob)
        except MemlogError as exc:
            raise MemlogError(
                f"part {index + 1} of {len(blobs)} of event {parts[0].event} was not written: {exc}"
            ) from None
    after = dev.stats()
    if after.total_evictions != before.total_evictions:
        _check_still_there(dev.reopen("r"), parts)
    return [len(b) for b in blobs]


@dataclass(frozen=True)
class Stored:
    """What :func:`store_event` wrote: the event's ids, each part's blob size, the payload's."""

    session: str
    event: str
    sizes: list[int]
    payload_size: int


def store_event(
    payload: bytes,
    *,
    source: str,
    session: str,
    trigger: str,
    extra: dict[str, str] | None = None,
    device: str = uapi.DEVICE_PATH,
    opener: Callable[[str, str], Device] = Device,
) -> Stored:
    """Encode ``payload`` as one event stamped now and write it whole (see write_event)."""
    parts = compaction.encode_event(
        payload, source=source, session=session, trigger=trigger, ts=time.time_ns(), extra=extra
    )
    with opener(device, "w") as dev:
        sizes = write_event(dev, parts)
    return Stored(session, parts[0].event, sizes, len(payload))


def _check_still_there(reader: Device, parts: list[Part]) -> None:
    """Raise if some of ``parts`` are no longer in the caller's ring (evicted while writing)."""
    first = parts[0]
    ours = (first.session, first.event)
    with reader:
        found = [e for e in collect_events(reader) if (e.session, e.event) == ours]
    missing = missing_spans(found[0].parts if found else (), len(parts))
    if missing:
        raise IncompleteEventError(
            f"event {first.event} was evicted while it was written (parts "
            f"{describe_parts(missing)} of {len(parts)} gone): the ring is too small for what "
            "this uid writes"
        )


def missing_spans(present: Iterable[int], expected: int) -> list[tuple[int, int]]:
    """The parts of ``range(expected)`` not in ``present``, as 0-based spans ``(first, last)``.

    O(parts present), whatever ``expected`` says.
    """
    spans, expect = [], 0
    for n in sorted(present):
        if n > expect:
            spans.append((expect, n - 1))
        expect = n + 1
    if expect < expected:
        spans.append((expect, expected - 1))
    return spans


def describe_parts(spans: Iterable[tuple[int, int]]) -> str:
    """0-based spans of parts as 1-based numbers: ``1, 3-5``."""
    return ", ".join(f"{a + 1}" if a == b else f"{a + 1}-{b + 1}" for a, b in spans)


@dataclass
class Event:
    """The parts of one compaction event found in a view, with the records that held them."""

    uid: int
    session: str
    event: str
    first: Part
    parts: dict[int, tuple[Record, Part]] = field(default_factory=dict)
    conflicts: int = 0

    @property
    def expected(self) -> int:
        return self.first.parts

    @property
    def missing(self) -> list[tuple[int, int]]:
        """The missing parts as spans ``(first, last)``, 0-based, in order."""
        return missing_spans(self.parts, self.expected)

    @property
    def complete(self) -> bool:
        return len(self.parts) == self.expected and not self.conflicts

    @property
    def ts(self) -> int:
        return self.first.ts

    @property
    def time(self) -> str:
        seconds, nanos = divmod(self.ts, 1_000_000_000)
        try:
            stamp = dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
        except (ValueError, OverflowError, OSError):  # a year past 9999: a writer's own choice
            return "?"
        return stamp.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos // 1000:06d}Z"

    def summary(self) -> dict[str, Any]:
        """What ``memlog episode list --format json`` prints for this event."""
        return {
            "session": self.session,
            "event": self.event,
            "uid": self.uid,
            "time": self.time,
            "ts_ns": self.ts,
            "source": self.first.source,
            "trigger": self.first.trigger,
            "parts_present": len(self.parts),
            "parts_expected": self.expected,
            "complete": self.complete,
            "size": self.first.size,
            "stored_bytes": sum(len(p.data) for _, p in self.parts.values()),
            "encoding": self.first.encoding,
        }

    def metadata(self) -> dict[str, Any]:
        """The ``.json`` written beside a promoted transcript."""
        meta = self.summary()
        del meta["parts_present"], meta["complete"], meta["stored_bytes"]
        meta["parts"] = meta.pop("parts_expected")
        meta["sha256"] = self.first.sha256.hex()
        meta["records"] = [
            {"seq": r.seq, "pid": r.pid, "ts_ns": r.ts_ns} for r, _ in self.sorted_parts()
        ]
        cwd = self.first.extra.get("cwd")
        if isinstance(cwd, str):  # the one optional field the format documents
            meta["cwd"] = cwd
        return meta

    def sorted_parts(self) -> list[tuple[Record, Part]]:
        return [self.parts[n] for n in sorted(self.parts)]

    def add(self, record: Record, part: Part) -> None:
        """Count ``part``; one disagreeing with the event's first part about the whole conflicts."""
        same = (
            part.parts,
            part.sha256,
            part.encoding,
            part.size,
            part.source,
            part.trigger,
            part.ts,
            part.extra,
        ) == (
            self.first.parts,
            self.first.sha256,
            self.first.encoding,
            self.first.size,
            self.first.source,
            self.first.trigger,
            self.first.ts,
            self.first.extra,
        )
        if not same:
            self.conflicts += 1
            return
        self.parts[part.part] = (record, part)  # a part written again: the newest copy

    def payload(self) -> bytes:
        """The reassembled, checked, uncompressed payload (IncompleteEventError: parts gone)."""
        if self.missing:
            raise IncompleteEventError(
                f"event {self.event} of session {self.session} is missing parts "
                f"{describe_parts(self.missing)} of {self.expected} (evicted from the ring, "
                "or never written): nothing written"
            )
        if self.conflicts:
            raise IncompleteEventError(
                f"event {self.event} of session {self.session} has {self.conflicts} part(s) that "
                "disagree with the others about the event: nothing written"
            )
        data = b"".join(part.data for _, part in self.sorted_parts())
        try:
            return compaction.decode_payload(
                self.first.encoding, data, self.first.sha256, self.first.size
            )
        except EventFormatError as exc:
            raise MemlogError(f"event {self.event} of session {self.session}: {exc}") from None


def collect_events(
    records: Iterable[Record], *, on_bad: Callable[[Record, str], None] | None = None
) -> list[Event]:
    """The compaction events among ``records``, oldest first (by their first part's record).

    Parts are grouped by (writer's uid, session, event); records that are not
    compaction parts are skipped; a malformed part is reported to ``on_bad``.
    """
    events: dict[tuple[int, str, str], Event] = {}
    for record in records:
        try:
            part = compaction.decode_part(record.blob)
        except EventFormatError as exc:
            if on_bad is not None:
                on_bad(record, str(exc))
            continue
        if part is None:
            continue
        key = (record.uid, part.session, part.event)
        if key not in events:
            events[key] = Event(record.uid, part.session, part.event, part)
        events[key].add(record, part)
    return list(events.values())


def default_episode_dir() -> Path:
    """``$XDG_DATA_HOME/memlog/episodes``, by default ``~/.local/share/memlog/episodes``."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local/share")
    return Path(base) / "memlog" / "episodes"


def write_atomically(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` through a synced temporary file beside it, then rename.

    ``path`` is the old file or the new one, never a mix; the new one has ``mode``.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def is_promoted(event: Event, out_dir: Path) -> bool:
    """True if ``out_dir`` already holds ``event``: its metadata with the same sha256, and a
    transcript of the right size."""
    try:
        directory = out_dir / compaction.check_id(event.session, "session id")
        name = compaction.check_id(event.event, "event id")
        meta = json.loads((directory / f"{name}.json").read_text(encoding="utf-8"))
        size = (directory / f"{name}.jsonl").stat().st_size
    except (MemlogError, OSError, ValueError):
        return False
    return (
        isinstance(meta, dict)
        and meta.get("sha256") == event.first.sha256.hex()
        and (event.first.size is None or size == event.first.size)
    )


def promote(event: Event, out_dir: Path) -> tuple[Path, Path]:
    """Write ``event`` as ``out_dir/<session>/<event>.jsonl`` plus ``.json``; return both paths.

    The payload is checked (every part present, sha256) before anything is
    written; each file appears whole or not at all.
    """
    session = compaction.check_id(event.session, "session id")
    name = compaction.check_id(event.event, "event id")
    payload = event.payload()
    meta = json.dumps(event.metadata(), indent=2, sort_keys=True).encode() + b"\n"
    target = out_dir / session
    try:
        target.mkdir(parents=True, exist_ok=True, mode=0o700)
        transcript, metadata = target / f"{name}.jsonl", target / f"{name}.json"
        write_atomically(transcript, payload)
        write_atomically(metadata, meta)
    except OSError as exc:
        raise MemlogError(f"cannot write the episode under {target}: {exc.strerror}") from None
    return transcript, metadata
