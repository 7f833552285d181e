# SPDX-License-Identifier: MIT OR Apache-2.0
"""The ``memlog`` command: write, show, follow and manage /dev/memlog records.

``show`` and ``tail`` print for people by default, one line per record
(:mod:`memlog.display`); ``--format json`` prints one JSON object per record
(the blob in base64), ``--format raw`` the records' exact bytes, which
:func:`memlog.iter_records` splits again.  ``hook`` connects agents
(:mod:`memlog.claude_code`), ``episode`` gets their compaction events back
out (:mod:`memlog.episodes`).

Exit status: 0 ok (also when the reader of the output goes away, or on
Ctrl-C in ``tail -f``), 1 error (one line on stderr), 2 usage, 130 other
interruptions.  ``memlog hook claude-code`` never exits 2, not even on a
usage error: Claude Code takes a PreCompact hook's 2 as "block the
compaction".
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import itertools
import json
import os
import re
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, NoReturn, TextIO

from memlog import (
    __version__,
    claude_code,
    claude_settings,
    compaction,
    display,
    episodes,
    render,
    uapi,
)
from memlog.catalog import INCOMPLETE, Catalog
from memlog.device import Device, session_bytes
from memlog.errors import MemlogError, UnsupportedError
from memlog.records import Record

Opener = Callable[[str, str], Device]
"""Opens the device: ``opener(path, mode)``; tests pass one making a Device on fake syscalls."""

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """Seconds in a duration like 30s, 10m, 2h or 1d."""
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30s, 10m, 2h or 1d")
    return int(match[1]) * _UNIT_SECONDS[match[2]]


def _uid(text: str) -> int:
    if not text.isdigit() or int(text) >= uapi.UID_ALL:
        raise argparse.ArgumentTypeError(f"{text!r} is not a uid")
    return int(text)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return int(text)


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a number")
    return int(text)


def _session(text: str) -> bytes:
    try:
        return session_bytes(text)
    except MemlogError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def record_json(record: Record) -> str:
    """One JSON line for ``record`` (without the newline)."""
    return json.dumps(
        {
            "seq": record.seq,
            "ts_ns": record.ts_ns,
            "time": record.time.isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "uid": record.uid,
            "pid": record.pid,
            "session_id": record.session_id.hex(),
            "length": len(record.blob),
            "blob": base64.b64encode(record.blob).decode(),
        }
    )


def _emit(records: Iterable[Record], fmt: str, out: TextIO, raw: BinaryIO) -> None:
    for record in records:
        if fmt == "raw":
            raw.write(record.to_bytes())
            raw.flush()
        elif fmt == "json":
            out.write(record_json(record) + "\n")
            out.flush()
        else:
            out.write(display.record_line(record) + "\n")
            out.flush()


def _outputs() -> tuple[TextIO, BinaryIO]:
    """Standard output as text and as bytes."""
    if sys.stdout is None:  # started with stdout closed (memlog show >&-)
        raise MemlogError("standard output is closed")
    return sys.stdout, sys.stdout.buffer


class _LossWatch:
    """Says on stderr whenever the kernel evicted records of a reader's view unread."""

    def __init__(self, dev: Device) -> None:
        self.dev = dev
        self.reported = 0
        self.supported = True

    def check(self) -> None:
        if not self.supported:
            return
        try:
            lost = self.dev.lost()
        except UnsupportedError:  # a driver without GET_LOST, or a plain file
            self.supported = False
            return
        if lost > self.reported:
            print(
                f"memlog: warning: {lost - self.reported} record(s) evicted before they "
                f"could be read ({lost} since this reader started)",
                file=sys.stderr,
                flush=True,
            )
            self.reported = lost

    def records(self, records: Iterable[Record]) -> Iterator[Record]:
        """Pass ``records`` through, checking for loss before and after each."""
        self.check()
        for record in records:
            yield record
            self.check()


def _select_view(dev: Device, args: argparse.Namespace) -> None:
    if getattr(args, "all", False):
        dev.filter_uid(uapi.UID_ALL)
    elif getattr(args, "uid", None) is not None:
        dev.filter_uid(args.uid)


def cmd_write(args: argparse.Namespace, opener: Opener) -> int:
    blob = sys.stdin.buffer.read(uapi.RECORD_MAX + 1)
    if not blob:
        raise MemlogError("nothing to write: standard input is empty")
    if len(blob) > uapi.RECORD_MAX:
        raise MemlogError(f"standard input is larger than {uapi.RECORD_MAX} bytes (64 KiB)")
    with opener(args.device, "w") as dev:
        if args.session is not None:
            dev.set_session(args.session)
        dev.write(blob)
    return 0


def cmd_show(args: argparse.Namespace, opener: Opener) -> int:
    with opener(args.device, "r") as dev:
        _select_view(dev, args)
        records: Iterable[Record] = _LossWatch(dev).records(dev)
        if args.since is not None:
            cutoff = time.time_ns() - args.since * 1_000_000_000
            records = (r for r in records if r.ts_ns >= cutoff)
        if args.limit is not None:
            records = deque(records, maxlen=args.limit)
        _emit(records, args.format, *_outputs())
    return 0


def cmd_tail(args: argparse.Namespace, opener: Opener) -> int:
    with opener(args.device, "r") as dev:
        _select_view(dev, args)
        watch = _LossWatch(dev)
        _emit(deque(watch.records(dev), maxlen=args.lines), args.format, *_outputs())
        if args.follow:
            with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how one stops following
                _emit(watch.records(dev.follow()), args.format, *_outputs())
    return 0


def cmd_stats(args: argparse.Namespace, opener: Opener) -> int:
    with opener(args.device, "r") as dev:
        _select_view(dev, args)
        stats = dev.stats()
    for name, value in vars(stats).items():
        print(f"{name}: {value}")
    return 0


def cmd_clear(args: argparse.Namespace, opener: Opener) -> int:
    with opener(args.device, "r") as dev:
        _select_view(dev, args)
        dev.clear()
    return 0


def cmd_version(args: argparse.Namespace, opener: Opener) -> int:
    print(f"memlog {__version__}", flush=True)
    with opener(args.device, "r") as dev:
        print(f"kernel record schema {dev.version()}")
    return 0


HOOK_TIMEOUT = 30
"""Seconds after which ``memlog hook claude-code`` gives up.

Half the timeout ``memlog hook install`` writes for it (claude_settings.HOOK_TIMEOUT):
the hook ends on its own deadline, never on Claude Code's.
"""

HOOK_MESSAGE_MAX = 200
"""The longest line the hook writes on stderr (Claude Code may show it to the model)."""


def _runs_the_hook(argv: Sequence[str]) -> bool:
    """Whether ``argv`` asks for ``hook claude-code`` (after any global options)."""
    return any(a == "hook" and b == "claude-code" for a, b in itertools.pairwise(argv))


def _hook_error(message: str) -> None:
    """The hook's one short line on stderr: no newline inside, at most HOOK_MESSAGE_MAX long."""
    line = " ".join(f"memlog hook: error: {message}".split())
    if len(line) > HOOK_MESSAGE_MAX:
        line = line[: HOOK_MESSAGE_MAX - 3] + "..."
    print(line, file=sys.stderr)


def _hook_timeout(signum: int, frame: object) -> None:
    raise MemlogError(f"gave up after {HOOK_TIMEOUT} s")


def cmd_hook_claude_code(args: argparse.Namespace, opener: Opener) -> int:
    """Never breaks the agent: any failure is one short line on stderr and status 1.

    Prints nothing on stdout: Claude Code passes a PreCompact hook's output
    to the summary as instructions.  Never exits 2 (see main()).
    """
    signal.signal(signal.SIGALRM, _hook_timeout)
    signal.alarm(HOOK_TIMEOUT)
    try:
        hook = claude_code.HookInput.from_json(sys.stdin.buffer.read(1 << 20))
        claude_code.capture(hook, device=args.device, source=args.source, opener=opener)
    except MemlogError as exc:
        _hook_error(str(exc))
        return 1
    except Exception as exc:  # never a traceback, nor text from the input, into the session
        _hook_error(f"internal error ({type(exc).__name__})")
        return 1
    finally:
        signal.alarm(0)
    return 0


def cmd_hook_install(args: argparse.Namespace, opener: Opener) -> int:
    if args.project is not None and args.scope not in ("project", "local"):
        raise MemlogError("--project DIR goes with --scope project or --scope local")
    result = claude_settings.install_scope(args.scope, project=args.project, program=args.command)
    events = ", ".join(claude_settings.HOOK_EVENTS)
    if not result.changed:
        print(f"{result.path}: the hooks ({events}) are already there; nothing changed")
    else:
        kept = f" (the old file is kept as {result.backup})" if result.backup else ""
        print(f"{result.path}: the {events} hooks run `{result.command}`{kept}")
    return 0


def _catalog(args: argparse.Namespace, opener: Opener) -> tuple[Catalog, list[episodes.Event]]:
    """The view's events, related, and those of ``--session`` (all without it)."""

    def bad(record: Record, why: str) -> None:
        print(f"memlog: warning: record {record.seq} skipped: {why}", file=sys.stderr)

    with opener(args.device, "r") as dev:
        _select_view(dev, args)
        catalog = Catalog(episodes.collect_events(dev, on_bad=bad))
    found = catalog.events()
    if getattr(args, "session", None) is not None:
        found = [e for e in found if e.session == args.session]
    return catalog, found


def _why_incomplete(event: episodes.Event) -> str:
    if event.missing:
        return f"parts {episodes.describe_parts(event.missing)} of {event.expected} are missing"
    return f"{event.conflicts} part(s) disagree with the others about the event"


def cmd_episode_list(args: argparse.Namespace, opener: Opener) -> int:
    catalog, found = _catalog(args, opener)
    out, _ = _outputs()
    if args.format == "json":
        for event in found:
            line = {**event.summary(), "status": catalog.status(event)}
            summary = catalog.summary(event) if event.kind == compaction.KIND else None
            if summary is not None:
                line["summary"] = summary
            out.write(json.dumps(line) + "\n")
        return 0
    several_uids = args.all or args.uid is not None
    for event in found:
        first = event.first
        size = "?" if first.size is None else display.format_size(first.size)
        status = catalog.status(event)
        if status == INCOMPLETE:
            status = f"INCOMPLETE ({_why_incomplete(event)})"
        stored = f"+{size} after {display.format_size(first.offset)}" if first.offset else size
        uid = f"uid {event.uid} " if several_uids else ""
        out.write(
            f"{display.format_time(event.ts)} {uid}session {event.session} event {event.event} "
            f"{render.shorten(str(first.extra.get('hook') or first.source), 40)} "
            f"trigger {first.trigger} "
            f"parts {len(event.parts)}/{event.expected} size {stored} {status}\n"
        )
    return 0


def _promote_each(catalog: Catalog, chosen: list[episodes.Event], out_dir: Path) -> int:
    """Promote each of ``chosen``; a failure is a warning (the others go on), then status 1."""
    status = 0
    for event in chosen:
        try:
            transcript, _ = catalog.promote(event, out_dir)
        except MemlogError as exc:
            print(f"memlog: warning: {exc}", file=sys.stderr)
            status = 1
            continue
        print(transcript)
    return status


def cmd_episode_promote(args: argparse.Namespace, opener: Opener) -> int:
    catalog, found = _catalog(args, opener)
    found = [e for e in found if e.kind == compaction.KIND]  # a confirmation alone: no transcript
    out_dir = args.out if args.out is not None else episodes.default_episode_dir()
    if args.all_sessions:
        if args.event is not None:
            raise MemlogError("--event needs --session, not --all-sessions")
        new = [e for e in found if e.complete and not catalog.is_promoted(e, out_dir)]
        return _promote_each(catalog, new, out_dir)
    if args.event is not None:
        chosen = [e for e in found if e.event == args.event]
        if not chosen:
            raise MemlogError(f"no event {args.event} of session {args.session} in the ring")
        transcript, _ = catalog.promote(chosen[0], out_dir)  # the error names missing parts
        print(transcript)
        return 0
    chosen = [e for e in found if e.complete]
    for event in found:
        if not event.complete:
            print(
                f"memlog: warning: event {event.event} skipped: {_why_incomplete(event)}",
                file=sys.stderr,
            )
    if not chosen:
        what = "incomplete events only" if found else "no compaction event"
        raise MemlogError(f"session {args.session} has {what} in the ring: nothing written")
    return _promote_each(catalog, chosen, out_dir)


def _shown_event(
    args: argparse.Namespace, opener: Opener
) -> tuple[str, bytes, str | None, str, str | None]:
    """(title, transcript, media type, status, summary) of the event ``episode show`` names."""
    if args.file is not None:
        payload = episodes.read_regular(args.file)
        try:
            meta = json.loads(args.file.with_suffix(".json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}
        meta = meta if isinstance(meta, dict) else {}
        title = f"{meta.get('session', '?')}, event {meta.get('event', args.file.stem)}"
        summary = meta.get("summary") if isinstance(meta.get("summary"), str) else None
        media = meta.get("media_type") if isinstance(meta.get("media_type"), str) else None
        return title, payload, media, str(meta.get("status", "?")), summary
    if args.session is None:
        raise MemlogError("give --session S (and --event E), or a promoted FILE")
    catalog, found = _catalog(args, opener)
    captures = [e for e in found if e.kind == compaction.KIND]
    if args.event is not None:
        captures = [e for e in captures if e.event == args.event]
    if not captures:
        which = f"event {args.event}" if args.event else "no capture"
        raise MemlogError(f"session {args.session} has {which} in the ring")
    event = captures[-1]
    payload = catalog.transcript(event, episodes.default_episode_dir())
    title = f"{event.session}, event {event.event} ({event.first.trigger}, {event.time})"
    return title, payload, event.first.media_type, catalog.status(event), catalog.summary(event)


def cmd_episode_show(args: argparse.Namespace, opener: Opener) -> int:
    title, payload, media_type, status, summary = _shown_event(args, opener)
    found = render.turns(payload, media_type)
    out, _ = _outputs()
    if args.format == "json":
        document = {
            "title": title,
            "status": status,
            "summary": summary,
            "turns": [t.to_json() for t in found],
        }
        out.write(json.dumps(document, ensure_ascii=False, indent=1) + "\n")
    else:
        out.write(render.markdown(f"Session {title}", found, summary, status))
    return 0


def _grep_sources(
    args: argparse.Namespace, opener: Opener
) -> Iterator[tuple[str, str, bytes, str | None]]:
    """(where, session, payload, media type) of each place ``episode grep`` searches:
    each event's own payload in the ring, its summary, then the promoted files."""
    catalog, _ = _catalog(args, opener)
    for event in [*catalog.captures.values(), *catalog.confirmations.values()]:
        if not event.complete or args.session not in (None, event.session):
            continue
        where = f"ring:{event.event}"
        try:
            payload = event.payload()
        except MemlogError as exc:  # one bad event is no reason to stop searching
            print(f"memlog: warning: {exc}", file=sys.stderr)
            continue
        media = "text/plain" if event.kind == compaction.KIND_COMPACTED else event.first.media_type
        yield where, event.session, payload, media
    out_dir = args.out if args.out is not None else episodes.default_episode_dir()
    for path in sorted(out_dir.glob("*/*.jsonl")):
        if args.session is not None and path.parent.name != args.session:
            continue
        try:
            meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
            payload = episodes.read_regular(path)
        except (OSError, ValueError, MemlogError):
            continue
        media = meta.get("media_type") if isinstance(meta, dict) else None
        yield str(path), path.parent.name, payload, media if isinstance(media, str) else None


def cmd_episode_grep(args: argparse.Namespace, opener: Opener) -> int:
    try:
        pattern = re.compile(args.pattern, re.IGNORECASE if args.ignore_case else 0)
    except re.error as exc:
        raise MemlogError(f"bad pattern {args.pattern!r}: {exc}") from None
    out, _ = _outputs()
    seen: set[tuple[str, str, str]] = set()
    for where, session, payload, media_type in _grep_sources(args, opener):
        if media_type == "text/plain":
            found = [render.Turn("summary", "summary", payload.decode(errors="replace"))]
        else:
            found = render.turns(payload, media_type)
        for turn in found:
            key = (session, turn.role, turn.text)
            if key in seen or not pattern.search(turn.text):
                continue
            seen.add(key)  # a promoted transcript repeats the turns of earlier ones
            match = pattern.search(turn.text)
            start = max(0, match.start() - 60) if match else 0
            out.write(f"{where} {session} {turn.role}: {render.shorten(turn.text[start:], 160)}\n")
    return 0


def _add_view(parser: argparse.ArgumentParser) -> None:
    view = parser.add_mutually_exclusive_group()
    view.add_argument("--uid", type=_uid, help="another uid's records (needs root)")
    view.add_argument("--all", action="store_true", help="every uid's records (needs root)")


def _add_record_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=("text", "json", "raw"),
        default="text",
        help="text: one line per record for people (default); json: one object per line, "
        "blob in base64; raw: the records' header+blob bytes",
    )


class UsageError(Exception):
    """A command line the parser refuses, raised instead of argparse's exit 2."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser
        self.message = message


class _Parser(argparse.ArgumentParser):
    """argparse, raising UsageError where argparse would print usage and exit 2.

    main() decides what a usage error prints and returns: the hook must not
    exit 2.  Subparsers are of the same class (argparse's default).
    """

    def error(self, message: str) -> NoReturn:
        raise UsageError(self, message)


def _command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, summary: str
) -> argparse.ArgumentParser:
    """A subcommand whose one-line summary is both its help and its description."""
    return sub.add_parser(
        name,
        help=summary,
        description=summary[0].upper() + summary[1:] + ".",
        allow_abbrev=False,  # --all must never be taken for --all-sessions
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="memlog",
        allow_abbrev=False,
        description="Write, show and follow the records kept in /dev/memlog.",
        epilog="Exit status: 0 ok, 1 error, 2 usage.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"memlog {__version__}",
        help="print this tool's version and exit",
    )
    parser.add_argument(
        "--device", default=uapi.DEVICE_PATH, help="the device node (default: %(default)s)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _command(sub, "write", "store standard input (1 byte to 64 KiB) as one record")
    p.add_argument(
        "--session",
        type=_session,
        metavar="UUID",
        help="tag the record with this session id (a UUID, or 32 hex digits)",
    )
    p.set_defaults(func=cmd_write)

    p = _command(sub, "show", "print the records (yours, or with root another uid's)")
    p.add_argument(
        "--since", type=parse_duration, metavar="DUR", help="only the last DUR (30s, 10m, 2h, 1d)"
    )
    p.add_argument("--limit", type=_positive, metavar="N", help="only the newest N records")
    _add_record_format(p)
    _add_view(p)
    p.set_defaults(func=cmd_show)

    p = _command(sub, "tail", "print the newest records, and with -f the ones that follow")
    p.add_argument(
        "-n", "--lines", type=_count, default=10, metavar="N", help="how many (default 10)"
    )
    p.add_argument(
        "-f", "--follow", action="store_true", help="keep printing new records until Ctrl-C"
    )
    _add_record_format(p)
    _add_view(p)
    p.set_defaults(func=cmd_tail)

    p = _command(sub, "stats", "print the ring's counters")
    _add_view(p)
    p.set_defaults(func=cmd_stats)

    p = _command(sub, "clear", "drop the records (needs root)")
    _add_view(p)
    p.set_defaults(func=cmd_clear)

    p = _command(sub, "version", "print this tool's and the kernel's versions")
    p.set_defaults(func=cmd_version)

    hook = _command(sub, "hook", "connect an agent to memlog").add_subparsers(
        dest="hook_command", required=True, metavar="HOOK"
    )
    p = _command(
        hook,
        "claude-code",
        "Claude Code's PreCompact hook: store the transcript named by the JSON on stdin",
    )
    p.add_argument(
        "--source", default="claude-code", help="the events' source field (default: %(default)s)"
    )
    p.set_defaults(func=cmd_hook_claude_code)
    p = _command(hook, "install", "add `memlog hook claude-code` to a Claude Code settings file")
    p.add_argument(
        "--scope",
        choices=claude_settings.SCOPES,
        default="user",
        help="user: $CLAUDE_CONFIG_DIR/settings.json, else ~/.claude/settings.json (default); "
        "project: the project's shared .claude/settings.json; local: the project's "
        ".claude/settings.local.json (yours alone); managed: "
        f"{claude_settings.MANAGED_SETTINGS}, enforced for every user (root)",
    )
    p.add_argument(
        "--project",
        type=Path,
        metavar="DIR",
        help="the project directory of --scope project or local (default: the current one)",
    )
    p.add_argument(
        "--command",
        metavar="PATH",
        help="the memlog the hooks run (default: this one, by its absolute path)",
    )
    p.set_defaults(func=cmd_hook_install)

    episode = _command(sub, "episode", "list compaction events and promote them to files")
    episode_sub = episode.add_subparsers(dest="episode_command", required=True, metavar="ACTION")
    p = _command(episode_sub, "list", "one line per compaction event in the ring")
    p.add_argument("--session", metavar="S", help="only this session's events")
    p.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text: for people (default); json: one object per event and line",
    )
    _add_view(p)
    p.set_defaults(func=cmd_episode_list)
    p = _command(
        episode_sub, "promote", "write a session's events as DIR/<session>/<event>.jsonl and .json"
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--session", metavar="S", help="the session")
    which.add_argument(
        "--all-sessions",
        action="store_true",
        help="every complete event not promoted yet, of any session (memlog-promote.service)",
    )
    p.add_argument(
        "--event", metavar="E", help="only this event (default: every complete one of the session)"
    )
    p.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="where to write (default: $XDG_DATA_HOME/memlog/episodes, "
        "~/.local/share/memlog/episodes)",
    )
    # One uid at a time: promoted files are named by session and event, not by uid.
    p.add_argument("--uid", type=_uid, help="another uid's events (needs root)")
    p.set_defaults(func=cmd_episode_promote)
    p = _command(
        episode_sub, "show", "render an event's transcript for people: turns, tools, compactions"
    )
    p.add_argument("file", nargs="?", type=Path, metavar="FILE", help="a promoted <event>.jsonl")
    p.add_argument("--session", metavar="S", help="the session (from the ring)")
    p.add_argument("--event", metavar="E", help="the event (default: the session's newest)")
    p.add_argument(
        "--format",
        choices=("markdown", "json"),
        default="markdown",
        help="markdown: for people (default); json: the turns as objects",
    )
    p.add_argument("--uid", type=_uid, help="another uid's events (needs root)")
    p.set_defaults(func=cmd_episode_show, all=False)
    p = _command(
        episode_sub, "grep", "search the text of the ring's events and of promoted episodes"
    )
    p.add_argument("pattern", metavar="PATTERN", help="a regular expression (Python's)")
    p.add_argument("-i", "--ignore-case", action="store_true", help="ignore case")
    p.add_argument("--session", metavar="S", help="only this session")
    p.add_argument(
        "--out", type=Path, metavar="DIR", help="where promoted episodes are (default: as promote)"
    )
    p.add_argument("--uid", type=_uid, help="another uid's events (needs root)")
    p.set_defaults(func=cmd_episode_grep, all=False)
    return parser


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that flushing it at exit fails no more."""
    try:
        stdout = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a file descriptor (output captured in-process): nothing is left to flush
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, stdout)
    os.close(devnull)


def main(argv: Sequence[str] | None = None, *, opener: Opener = Device) -> int:
    """Run the command line ``argv`` (default: sys.argv[1:]); return the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        if _runs_the_hook(argv):
            _hook_error(f"usage: {exc.message}")
            return 1
        exc.parser.print_usage(sys.stderr)
        print(f"{exc.parser.prog}: error: {exc.message}", file=sys.stderr)
        return 2
    try:
        return int(args.func(args, opener))
    except MemlogError as exc:
        print(f"memlog: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # the reader went away (memlog show | head): not an error
        _silence_stdout()
        return 0
    except KeyboardInterrupt:
        return 130
