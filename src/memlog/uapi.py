# SPDX-License-Identifier: MIT OR Apache-2.0
"""include/uapi/linux/memlog.h mirrored in Python: constants, layouts, ioctl numbers.

tests/unit/test_uapi_layout.py checks every value here against the C compiler.
"""

from __future__ import annotations

import struct

DEVICE_PATH = "/dev/memlog"

MAGIC = 0x4D4C4F47  # 'MLOG'
SCHEMA_VERSION = 1
RECORD_MAX = 65536
SESSION_ID_LEN = 16

RING_SIZE_MIN = 64 << 10
RING_SIZE_MAX = 256 << 20
RING_SIZE_DEFAULT = 4 << 20

MAX_BYTES_MIN = 64 << 10
MAX_BYTES_DEFAULT = 64 << 20

UID_ALL = 0xFFFFFFFF

# struct memlog_record_header (56 bytes, naturally aligned, no padding):
# magic, schema_version, length, reserved, ts_ns, seq, uid, pid, session_id[16]
RECORD_HEADER = struct.Struct("<IIIIQQII16s")
# struct memlog_stats (48 bytes, naturally aligned, no padding):
# total_writes, total_evictions, records_in_ring, ring_bytes, ring_capacity,
# oldest_ts_ns, newest_ts_ns
STATS = struct.Struct("<QQQIIQQ")
# __u32 ioctl arguments (SET_RING_SIZE, FILTER_UID, GET_VERSION)
U32 = struct.Struct("<I")
# __u64 ioctl argument (GET_LOST)
U64 = struct.Struct("<Q")

# Linux's generic _IOC encoding (x86, arm, riscv...): nr 8 bits, type 8, size 14, dir 2.
_IOC_NRBITS = 8
_IOC_TYPEBITS = 8
_IOC_SIZEBITS = 14
_IOC_DIRBITS = 2
_IOC_NRSHIFT = 0
_IOC_TYPESHIFT = _IOC_NRSHIFT + _IOC_NRBITS
_IOC_SIZESHIFT = _IOC_TYPESHIFT + _IOC_TYPEBITS
_IOC_DIRSHIFT = _IOC_SIZESHIFT + _IOC_SIZEBITS
IOC_NONE = 0
IOC_WRITE = 1
IOC_READ = 2


def _check_bits(name: str, value: int, bits: int) -> None:
    if not 0 <= value < (1 << bits):
        raise ValueError(f"ioctl {name} {value} does not fit in {bits} bits")


def ioc(direction: int, type_: int, nr: int, size: int) -> int:
    """Linux's ``_IOC(dir, type, nr, size)``: an ioctl request number."""
    _check_bits("direction", direction, _IOC_DIRBITS)
    _check_bits("type", type_, _IOC_TYPEBITS)
    _check_bits("number", nr, _IOC_NRBITS)
    _check_bits("argument size", size, _IOC_SIZEBITS)
    return (
        (direction << _IOC_DIRSHIFT)
        | (type_ << _IOC_TYPESHIFT)
        | (nr << _IOC_NRSHIFT)
        | (size << _IOC_SIZESHIFT)
    )


def io(type_: int, nr: int) -> int:
    """``_IO(type, nr)``: an ioctl without an argument."""
    return ioc(IOC_NONE, type_, nr, 0)


def ior(type_: int, nr: int, size: int) -> int:
    """``_IOR(type, nr, T)`` with ``size == sizeof(T)``: the kernel fills the argument."""
    return ioc(IOC_READ, type_, nr, size)


def iow(type_: int, nr: int, size: int) -> int:
    """``_IOW(type, nr, T)`` with ``size == sizeof(T)``: the kernel reads the argument."""
    return ioc(IOC_WRITE, type_, nr, size)


IOC_TYPE = 0xC1
IOC_STATS = ior(IOC_TYPE, 1, STATS.size)
IOC_CLEAR = io(IOC_TYPE, 2)
IOC_SET_RING_SIZE = iow(IOC_TYPE, 3, U32.size)
IOC_FILTER_UID = iow(IOC_TYPE, 4, U32.size)
IOC_GET_VERSION = ior(IOC_TYPE, 5, U32.size)
IOC_SET_SESSION = iow(IOC_TYPE, 6, SESSION_ID_LEN)
IOC_GET_LOST = ior(IOC_TYPE, 7, U64.size)


def record_size(blob_length: int) -> int:
    """Bytes one record takes in a ring: the header and blob, rounded up to 8."""
    return (RECORD_HEADER.size + blob_length + 7) & ~7
