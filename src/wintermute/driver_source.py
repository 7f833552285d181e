"""The driver's source laid out as out-of-tree builds and DKMS take it.

``DIR/{Kbuild,Kconfig,Makefile,*.c,*.h}`` plus ``DIR/include/uapi/linux/memlog.h``;
the driver's Kbuild adds ``-I$(src)/include/uapi`` when built out of tree.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from wintermute.paths import DRIVER_DIR, UAPI_HEADER

# What belongs to the driver source; build artefacts never do.
SOURCE_PATTERNS = ("Kbuild", "Kconfig", "Makefile", "*.c", "*.h")


def driver_files() -> list[Path]:
    files = {p for pattern in SOURCE_PATTERNS for p in DRIVER_DIR.glob(pattern)}
    return sorted(p for p in files if p.is_file() and not p.name.endswith(".mod.c"))


def stage_driver_source(dest: Path) -> Path:
    """Copy the driver source and the UAPI header into ``dest``; return ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for src in driver_files():
        shutil.copyfile(src, dest / src.name)
    header = dest / "include" / "uapi" / "linux" / UAPI_HEADER.name
    header.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(UAPI_HEADER, header)
    return dest
