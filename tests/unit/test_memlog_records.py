# SPDX-License-Identifier: MIT OR Apache-2.0
"""memlog.records: parsing records and stats as the device returns them."""

from __future__ import annotations

import datetime as dt

import pytest

from memlog import uapi
from memlog.errors import RecordFormatError
from memlog.records import Record, Stats, iter_records, parse_record

RECORD = Record(seq=7, ts_ns=1_700_000_000_123_456_789, uid=1000, pid=42,
                session_id=bytes(range(16)), blob=b"context")  # fmt: skip


def _corrupt(offset: int, value: int) -> bytes:
    buf = bytearray(RECORD.to_bytes())
    buf[offset] = value
    return bytes(buf)


def test_record_round_trips_through_its_bytes() -> None:
    """parse_record(record.to_bytes()) gives the same record."""
    assert parse_record(RECORD.to_bytes()) == RECORD


def test_record_bytes_start_with_the_packed_header() -> None:
    """to_bytes() is the 56-byte header (magic, schema, length, reserved...) then the blob."""
    data = RECORD.to_bytes()
    assert uapi.RECORD_HEADER.unpack_from(data) == (
        uapi.MAGIC, 1, 7, 0, RECORD.ts_ns, 7, 1000, 42, bytes(range(16))
    )  # fmt: skip
    assert data[56:] == b"context"


def test_parse_record_rejects_wrong_magic() -> None:
    """A record whose magic is not MLOG is refused."""
    with pytest.raises(RecordFormatError, match="magic"):
        parse_record(_corrupt(0, 0))


def test_parse_record_rejects_another_schema_version() -> None:
    """A schema version other than 1 is refused."""
    with pytest.raises(RecordFormatError, match="schema version 2"):
        parse_record(_corrupt(4, 2))


def test_parse_record_rejects_a_nonzero_reserved_field() -> None:
    """A header whose reserved field is not 0 is refused."""
    with pytest.raises(RecordFormatError, match="reserved"):
        parse_record(_corrupt(12, 1))


def test_parse_record_rejects_a_length_longer_than_the_data() -> None:
    """A header announcing more blob than follows is refused."""
    with pytest.raises(RecordFormatError, match="says 7 bytes"):
        parse_record(RECORD.to_bytes()[:-1])


def test_parse_record_rejects_trailing_bytes() -> None:
    """Bytes after the announced blob are refused."""
    with pytest.raises(RecordFormatError, match="8 follow"):
        parse_record(RECORD.to_bytes() + b"!")


def test_parse_record_rejects_a_short_buffer() -> None:
    """Fewer bytes than a header are refused."""
    with pytest.raises(RecordFormatError, match="shorter"):
        parse_record(b"MLOG")


def test_record_time_is_an_aware_utc_datetime() -> None:
    """Record.time is ts_ns in UTC, to the microsecond."""
    assert RECORD.time == dt.datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=dt.UTC)


def test_record_is_frozen() -> None:
    """Records are immutable."""
    with pytest.raises(AttributeError):
        RECORD.seq = 8  # type: ignore[misc]


def test_iter_records_splits_a_raw_dump() -> None:
    """A concatenation of records splits back into them."""
    other = Record(8, 2, 0, 1, bytes(16), b"x" * 9)
    assert iter_records(RECORD.to_bytes() + other.to_bytes()) == [RECORD, other]


def test_iter_records_rejects_a_truncated_dump() -> None:
    """A dump ending in part of a header is refused."""
    with pytest.raises(RecordFormatError, match="trailing"):
        iter_records(RECORD.to_bytes() + b"MLOG")


def test_stats_parse_the_48_byte_struct_in_field_order() -> None:
    """Stats.from_bytes reads the fields in struct memlog_stats order."""
    stats = Stats.from_bytes(uapi.STATS.pack(1, 2, 3, 4, 5, 6, 7))
    assert stats == Stats(total_writes=1, total_evictions=2, records_in_ring=3, ring_bytes=4,
                          ring_capacity=5, oldest_ts_ns=6, newest_ts_ns=7)  # fmt: skip


def test_stats_reject_a_buffer_of_the_wrong_size() -> None:
    """Stats of other than 48 bytes are refused."""
    with pytest.raises(RecordFormatError, match="expected 48"):
        Stats.from_bytes(bytes(40))
