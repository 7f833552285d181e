"""The one timestamp every package build uses, so that builds are reproducible.

``SOURCE_DATE_EPOCH`` (https://reproducible-builds.org/specs/source-date-epoch/)
is, in order: the environment's ``SOURCE_DATE_EPOCH`` if set; else, in a git
checkout, the commit time of the last commit that touched what the packages
are made from; else (an unpacked release tarball, which has no ``.git``) the
date stored in the tree's :data:`DATE_FILE`, which ``invoke release`` writes
with what this function gives in the clone.  The same inputs therefore give
the same timestamp, and byte-identical packages, from a clone or its release.
:func:`tarball` packs files with it, the same bytes on any machine.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from email.utils import formatdate
from pathlib import Path

from wintermute.errors import InfraError, UserError
from wintermute.paths import REPO
from wintermute.run import capture, run

# What the packages are made from; a commit touching anything else does not
# change the timestamp.
PACKAGE_INPUTS = (
    "wintermute-kernel",
    "templates",
    "drivers/char/memlog",
    "include/uapi/linux/memlog.h",
    "src/memlog",
    "src/wintermute/packaging",
    "src/wintermute/reproducible.py",
    "pyproject.toml",
    "README.md",
)
# In a release tarball, at the top of the tree: the package inputs' date in the
# clone it was made from (a whole number of seconds and a newline).
DATE_FILE = "SOURCE_DATE_EPOCH"


def source_date_epoch(inputs: Sequence[str] = PACKAGE_INPUTS, root: Path | None = None) -> int:
    """``SOURCE_DATE_EPOCH``, else the time of the last commit touching ``inputs``.

    ``root`` (default: this repository) without ``.git`` is a release's tree:
    its :data:`DATE_FILE` holds the package inputs' date, used for any
    ``inputs``.  Git is never asked about a tree without ``.git``: it would
    answer for a checkout the tree was unpacked into.
    """
    root = root or REPO
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env:
        return _whole_seconds(env, f"SOURCE_DATE_EPOCH={env!r}")
    if (root / ".git").exists():  # a directory, or a file in a worktree or submodule
        return _commit_date(inputs, root)
    stored = root / DATE_FILE
    if stored.is_file():
        value = stored.read_text().strip()
        return _whole_seconds(value, f"{stored} holds {value!r}, which")
    raise UserError(
        f"no git and no {DATE_FILE} in {root}: set SOURCE_DATE_EPOCH or build from a release "
        "tarball"
    )


def _whole_seconds(value: str, what: str) -> int:
    if not value.isdigit():
        raise UserError(f"{what} is not a whole number of seconds")
    return int(value)


def _commit_date(inputs: Sequence[str], root: Path) -> int:
    try:
        out = capture(["git", "log", "-1", "--format=%ct", "--", *inputs], cwd=root).strip()
    except (InfraError, UserError) as exc:
        raise UserError("cannot date the package inputs from git; set SOURCE_DATE_EPOCH") from exc
    if not out:
        raise UserError("no commit touches the package inputs yet; set SOURCE_DATE_EPOCH")
    return int(out)


def rfc2822(epoch: int) -> str:
    """The timestamp as debian/changelog wants it (always UTC)."""
    return formatdate(epoch, usegmt=True).replace("GMT", "+0000")


def tarball(
    root: Path, members: Sequence[str], dest: Path, *, top: str, epoch: int, log: str
) -> Path:
    """Pack ``members`` (paths relative to ``root``) under ``top/`` into ``dest``, a .tar.xz.

    The same files give the same bytes whoever packs them, wherever: names
    sorted, every mtime ``epoch``, owner and group 0, modes 0644 or 0755
    (only the executable bit of each file is kept, not the umask or the
    checkout's modes), GNU format (no access or change times), and xz
    single-threaded (threaded xz splits the stream differently).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".tarball.", dir=dest.parent) as tmp:
        for member in members:
            target = Path(tmp) / top / member
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(root / member, target)  # the contents and the executable bit
        run(
            [
                "tar", "--format=gnu", "--sort=name", f"--mtime=@{epoch}", "--owner=0",
                "--group=0", "--numeric-owner", "--mode=u=rwX,go=rX",
                "-C", tmp, "-cJf", dest, top,
            ],
            log=log,
            env={"XZ_OPT": "-6 -T1"},
        )  # fmt: skip
    return dest
