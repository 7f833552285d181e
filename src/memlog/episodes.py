# SPDX-License-Identifier: MIT OR Apache-2.0
"""Compaction events in and out of /dev/memlog: write one, find them, promote one to files.

Writing: :func:`write_event` stores an event's parts, refusing up front an
event the ring cannot hold whole, and checks afterwards that no part was
evicted while it wrote.  Reading: :func:`collect_events` groups the parts of
a reader's view into :class:`Event` objects; :mod:`memlog.catalog` relates
them and promotes one to ``<dir>/<session>/<event>.jsonl`` and ``.json``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import stat
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
    """An event cannot be rebuilt: parts gone (evicted, never written) or in conflict, or a
    link of its chain missing or broken.  ``code`` names which, as the format's test
    vectors do: ``missing-part``, ``conflict``, ``missing-base``, ``broken-link``."""

    def __init__(self, message: str, code: str = "missing-part") -> None:
        super().__init__(message)
        self.code = code


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
    media_type: str,
    extra: dict[str, str] | None = None,
    device: str = uapi.DEVICE_PATH,
    opener: Callable[[str, str], Device] = Device,
    **fields: Any,
) -> Stored:
    """Encode ``payload`` as one event stamped now and write it whole (see write_event).

    ``fields``: the rest of :func:`compaction.encode_event`'s keywords (``kind``,
    ``event``, ``delta``, ``transcript_sha256``).
    """
    parts = compaction.encode_event(
        payload,
        source=source,
        session=session,
        trigger=trigger,
        ts=time.time_ns(),
        media_type=media_type,
        extra=extra,
        **fields,
    )
    with opener(device, "w") as dev:
        sizes = write_event(dev, parts)
    return Stored(session, parts[0].event, sizes, len(payload))


def _check_still_there(reader: Device, parts: list[Part]) -> None:
    """Raise if some of ``parts`` are no longer in the caller's ring (evicted while writing)."""
    first = parts[0]
    ours = (first.session, first.event, first.kind)
    with reader:
        found = [e for e in collect_events(reader) if (e.session, e.event, e.kind) == ours]
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
    def kind(self) -> str:
        return self.first.kind

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
        """What ``memlog episode list --format json`` prints for this event (its status
        and summary come from :class:`memlog.catalog.Catalog`)."""
        first = self.first
        return {
            "session": self.session,
            "event": self.event,
            "kind": first.kind,
            "uid": self.uid,
            "time": self.time,
            "ts_ns": self.ts,
            "source": first.source,
            "trigger": first.trigger,
            "media_type": first.media_type,
            "parts_present": len(self.parts),
            "parts_expected": self.expected,
            "complete": self.complete,
            "size": first.size,
            "offset": first.offset,
            "base": first.base,
            "stored_bytes": sum(len(p.data) for _, p in self.parts.values()),
            "encoding": first.encoding,
            **{k: first.extra[k] for k in compaction.OPTIONAL_FIELDS if k in first.extra},
        }

    def metadata(self) -> dict[str, Any]:
        """The ``.json`` written beside a promoted transcript (the whole transcript: its
        size and sha256, not the stored delta's)."""
        meta = self.summary()
        del meta["parts_present"], meta["complete"], meta["stored_bytes"], meta["kind"]
        meta["parts"] = meta.pop("parts_expected")
        meta["size"] = self.first.end if self.first.version >= 2 else self.first.size
        meta["stored_size"] = self.first.size
        meta["sha256"] = (self.first.transcript_sha256 or self.first.sha256).hex()
        meta["records"] = [
            {"seq": r.seq, "pid": r.pid, "ts_ns": r.ts_ns} for r, _ in self.sorted_parts()
        ]
        return meta

    def sorted_parts(self) -> list[tuple[Record, Part]]:
        return [self.parts[n] for n in sorted(self.parts)]

    def add(self, record: Record, part: Part) -> None:
        """Count ``part``; one disagreeing with the event's first part about the whole conflicts."""
        if part.whole() != self.first.whole():
            self.conflicts += 1
            return
        earlier = self.parts.get(part.part)
        if earlier is not None and earlier[1].data != part.data:
            self.conflicts += 1  # the same part twice, with other data: which is right?
            return
        self.parts[part.part] = (record, part)  # a part written again, the same: the newest

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
                "disagree with the others about the event: nothing written",
                "conflict",
            )
        data = b"".join(part.data for _, part in self.sorted_parts())
        try:
            return compaction.decode_payload(
                self.first.encoding, data, self.first.sha256, self.first.size
            )
        except EventFormatError as exc:
            raise EventFormatError(
                f"event {self.event} of session {self.session}: {exc}", exc.code
            ) from None


def collect_events(
    records: Iterable[Record], *, on_bad: Callable[[Record, str], None] | None = None
) -> list[Event]:
    """The compaction events among ``records``, oldest first (by their first part's record).

    Parts are grouped by (writer's uid, session, event, kind): a capture and
    the "compacted" event confirming it share their id.  Records that are not
    compaction parts are skipped; a malformed part is reported to ``on_bad``.
    """
    events: dict[tuple[int, str, str, str], Event] = {}
    for record in records:
        try:
            part = compaction.decode_part(record.blob)
        except EventFormatError as exc:
            if on_bad is not None:
                on_bad(record, str(exc))
            continue
        if part is None:
            continue
        key = (record.uid, part.session, part.event, part.kind)
        if key not in events:
            events[key] = Event(record.uid, part.session, part.event, part)
        events[key].add(record, part)
    return list(events.values())


def read_regular(path: Path) -> bytes:
    """The bytes of the regular file ``path``; MemlogError if it cannot be read or is not one.

    Opened without blocking: a FIFO in a promoted file's place must not hang a reader.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise MemlogError(f"cannot read {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise MemlogError(f"{path} is not a regular file")
        try:
            return file.read()
        except OSError as exc:
            raise MemlogError(f"cannot read {path}: {exc.strerror}") from None


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
