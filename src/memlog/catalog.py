# SPDX-License-Identifier: MIT OR Apache-2.0
"""The events of one view, related: captures, what confirms them, and their chains of deltas.

A capture (kind "compaction") holds a transcript, whole or as the bytes
appended since an earlier capture of the same session, its *base*.  A
"compacted" event of the same id confirms that the agent did compact after
the capture.  :class:`Catalog` answers, for each capture: its status, its
summary, and its whole transcript, rebuilt along the chain of bases (from the
ring, or from files promoted earlier) with every link checked.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from memlog import compaction
from memlog.episodes import Event, IncompleteEventError, read_regular, write_atomically
from memlog.errors import MemlogError

Key = tuple[int, str, str]
"""(uid, session, event): what names an event of one view."""

CONFIRMED = "confirmed"
"""A PreCompact capture whose "compacted" event is in the ring: the agent compacted."""
UNCONFIRMED = "unconfirmed"
"""A PreCompact capture without its "compacted" event: no compaction followed, or the agent
died before it."""
INCOMPLETE = "incomplete"
"""Parts of the capture are gone (evicted), or disagree."""
SESSION_END = "session-end"
"""What the session appended after its last capture, kept when it ended."""
RECORDED = "recorded"
"""Written after the compaction happened (the SDK helpers), or by format version 1."""
NO_CAPTURE = "no-capture"
"""A "compacted" event whose capture is not in the ring."""


def _key(event: Event) -> Key:
    return (event.uid, event.session, event.event)


class Catalog:
    """The events of one view (oldest first, as :func:`episodes.collect_events` gives them)."""

    def __init__(self, events: Iterable[Event]) -> None:
        self.captures: dict[Key, Event] = {}
        self.confirmations: dict[Key, Event] = {}
        for event in events:
            table = self.captures if event.kind == compaction.KIND else self.confirmations
            table[_key(event)] = event
        self._reachable: dict[Key, bool] = {}

    def events(self) -> list[Event]:
        """Captures and the confirmations without a capture, oldest first (by the seq of
        their first record in the ring)."""
        lonely = [e for k, e in self.confirmations.items() if k not in self.captures]
        found = [*self.captures.values(), *lonely]
        return sorted(found, key=lambda e: min(r.seq for r, _ in e.parts.values()))

    def confirmation(self, event: Event) -> Event | None:
        return self.confirmations.get(_key(event))

    def status(self, event: Event) -> str:
        """One of the statuses above."""
        if event.kind == compaction.KIND_COMPACTED:
            return NO_CAPTURE
        if not event.complete:
            return INCOMPLETE
        hook = event.first.extra.get("hook")
        if hook == "SessionEnd":
            return SESSION_END
        if hook != "PreCompact":
            return RECORDED
        confirmation = self.confirmation(event)
        return CONFIRMED if confirmation is not None and confirmation.complete else UNCONFIRMED

    def summary(self, event: Event) -> str | None:
        """The compaction's summary, from the event confirming ``event``; None if none is whole."""
        confirmation = self.confirmation(event)
        if confirmation is None or not confirmation.complete:
            return None
        try:
            return confirmation.payload().decode("utf-8", errors="replace")
        except MemlogError:  # a corrupt confirmation: no summary, the capture stays whole
            return None

    def reachable(self, event: Event) -> bool:
        """Whether ``event``'s whole transcript can be rebuilt from the ring alone.

        Walks the chain of bases without recursion (a writer may make it long)
        and stops at a loop; every event on the way shares the answer.
        """
        path: list[Key] = []
        on_path: set[Key] = set()
        current: Event | None = event
        while True:
            if current is None:
                answer = False  # a base not in the ring, or a broken link
                break
            key = _key(current)
            if key in self._reachable:
                answer = self._reachable[key]
                break
            if key in on_path or not current.complete:
                answer = False
                break
            path.append(key)
            on_path.add(key)
            if current.first.offset == 0:
                answer = True
                break
            current = self._base(current)
        for key in path:
            self._reachable[key] = answer
        return answer

    def _base(self, event: Event) -> Event | None:
        """The capture ``event`` continues, if it is in the ring and the link holds."""
        first = event.first
        if first.base is None:
            return None
        base = self.captures.get((event.uid, event.session, first.base))
        if (
            base is None
            or base.first.end != first.offset
            or base.first.transcript_sha256 != first.prefix_sha256
        ):
            return None
        return base

    def root(self, event: Event) -> Event:
        """The first capture of ``event``'s chain in the ring (``event`` if it is whole)."""
        seen = {_key(event)}
        while (base := self._base(event)) is not None and _key(base) not in seen:
            seen.add(_key(base))
            event = base
        return event

    def latest_reachable(self, session: str) -> Event | None:
        """The newest capture of ``session`` (in a view of one uid: the writer's own) whose
        transcript the ring holds whole: the base of the session's next delta."""
        for event in reversed(list(self.captures.values())):
            if event.session == session and self.reachable(event):
                return event
        return None

    def transcript(self, event: Event, promoted: Path | None = None) -> bytes:
        """The whole transcript through ``event``, every link of its chain checked.

        A base missing from the ring (or incomplete there) is looked for among
        the files promoted under ``promoted``.  A missing or broken link raises
        IncompleteEventError naming it.
        """
        chain: list[Event] = []
        prefix = b""
        seen: set[Key] = set()
        current = event
        while True:
            if _key(current) in seen:
                raise IncompleteEventError(
                    f"event {event.event}: its chain of bases loops", "broken-link"
                )
            seen.add(_key(current))
            chain.append(current)
            first = current.first
            if first.offset == 0:
                break
            base = self.captures.get((current.uid, current.session, first.base or ""))
            if base is not None and base.complete:
                if base.first.end != first.offset or (
                    base.first.transcript_sha256 != first.prefix_sha256
                ):
                    raise IncompleteEventError(
                        f"event {current.event} of session {current.session} does not continue "
                        f"event {first.base} as it says (the link is broken): nothing written",
                        "broken-link",
                    )
                current = base
                continue
            found = _promoted_prefix(promoted, current)
            if found is None:
                where = "incomplete in" if base is not None else "not in"
                raise IncompleteEventError(
                    f"event {event.event} of session {event.session} needs event {first.base}, "
                    f"which is {where} the ring and not promoted: nothing written",
                    "missing-base",
                )
            prefix = found
            break
        data = prefix + b"".join(e.payload() for e in reversed(chain))
        want = event.first.transcript_sha256 or event.first.sha256
        if hashlib.sha256(data).digest() != want:
            raise IncompleteEventError(
                f"event {event.event} of session {event.session}: the rebuilt transcript does "
                "not match its transcript_sha256",
                "sha256-mismatch",
            )
        return data

    def metadata(self, event: Event) -> dict[str, Any]:
        """The ``.json`` of a promoted capture: the event's, its status and its summary."""
        meta = event.metadata()
        meta["status"] = self.status(event)
        summary = self.summary(event)
        if summary is not None:
            meta["summary"] = summary
        return meta

    def is_promoted(self, event: Event, out_dir: Path) -> bool:
        """True if ``out_dir`` already holds ``event``: its metadata with the same sha256 and
        status, and a transcript of the right size."""
        try:
            directory = out_dir / compaction.check_id(event.session, "session id")
            name = compaction.check_id(event.event, "event id")
            meta = json.loads((directory / f"{name}.json").read_text(encoding="utf-8"))
            size = (directory / f"{name}.jsonl").stat().st_size
        except (MemlogError, OSError, ValueError):
            return False
        want = event.metadata()
        return (
            isinstance(meta, dict)
            and meta.get("sha256") == want["sha256"]
            and meta.get("status") == self.status(event)
            and (want["size"] is None or size == want["size"])
        )

    def promote(self, event: Event, out_dir: Path) -> tuple[Path, Path]:
        """Write ``event`` as ``out_dir/<session>/<event>.jsonl`` (the whole transcript through
        it) plus ``.json``; return both paths.

        The transcript is rebuilt and checked (every part present, every link
        of its chain, the SHA-256) before anything is written; each file
        appears whole or not at all.
        """
        session = compaction.check_id(event.session, "session id")
        name = compaction.check_id(event.event, "event id")
        payload = self.transcript(event, out_dir)
        meta = json.dumps(self.metadata(event), indent=2, sort_keys=True).encode() + b"\n"
        target = out_dir / session
        try:
            target.mkdir(parents=True, exist_ok=True, mode=0o700)
            transcript, metadata = target / f"{name}.jsonl", target / f"{name}.json"
            write_atomically(transcript, payload)
            write_atomically(metadata, meta)
        except OSError as exc:
            raise MemlogError(f"cannot write the episode under {target}: {exc.strerror}") from None
        return transcript, metadata


def _promoted_prefix(promoted: Path | None, event: Event) -> bytes | None:
    """The transcript through ``event``'s base, from its promoted file, if it matches."""
    first = event.first
    if promoted is None or first.base is None or first.prefix_sha256 is None:
        return None
    try:
        path = (
            promoted
            / compaction.check_id(event.session, "session id")
            / f"{compaction.check_id(first.base, 'event id')}.jsonl"
        )
        data = read_regular(path)
    except MemlogError:
        return None
    if len(data) != first.offset or hashlib.sha256(data).digest() != first.prefix_sha256:
        return None
    return data
