"""The memlog Python library as the Arch package ships it (Debian's pybuild builds its own)."""

from __future__ import annotations

import shutil
from pathlib import Path

from wintermute.paths import REPO

LIBRARY = REPO / "src" / "memlog"
DOCS = (REPO / "docs" / "record-format.md",)
"""Documentation memlog-tools installs in /usr/share/doc/<package>/ (Debian: <package>.docs)."""


def library_modules() -> list[Path]:
    """The memlog Python package's modules, relative to it (subpackages included), sorted."""
    return sorted(src.relative_to(LIBRARY) for src in LIBRARY.rglob("*.py"))


def copy_library(dest: Path) -> None:
    """The memlog Python package's modules (no caches), in their subdirectories."""
    for module in library_modules():
        (dest / module).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(LIBRARY / module, dest / module)
        (dest / module).chmod(0o644)
