# SPDX-License-Identifier: MIT OR Apache-2.0
"""The ``memlog`` command: write, show, follow and manage /dev/memlog records.

Exit status: 0 ok, 1 error (one line on stderr), 2 usage.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
import time
from collections import deque
from collections.abc import Iterable, Sequence
from typing import BinaryIO, TextIO

from memlog import __version__, uapi
from memlog.device import Device
from memlog.errors import MemlogError
from memlog.records import Record

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


def record_json(record: Record) -> str:
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
        else:
            out.write(record_json(record) + "\n")
            out.flush()


def _select_view(dev: Device, args: argparse.Namespace) -> None:
    if getattr(args, "all", False):
        dev.filter_uid(uapi.UID_ALL)
    elif getattr(args, "uid", None) is not None:
        dev.filter_uid(args.uid)


def cmd_write(args: argparse.Namespace) -> int:
    blob = sys.stdin.buffer.read(uapi.RECORD_MAX + 1)
    if not blob:
        raise MemlogError("nothing to write: standard input is empty")
    if len(blob) > uapi.RECORD_MAX:
        raise MemlogError(f"standard input is larger than {uapi.RECORD_MAX} bytes (64 KiB)")
    with Device(args.device, "w") as dev:
        if args.session:
            dev.set_session(args.session)
        dev.write(blob)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with Device(args.device, "r") as dev:
        _select_view(dev, args)
        records: Iterable[Record] = iter(dev)
        if args.since is not None:
            cutoff = time.time_ns() - args.since * 1_000_000_000
            records = (r for r in records if r.ts_ns >= cutoff)
        if args.limit is not None:
            records = deque(records, maxlen=args.limit)
        _emit(records, args.format, sys.stdout, sys.stdout.buffer)
    return 0


def cmd_tail(args: argparse.Namespace) -> int:
    with Device(args.device, "r") as dev:
        _select_view(dev, args)
        _emit(deque(dev, maxlen=args.lines), "json", sys.stdout, sys.stdout.buffer)
        if args.follow:
            _emit(dev.follow(), "json", sys.stdout, sys.stdout.buffer)
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    with Device(args.device, "r") as dev:
        _select_view(dev, args)
        stats = dev.stats()
    for name, value in vars(stats).items():
        print(f"{name}: {value}")
    return 0


def cmd_clear(args: argparse.Namespace) -> int:
    with Device(args.device, "r") as dev:
        _select_view(dev, args)
        dev.clear()
    return 0


def cmd_version(args: argparse.Namespace) -> int:
    print(f"memlog {__version__}")
    with Device(args.device, "r") as dev:
        print(f"kernel record schema {dev.version()}")
    return 0


def _add_view(parser: argparse.ArgumentParser) -> None:
    view = parser.add_mutually_exclusive_group()
    view.add_argument("--uid", type=_uid, help="another uid's records (needs root)")
    view.add_argument("--all", action="store_true", help="every uid's records (needs root)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="memlog",
        description="Write, show and follow the records kept in /dev/memlog.",
        epilog="Exit status: 0 ok, 1 error, 2 usage.",
    )
    parser.add_argument("--version", action="version", version=f"memlog {__version__}")
    parser.add_argument(
        "--device", default=uapi.DEVICE_PATH, help="the device node (default: %(default)s)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("write", help="store standard input (1 byte to 64 KiB) as one record")
    p.add_argument("--session", help="tag the record with this session id (a UUID)")
    p.set_defaults(func=cmd_write)

    p = sub.add_parser("show", help="print the records (yours, or with root another uid's)")
    p.add_argument(
        "--since", type=parse_duration, metavar="DUR", help="only the last DUR (30s, 10m, 2h, 1d)"
    )
    p.add_argument("--limit", type=_positive, metavar="N", help="only the newest N records")
    p.add_argument(
        "--format",
        choices=("json", "raw"),
        default="json",
        help="json: one object per line, blob in base64 (default); raw: header+blob bytes",
    )
    _add_view(p)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("tail", help="print the newest records, and with -f the ones that follow")
    p.add_argument(
        "-n", "--lines", type=_positive, default=10, metavar="N", help="how many (default 10)"
    )
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new records")
    _add_view(p)
    p.set_defaults(func=cmd_tail)

    p = sub.add_parser("stats", help="print the ring's counters")
    _add_view(p)
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("clear", help="drop the records (needs root)")
    _add_view(p)
    p.set_defaults(func=cmd_clear)

    p = sub.add_parser("version", help="print this tool's and the kernel's versions")
    p.set_defaults(func=cmd_version)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except MemlogError as exc:
        print(f"memlog: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        # the reader went away (memlog show | head): not an error
        sys.stderr.close()
        return 0
