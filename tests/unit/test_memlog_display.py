# SPDX-License-Identifier: MIT OR Apache-2.0
"""`memlog show` for people: one line per record, the blob shown by what it is."""

from __future__ import annotations

import os
from typing import Any

import cbor2
import pytest
from conftest import RingSyscalls
from test_memlog_compaction import encode

from memlog import cli, display
from memlog.device import Device
from memlog.records import Record

TS = 1_764_496_308_123_456_789  # 2025-11-30 09:51:48.123456789 UTC


def line(blob: bytes, session: bytes = bytes(16)) -> str:
    return display.record_line(Record(7, TS, 1000, 4242, session, blob))


def test_a_record_line_starts_with_time_uid_pid_session_and_size() -> None:
    assert line(b"hello").startswith("2025-11-30 09:51:48.123456 uid=1000 pid=4242 session=- 5 B: ")


def test_a_session_is_shown_by_its_first_eight_hex_digits() -> None:
    assert " session=00010203 " in line(b"x", bytes(range(16)))


def test_printable_utf8_is_shown_as_text() -> None:
    assert line(b'{"hello":"world"}').endswith(': {"hello":"world"}')


def test_newlines_are_escaped_so_a_record_is_one_line() -> None:
    assert line(b"one\ntwo\tthree").endswith(": one\\ntwo\\tthree")


def test_cbor_is_shown_in_diagnostic_notation() -> None:
    blob = cbor2.dumps({"kind": "note", "n": [1, -2, 1.5], "raw": b"\x00\x01", "ok": True})
    shown = '{"kind": "note", "n": [1, -2, 1.5], "raw": h\'0001\', "ok": true}'
    assert line(blob).endswith(": " + shown)


def test_a_compaction_part_is_shown_as_a_one_line_summary() -> None:
    part = encode(os.urandom(100_000), event="e1")[1]
    shown = line(part.to_blob())
    assert shown.endswith(
        "[compaction claude-code session 3f1c2a4e-9b7d-4c1e-8f00-123456789abc event e1 "
        f"part 2/2 trigger auto, identity {display.format_size(len(part.data))}, 97.7 KiB in all]"
    )


def test_other_bytes_are_a_short_hex_preview() -> None:
    blob = bytes([0xFF, 0xFE]) + bytes(100)
    assert line(blob).endswith(": h'fffe" + "00" * 30 + "…' (102 bytes)")


@pytest.mark.parametrize(
    ("n", "text"), [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (3 << 20, "3.0 MiB")]
)
def test_sizes_are_in_binary_units(n: int, text: str) -> None:
    assert display.format_size(n) == text


def test_show_prints_for_people_by_default(ring: RingSyscalls, capsys: Any) -> None:
    """The seed README's `echo -n '{"hello":"world"}' | memlog write; memlog show --limit 5`."""
    with Device("/dev/fake", "w", syscalls=ring) as dev:
        dev.write(b'{"hello":"world"}')
    assert cli.main(["--device", "/dev/fake", "show", "--limit", "5"], opener=ring.opener()) == 0
    [shown] = capsys.readouterr().out.splitlines()
    assert shown.endswith(' 17 B: {"hello":"world"}')


@pytest.mark.parametrize(
    "blob",
    [cbor2.dumps(10**5000), b"\x81" * 2000 + b"\x00"],
    ids=["an integer of 5000 digits", "arrays 2000 deep"],
)
def test_cbor_too_big_to_print_is_a_hex_preview(blob: bytes) -> None:
    assert line(blob).endswith(f"({len(blob)} bytes)")


def test_a_simple_value_is_shown_as_one() -> None:
    assert line(cbor2.dumps(cbor2.CBORSimpleValue(16))).endswith(": simple(16)")
