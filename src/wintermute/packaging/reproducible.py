"""The one timestamp every package build uses, so that builds are reproducible.

``SOURCE_DATE_EPOCH`` (https://reproducible-builds.org/specs/source-date-epoch/)
is, in order: the environment's ``SOURCE_DATE_EPOCH`` if set; else the commit
time of the last commit that touched what the packages are made from.  The
same inputs therefore give the same timestamp, and byte-identical packages.
"""

from __future__ import annotations

import os
import subprocess
from email.utils import formatdate

from wintermute.errors import UserError
from wintermute.paths import REPO

# What the packages are made from; a commit touching anything else does not
# change the timestamp.
PACKAGE_INPUTS = (
    "wintermute-kernel",
    "templates",
    "drivers/char/memlog",
    "include/uapi/linux/memlog.h",
    "src/memlog",
    "src/wintermute/packaging",
)


def source_date_epoch() -> int:
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env:
        if not env.isdigit():
            raise UserError(f"SOURCE_DATE_EPOCH={env!r} is not a whole number of seconds")
        return int(env)
    try:
        out = subprocess.run(
            ["git", "log", "-1", "--format=%ct", "--", *PACKAGE_INPUTS],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        raise UserError("cannot date the package inputs from git; set SOURCE_DATE_EPOCH") from exc
    if not out:
        raise UserError("no commit touches the package inputs yet; set SOURCE_DATE_EPOCH")
    return int(out)


def rfc2822(epoch: int) -> str:
    """The timestamp as debian/changelog wants it (always UTC)."""
    return formatdate(epoch, usegmt=True).replace("GMT", "+0000")
