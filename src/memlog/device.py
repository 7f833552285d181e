# SPDX-License-Identifier: MIT OR Apache-2.0
"""``Device``: /dev/memlog as a Python object.

Every system call goes through a :class:`Syscalls` object so that tests can
substitute a fake one and run without the module (``Device(syscalls=...)``).
"""

from __future__ import annotations

import fcntl
import os
import select
import uuid
from collections.abc import Iterator
from types import TracebackType

from memlog import uapi
from memlog.errors import MemlogError, RecordTooLargeError, from_oserror
from memlog.records import Record, Stats, parse_record

_MODES = {"r": os.O_RDONLY, "w": os.O_WRONLY, "rw": os.O_RDWR}
READ_BUFFER = uapi.RECORD_HEADER.size + uapi.RECORD_MAX


class Syscalls:
    """The system calls Device makes (the os/fcntl/select ones); tests substitute a fake."""

    open = staticmethod(os.open)
    close = staticmethod(os.close)
    read = staticmethod(os.read)
    write = staticmethod(os.write)
    lseek = staticmethod(os.lseek)
    ioctl = staticmethod(fcntl.ioctl)

    @staticmethod
    def poll(fd: int, timeout_ms: int | None) -> bool:
        """True once ``fd`` is readable, False after ``timeout_ms`` (None: no limit)."""
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return any(events & select.POLLIN for _, events in poller.poll(timeout_ms))


def _u32(value: int, what: str) -> bytes:
    """``value`` as a __u32 ioctl argument."""
    if not 0 <= value <= 0xFFFFFFFF:
        raise MemlogError(f"{what} {value} is not a 32-bit unsigned number")
    return uapi.U32.pack(value)


def session_bytes(session: bytes | str | uuid.UUID) -> bytes:
    """A 16-byte session id from bytes, a UUID, or its text (with or without dashes)."""
    if isinstance(session, uuid.UUID):
        return session.bytes
    if isinstance(session, str):
        try:
            return uuid.UUID(session).bytes
        except ValueError:
            raise MemlogError(f"session id {session!r} is not a UUID or 32 hex digits") from None
    if len(session) != uapi.SESSION_ID_LEN:
        raise MemlogError(f"session id must be {uapi.SESSION_ID_LEN} bytes, not {len(session)}")
    return bytes(session)


class Device:
    """An open /dev/memlog: write records, read them back, ask the kernel about them.

    ``mode`` is ``"r"``, ``"w"`` or ``"rw"``; use it as a context manager::

        with Device(mode="rw") as dev:
            dev.write(b"context")
            for record in dev:
                ...

    Every failure raises a :class:`memlog.errors.MemlogError` whose message
    says what to do; ``syscalls`` replaces the real system calls (tests).
    """

    def __init__(
        self, path: str = uapi.DEVICE_PATH, mode: str = "r", *, syscalls: Syscalls | None = None
    ) -> None:
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {sorted(_MODES)}, not {mode!r}")
        self.path = path
        self._sys = syscalls or Syscalls()
        try:
            self._fd: int | None = self._sys.open(path, _MODES[mode] | os.O_CLOEXEC)
        except OSError as exc:
            raise from_oserror(exc, path, "open") from None

    # -- lifetime

    def fileno(self) -> int:
        """The open file descriptor (for select/poll); MemlogError once closed."""
        if self._fd is None:
            raise MemlogError(f"{self.path} is closed")
        return self._fd

    def reopen(self, mode: str = "r") -> Device:
        """Another open file of the same device (same path, same system calls)."""
        return Device(self.path, mode, syscalls=self._sys)

    def close(self) -> None:
        """Close the file descriptor; closing twice is harmless."""
        if self._fd is not None:
            self._sys.close(self._fd)
            self._fd = None

    def __enter__(self) -> Device:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- records

    def write(self, blob: bytes) -> None:
        """Store ``blob`` (1 byte to 64 KiB) as one record.

        An empty blob raises MemlogError and one over RECORD_MAX raises
        RecordTooLargeError, both without calling the kernel; the kernel's
        EMSGSIZE (larger than the ring) is RecordTooLargeError too.
        """
        if not blob:
            raise MemlogError("refusing to write an empty record")
        if len(blob) > uapi.RECORD_MAX:
            raise RecordTooLargeError(
                f"record of {len(blob)} bytes is larger than {uapi.RECORD_MAX} bytes (64 KiB)"
            )
        try:
            written = self._sys.write(self.fileno(), blob)
        except OSError as exc:
            raise from_oserror(exc, self.path, "write") from None
        if written != len(blob):
            raise MemlogError(f"short write: {written} of {len(blob)} bytes")

    def read(self) -> Record | None:
        """The next unread record of this file's view, or None when there is none."""
        try:
            buf = self._sys.read(self.fileno(), READ_BUFFER)
        except OSError as exc:
            raise from_oserror(exc, self.path, "read") from None
        return parse_record(buf) if buf else None

    def __iter__(self) -> Iterator[Record]:
        """Every unread record, oldest first, until none is left."""
        while (record := self.read()) is not None:
            yield record

    def rewind(self) -> None:
        """Start reading again from the oldest record (lseek(fd, 0, SEEK_SET))."""
        try:
            self._sys.lseek(self.fileno(), 0, os.SEEK_SET)
        except OSError as exc:
            raise from_oserror(exc, self.path, "rewind") from None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until a record is unread; False if ``timeout`` seconds passed first."""
        timeout_ms = None if timeout is None else int(timeout * 1000)
        return self._sys.poll(self.fileno(), timeout_ms)

    def follow(self, timeout: float | None = None) -> Iterator[Record]:
        """Yield the unread records, then each new one as it arrives.

        Stops after ``timeout`` seconds without a new record; with None
        (the default) it never stops on its own.
        """
        while True:
            yield from self
            if not self.wait(timeout):
                return

    # -- ioctls

    def _ioctl(self, request: int, arg: bytes | int, action: str) -> bytes:
        buf = bytearray(arg) if isinstance(arg, bytes) else arg
        try:
            if isinstance(buf, bytearray):
                self._sys.ioctl(self.fileno(), request, buf, True)
                return bytes(buf)
            self._sys.ioctl(self.fileno(), request, buf)
            return b""
        except OSError as exc:
            raise from_oserror(exc, self.path, action) from None

    def stats(self) -> Stats:
        """Statistics of this file's view (own uid unless filter_uid chose another)."""
        return Stats.from_bytes(self._ioctl(uapi.IOC_STATS, bytes(uapi.STATS.size), "stats"))

    def clear(self) -> None:
        """Drop every record of this file's view (needs CAP_SYS_ADMIN)."""
        self._ioctl(uapi.IOC_CLEAR, 0, "clear")

    def filter_uid(self, uid: int) -> None:
        """Read another uid's records, or every uid's with ``uapi.UID_ALL`` (admin); rewinds."""
        self._ioctl(uapi.IOC_FILTER_UID, _u32(uid, "uid"), "filter uid")

    def set_ring_size(self, size: int) -> None:
        """Resize every ring to ``size`` bytes (needs CAP_SYS_ADMIN); shrinking evicts.

        A size outside RING_SIZE_MIN..RING_SIZE_MAX raises MemlogError without
        calling the kernel.
        """
        if not uapi.RING_SIZE_MIN <= size <= uapi.RING_SIZE_MAX:
            raise MemlogError(
                f"ring size {size} is outside {uapi.RING_SIZE_MIN}..{uapi.RING_SIZE_MAX} bytes"
            )
        self._ioctl(uapi.IOC_SET_RING_SIZE, _u32(size, "ring size"), "set ring size")

    def set_session(self, session: bytes | str | uuid.UUID) -> None:
        """Tag this file's later writes with a session id (16 bytes, a UUID or its text)."""
        self._ioctl(uapi.IOC_SET_SESSION, session_bytes(session), "set session")

    def lost(self) -> int:
        """Records of this file's view evicted (or cleared) before it read them.

        Counted since the file was opened, rewound or given another view.
        """
        return uapi.U64.unpack(self._ioctl(uapi.IOC_GET_LOST, bytes(8), "count lost records"))[0]

    def version(self) -> int:
        """The kernel's record schema version."""
        return uapi.U32.unpack(self._ioctl(uapi.IOC_GET_VERSION, bytes(4), "version"))[0]
