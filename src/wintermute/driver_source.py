"""The driver's source laid out as out-of-tree builds and DKMS take it.

``DIR/{Kbuild,Kconfig,Makefile,*.c,*.h}`` plus ``DIR/include/uapi/linux/memlog.h``
and ``DIR/memlog_version.h``; the driver's Kbuild adds ``-I$(src)/include/uapi``
when built out of tree.

The version is written once, in kernel.yaml (``memlog.version``): the staged
``memlog_version.h`` (:func:`version_header`) gives it to the driver's
``MODULE_VERSION`` and load line, and the Debian packaging installs the same
header (``debian.render``).  The repository's driver directory has none.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from wintermute import config
from wintermute.paths import DRIVER_DIR, UAPI_HEADER

VERSION_HEADER = "memlog_version.h"

# What belongs to the driver source; build artefacts (*.o, *.ko, .*.cmd,
# *.mod.c, modules.order, ...) never do.
SOURCE_PATTERNS = ("Kbuild", "Kconfig", "Makefile", "*.c", "*.h")


def driver_files(driver_dir: Path = DRIVER_DIR) -> list[Path]:
    """The driver's source files, sorted by name."""
    files = {p for pattern in SOURCE_PATTERNS for p in driver_dir.glob(pattern)}
    return sorted((p for p in files if _is_source(p)), key=lambda p: p.name)


def _is_source(path: Path) -> bool:
    name = path.name
    return path.is_file() and not name.startswith(".") and not name.endswith(".mod.c")


def version_header(version: str) -> str:
    """memlog_version.h for ``version``."""
    return (
        "/* SPDX-License-Identifier: GPL-2.0-only */\n"
        "/* kernel.yaml's memlog.version, written by the build; not in the repository */\n"
        f'#define MEMLOG_DRIVER_VERSION\t"{version}"\n'
    )


def stage_driver_source(
    dest: Path,
    *,
    version: str | None = None,
    driver_dir: Path = DRIVER_DIR,
    uapi_header: Path = UAPI_HEADER,
) -> Path:
    """Copy the driver source and the UAPI header into ``dest``, add memlog_version.h.

    ``version`` defaults to kernel.yaml's.  Files already in ``dest`` are
    left alone (DKMS packaging adds dkms.conf); builds stage into a fresh
    directory.  Returns ``dest``.
    """
    if version is None:
        version = config.load().memlog.version
    dest.mkdir(parents=True, exist_ok=True)
    (dest / VERSION_HEADER).write_text(version_header(version))
    for src in driver_files(driver_dir):
        shutil.copyfile(src, dest / src.name)
    header = dest / "include" / "uapi" / "linux" / uapi_header.name
    header.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(uapi_header, header)
    return dest
