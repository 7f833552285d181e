"""The build stamp: the time of the newest input of a kernel build.

It names and versions the build (:mod:`wintermute.kernel.names`) and is its
``KBUILD_BUILD_TIMESTAMP``, so it must be newer whenever any input is newer,
and the same whenever the inputs are the same.  It is the newest of:

- the kernel source's own date: a tarball's first member's time (the top
  directory: Debian stamps it with the source package's date, so a new
  Debian revision of ``linux-source-X.Y`` is newer; kernel.org and
  ``git archive`` tarballs carry the commit's time), or the newest file of a
  local tree;
- the repository's inputs (kernel.yaml and what it names, the driver, the UAPI
  header, what else memlog's patch series is made of, the packaging templates
  and code): the commit time of the last
  commit touching them, or ``SOURCE_DATE_EPOCH`` when the environment sets
  it; a file edited since (or untracked, or outside the repository, or in a
  tree without git) counts with its modification time.

The **ABI stamp** is the same, without the inputs that cannot change the
kernel's module ABI: the driver's own C sources and the packaging (templates
and code).  It names the kernel release when kernel.yaml names a persistent
signing key (:mod:`wintermute.kernel.names`), and is the build's
``KBUILD_BUILD_TIMESTAMP``, so an edit of the driver alone leaves ``vmlinux``
as it was.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from wintermute.errors import InfraError, UserError
from wintermute.kernel.source import Tarball
from wintermute.paths import REPO
from wintermute.reproducible import PACKAGE_INPUTS
from wintermute.run import capture
from wintermute.upstream import series

# What a kernel build reads from the repository besides kernel.yaml's own files
# (memlog goes in as its patch series, made from series.INPUTS).
KERNEL_INPUTS = tuple(dict.fromkeys((*PACKAGE_INPUTS, "src/wintermute/kernel", *series.INPUTS)))
# Those of them that can change the module ABI: the kernel description, the UAPI
# header, the driver's build wiring and the build's own code (not the driver's C
# sources, not the packaging).
ABI_INPUTS = (
    "wintermute-kernel",
    "include/uapi/linux/memlog.h",
    "drivers/char/memlog/Kconfig",
    "drivers/char/memlog/Kbuild",
    "drivers/char/memlog/Makefile",
    "src/wintermute/kernel",
    "src/wintermute/upstream",
    "src/wintermute/reproducible.py",
)


def tarball_date(tarball: Tarball) -> int:
    """The time of the tarball's first member (its top directory)."""
    try:
        with tarfile.open(tarball.path, "r|*") as archive:
            first = archive.next()
    except (tarfile.TarError, OSError) as exc:
        raise UserError(f"{tarball.label}: not a readable tarball ({exc})") from None
    if first is None:
        raise UserError(f"{tarball.label}: an empty tarball")
    return int(first.mtime)


def _files(path: Path) -> Iterator[Path]:
    if path.is_file():
        yield path
        return
    for top, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in files:
            yield Path(top, name)


def newest_mtime(paths: Iterable[Path]) -> int:
    """The newest modification time of the files at or under ``paths`` (0 if none)."""
    newest = 0
    for path in paths:
        for file in _files(path):
            try:
                newest = max(newest, int(file.lstat().st_mtime))
            except FileNotFoundError:
                continue
    return newest


def repository_date(paths: Iterable[Path]) -> int:
    """The newest of ``paths`` (files or directories) as the module docstring says."""
    inside = [p for p in paths if p.resolve().is_relative_to(REPO)]
    outside = [p for p in paths if not p.resolve().is_relative_to(REPO)]
    relative = [str(p.resolve().relative_to(REPO)) for p in inside]
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env and not env.isdigit():
        raise UserError(f"SOURCE_DATE_EPOCH={env!r} is not a whole number of seconds")
    if not (REPO / ".git").exists():
        # a release tarball (perhaps unpacked inside another checkout, whose git
        # must not answer): every file by its modification time
        return max(int(env) if env else 0, newest_mtime(paths))
    try:
        committed = capture(["git", "log", "-1", "--format=%ct", "--", *relative], cwd=REPO)
        changed = capture(
            ["git", "status", "--porcelain", "--untracked-files=all", "--no-renames", "--",
             *relative],
            cwd=REPO,
        )  # fmt: skip
    except (InfraError, UserError, FileNotFoundError):
        # no git (a release tarball): every file by its modification time
        return max(int(env) if env else 0, newest_mtime(paths))
    base = int(env) if env else int(committed.strip() or 0)
    edited = [REPO / line[3:] for line in changed.splitlines() if len(line) > 3]
    return max(base, newest_mtime(edited), newest_mtime(outside))


def build_stamp(
    source: Tarball | Path, inputs: Iterable[Path], repository: Iterable[str] = KERNEL_INPUTS
) -> int:
    """The newest of the kernel source's date, ``repository``'s files and ``inputs``."""
    source_date = newest_mtime([source]) if isinstance(source, Path) else tarball_date(source)
    return max(source_date, repository_date([*(REPO / p for p in repository), *inputs]))


def abi_stamp(source: Tarball | Path, inputs: Iterable[Path]) -> int:
    """:func:`build_stamp` of the inputs that can change the module ABI (``ABI_INPUTS``)."""
    return build_stamp(source, inputs, ABI_INPUTS)
