"""Kernel releases as DKMS matches them: a bound on the series, as a bash regex."""

from __future__ import annotations

import re

from wintermute.errors import UserError


def releases_from(series: str) -> str:
    r"""A bash regex (``[[ $release =~ RE ]]``) matching kernel releases of ``series`` or newer.

    For dkms.conf's ``BUILD_EXCLUSIVE_KERNEL``: Debian 12's DKMS 3.0.10 does
    not know ``BUILD_EXCLUSIVE_KERNEL_MIN`` (it ignores it), but it does
    honour this one.  "6.1" gives
    ``^(6\.([2-9]|1|[1-9][0-9]{1,})|([8-9]|7|[1-9][0-9]{1,}))\.``.
    """
    match = re.fullmatch(r"(\d+)\.(\d+)", series)
    if not match:
        raise UserError(f"not a kernel series (MAJOR.MINOR): {series!r}")
    major, minor = int(match[1]), int(match[2])
    return f"^({major}\\.{_at_least(minor)}|{_at_least(major + 1)})\\."


def _at_least(n: int) -> str:
    """A regex for the decimal numbers >= n (no leading zeros)."""
    digits = str(n)
    parts = []
    # the same number of digits: a prefix of n, then a larger digit, then anything
    for i, digit in enumerate(digits):
        if digit != "9":
            rest = len(digits) - i - 1
            parts.append(f"{digits[:i]}[{int(digit) + 1}-9]" + "[0-9]" * rest)
    parts.append(digits)
    # more digits
    parts.append(f"[1-9][0-9]{{{len(digits)},}}")
    return "(" + "|".join(parts) + ")"
