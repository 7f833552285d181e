"""Where things live: the source tree, build outputs, caches and logs."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DRIVER_DIR = REPO / "drivers" / "char" / "memlog"
UAPI_HEADER = REPO / "include" / "uapi" / "linux" / "memlog.h"
CI_DIR = REPO / "ci"


def out_dir() -> Path:
    """Build outputs and logs (``out/`` unless ``WINTERMUTE_OUT`` says otherwise)."""
    path = Path(os.environ.get("WINTERMUTE_OUT", REPO / "out"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_dir() -> Path:
    path = out_dir() / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    """Caches kept between runs: kernel trees, root filesystem images, downloads.

    ``WINTERMUTE_CACHE``, else ``$XDG_CACHE_HOME/wintermute``, else
    ``~/.cache/wintermute``.  Every entry is keyed by its inputs and written
    atomically (see :func:`atomic_dir`).
    """
    env = os.environ.get("WINTERMUTE_CACHE")
    if env:
        path = Path(env)
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        path = base / "wintermute"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a temporary directory that becomes ``final`` only if the block succeeds.

    The temporary directory sits beside ``final`` (same file system), so the
    last step is one ``rename``; a failed or interrupted run leaves no
    half-written ``final`` behind.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_file(final: Path) -> Iterator[Path]:
    """Yield a temporary path that replaces ``final`` only if the block succeeds."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        tmp.replace(final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
