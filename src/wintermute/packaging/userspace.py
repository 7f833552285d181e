"""The memlog Python library as the Arch package ships it (Debian's pybuild builds its own)."""

from __future__ import annotations

import shutil
from pathlib import Path

from wintermute.paths import REPO

LIBRARY = REPO / "src" / "memlog"


def copy_library(dest: Path) -> None:
    """The memlog Python package's modules (no caches)."""
    dest.mkdir(parents=True, exist_ok=True)
    for src in sorted(LIBRARY.glob("*.py")):
        shutil.copyfile(src, dest / src.name)
        (dest / src.name).chmod(0o644)
