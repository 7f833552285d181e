# SPDX-License-Identifier: MIT OR Apache-2.0
"""Records and statistics as read from /dev/memlog."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from memlog import uapi
from memlog.errors import RecordFormatError


@dataclass(frozen=True)
class Record:
    """One record: the kernel's stamp (seq, time, writer's uid and pid, session) and the blob."""

    seq: int
    ts_ns: int
    uid: int
    pid: int
    session_id: bytes
    blob: bytes

    @property
    def time(self) -> dt.datetime:
        """ts_ns as an aware UTC datetime (microseconds, truncated, never rounded up)."""
        seconds, nanos = divmod(self.ts_ns, 1_000_000_000)
        stamp = dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
        return stamp + dt.timedelta(microseconds=nanos // 1000)

    def to_bytes(self) -> bytes:
        """The record as the device returns it: header then blob."""
        header = uapi.RECORD_HEADER.pack(
            uapi.MAGIC,
            uapi.SCHEMA_VERSION,
            len(self.blob),
            0,
            self.ts_ns,
            self.seq,
            self.uid,
            self.pid,
            self.session_id,
        )
        return header + self.blob


def parse_record(buf: bytes) -> Record:
    """Parse one ``<header><blob>`` record as one read(2) returns it.

    Raises RecordFormatError unless the magic, schema version and reserved
    field are the expected ones and exactly ``length`` bytes of blob follow.
    """
    size = uapi.RECORD_HEADER.size
    if len(buf) < size:
        raise RecordFormatError(
            f"record of {len(buf)} bytes is shorter than its {size}-byte header"
        )
    magic, schema, length, reserved, ts_ns, seq, uid, pid, session = uapi.RECORD_HEADER.unpack_from(
        buf
    )
    if magic != uapi.MAGIC:
        raise RecordFormatError(f"bad record magic {magic:#010x} (expected {uapi.MAGIC:#010x})")
    if schema != uapi.SCHEMA_VERSION:
        raise RecordFormatError(
            f"record schema version {schema} is not supported (expected {uapi.SCHEMA_VERSION})"
        )
    if reserved != 0:
        raise RecordFormatError(f"record reserved field is {reserved}, expected 0")
    if len(buf) != size + length:
        raise RecordFormatError(
            f"record header says {length} bytes of blob but {len(buf) - size} follow"
        )
    return Record(seq, ts_ns, uid, pid, session, bytes(buf[size:]))


def iter_records(data: bytes) -> list[Record]:
    """Split a concatenation of records (``memlog show --format raw``) into a list of them."""
    records: list[Record] = []
    offset = 0
    size = uapi.RECORD_HEADER.size
    while offset < len(data):
        if len(data) - offset < size:
            raise RecordFormatError(f"{len(data) - offset} trailing bytes are not a record")
        length = uapi.RECORD_HEADER.unpack_from(data, offset)[2]
        records.append(parse_record(data[offset : offset + size + length]))
        offset += size + length
    return records


@dataclass(frozen=True)
class Stats:
    """MEMLOG_IOC_STATS for a file's view (own uid, one uid, or all uids)."""

    total_writes: int
    total_evictions: int
    records_in_ring: int
    ring_bytes: int
    ring_capacity: int
    oldest_ts_ns: int
    newest_ts_ns: int

    @classmethod
    def from_bytes(cls, buf: bytes) -> Stats:
        """Parse the 48-byte ``struct memlog_stats`` MEMLOG_IOC_STATS fills."""
        if len(buf) != uapi.STATS.size:
            raise RecordFormatError(f"stats of {len(buf)} bytes, expected {uapi.STATS.size}")
        return cls(*uapi.STATS.unpack(buf))
