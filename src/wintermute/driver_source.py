"""The driver's source laid out as out-of-tree builds and DKMS take it.

``DIR/{Kbuild,Kconfig,Makefile,*.c,*.h}`` plus ``DIR/include/uapi/linux/memlog.h``;
the driver's Kbuild adds ``-I$(src)/include/uapi`` when built out of tree.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from wintermute.paths import DRIVER_DIR, UAPI_HEADER

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


def stage_driver_source(
    dest: Path, *, driver_dir: Path = DRIVER_DIR, uapi_header: Path = UAPI_HEADER
) -> Path:
    """Copy the driver source and the UAPI header into ``dest``; return ``dest``.

    Files already in ``dest`` are left alone (DKMS packaging adds dkms.conf);
    builds stage into a fresh directory.
    """
    dest.mkdir(parents=True, exist_ok=True)
    for src in driver_files(driver_dir):
        shutil.copyfile(src, dest / src.name)
    header = dest / "include" / "uapi" / "linux" / uapi_header.name
    header.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(uapi_header, header)
    return dest
