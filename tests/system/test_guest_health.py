"""The guest's kernel stayed healthy through every check and scenario (runs last)."""

from __future__ import annotations

from typing import Any

from ci.vm import crash_line


def test_the_guest_kernel_never_complained(guest: Any) -> None:
    """No BUG, Oops, panic or WARNING on the serial console, on any of the boots."""
    assert crash_line(guest.vm.console_log) is None, guest.vm.console_log
