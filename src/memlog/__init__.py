# SPDX-License-Identifier: MIT OR Apache-2.0
"""memlog: keep an agent's compacted-away context in the kernel's /dev/memlog rings."""

from memlog.device import Device
from memlog.errors import (
    DeviceMissingError,
    MemlogError,
    NotPermittedError,
    PermissionDeniedError,
    RecordFormatError,
    RecordTooLargeError,
)
from memlog.records import Record, Stats, iter_records, parse_record

__version__ = "0.2.0"

__all__ = [
    "Device",
    "DeviceMissingError",
    "MemlogError",
    "NotPermittedError",
    "PermissionDeniedError",
    "Record",
    "RecordFormatError",
    "RecordTooLargeError",
    "Stats",
    "__version__",
    "iter_records",
    "parse_record",
]
