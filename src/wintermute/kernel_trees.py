"""Debian's kernel source trees the driver must build on, fetched, prepared and cached.

Each series comes from Debian's ``linux-source-X.Y`` package of one suite,
fetched through a private APT configuration under the cache (the machine's
own APT sources are never touched).  A prepared tree is extracted, configured
(``defconfig`` plus ``CONFIG_MEMLOG=m``), wired for memlog in-tree
(``drivers/char/Kconfig``, ``drivers/char/Makefile``) and ``modules_prepare``d,
then cached under ``kernel-trees/<series>-<version>-<recipe>``.  The tree is
prepared where it stays (kbuild records absolute paths, so a renamed tree
would rebuild its tools on first use); a ``.prepared`` marker written last
makes the entry valid, and an entry without it is thrown away and redone.

The driver's own files are not in the cached tree: ``drivers/char/memlog`` and
``include/uapi/linux/memlog.h`` are symbolic links into a scratch directory
(:func:`in_tree_scratch`) that each in-tree build refills, so builds never
change the cached tree's files.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

from wintermute.errors import InfraError, UserError
from wintermute.paths import atomic_file, cache_dir
from wintermute.run import capture, run

# series -> the Debian suite whose linux-source-<series> package provides it
SERIES: dict[str, str] = {"6.1": "bookworm", "6.12": "trixie", "7.2": "sid"}
MIRROR = "http://deb.debian.org/debian"
INDEX_MAX_AGE = 24 * 3600
# Bump when prepare() changes in a way its inputs do not show.
RECIPE = "3"
KCONFIG_LINE = 'source "drivers/char/memlog/Kconfig"'
MAKEFILE_LINE = "obj-$(CONFIG_MEMLOG)\t\t+= memlog/"


def _check_series(series: str) -> str:
    if series not in SERIES:
        raise UserError(f"unknown kernel series {series!r}: choose one of {', '.join(SERIES)}")
    return SERIES[series]


def apt_dir(suite: str) -> Path:
    return cache_dir() / "apt" / suite


def apt_options(suite: str) -> list[str]:
    """apt-get/apt-cache options for a private configuration reading only ``suite``."""
    base = apt_dir(suite)
    return [
        "-o", f"Dir::Etc::SourceList={base / 'sources.list'}",
        "-o", "Dir::Etc::SourceParts=/dev/null",
        "-o", f"Dir::State::Lists={base / 'lists'}",
        "-o", f"Dir::Cache={base / 'cache'}",
        "-o", "APT::Get::List-Cleanup=0",
    ]  # fmt: skip


def sources_line(suite: str) -> str:
    return f"deb {MIRROR} {suite} main\n"


def refresh_index(suite: str, *, force: bool = False) -> None:
    """apt-get update for the private configuration, at most once a day."""
    base = apt_dir(suite)
    (base / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (base / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    (base / "sources.list").write_text(sources_line(suite))
    stamp = base / "updated"
    if not force and stamp.exists() and time.time() - stamp.stat().st_mtime < INDEX_MAX_AGE:
        return
    run(
        ["apt-get", *apt_options(suite), "update"],
        log=f"apt-{suite}.log",
        step=f"apt-get update ({suite})",
    )
    stamp.touch()


def candidate_version(series: str) -> str:
    suite = _check_series(series)
    refresh_index(suite)
    package = f"linux-source-{series}"
    for line in capture(["apt-cache", *apt_options(suite), "policy", package]).splitlines():
        key, _, value = line.strip().partition(":")
        if key == "Candidate" and value.strip() not in ("", "(none)"):
            return value.strip()
    raise InfraError(f"{suite} offers no {package}; see out/logs/apt-{suite}.log")


def recipe_hash() -> str:
    """What prepare() does, as a short hash (part of the cache key)."""
    text = f"{RECIPE}\n{KCONFIG_LINE}\n{MAKEFILE_LINE}\n"
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def in_tree_scratch(series: str) -> Path:
    """Where a tree's drivers/char/memlog link points: refilled by each in-tree build."""
    return cache_dir() / "in-tree-scratch" / series


def _fetch_source(series: str, version: str, dest: Path) -> Path:
    """Download linux-source-<series>=<version> and extract its tree into ``dest``."""
    suite = SERIES[series]
    package = f"linux-source-{series}"
    with tempfile.TemporaryDirectory(prefix="wintermute-deb-") as tmp:
        run(
            ["apt-get", *apt_options(suite), "download", f"{package}={version}"],
            cwd=tmp,
            log=f"tree-{series}.log",
            step=f"downloading {package} {version} (about 150 MB)",
        )
        [deb] = Path(tmp).glob("*.deb")
        run(["dpkg-deb", "-x", deb, tmp], log=f"tree-{series}.log")
        tarballs = list(Path(tmp, "usr", "src").glob(f"linux-source-{series}.tar.*"))
        if len(tarballs) != 1:
            raise InfraError(f"{deb.name} holds no single linux-source tarball")
        run(
            ["tar", "-xf", tarballs[0], "-C", dest],
            log=f"tree-{series}.log",
            step=f"extracting the {series} tree",
        )
    [tree] = [d for d in dest.iterdir() if d.is_dir()]
    return tree


def _wire_in_tree(tree: Path, series: str) -> None:
    """Hook memlog into drivers/char and point its files at the scratch directory."""
    kconfig = tree / "drivers" / "char" / "Kconfig"
    text = kconfig.read_text()
    head, sep, tail = text.rpartition("endmenu")
    if not sep:
        raise InfraError(f"{kconfig} has no endmenu to insert memlog's Kconfig before")
    kconfig.write_text(f"{head}{KCONFIG_LINE}\n\n{sep}{tail}")
    makefile = tree / "drivers" / "char" / "Makefile"
    makefile.write_text(makefile.read_text() + MAKEFILE_LINE + "\n")
    scratch = in_tree_scratch(series)
    (tree / "drivers" / "char" / "memlog").symlink_to(scratch / "driver")
    (tree / "include" / "uapi" / "linux" / "memlog.h").symlink_to(
        scratch / "driver" / "include" / "uapi" / "linux" / "memlog.h"
    )


def _prepare(tree: Path, series: str) -> None:
    from wintermute.module_build import fill_scratch

    fill_scratch(series)  # Kconfig must be readable for the configuration steps
    _wire_in_tree(tree, series)
    log = f"tree-{series}.log"
    jobs = f"-j{os.cpu_count() or 1}"
    run(["make", "-C", tree, "defconfig"], log=log, step=f"configuring the {series} tree")
    run([tree / "scripts" / "config", "--file", tree / ".config", "--module", "MEMLOG"], log=log)
    run(["make", "-C", tree, "olddefconfig"], log=log)
    if "CONFIG_MEMLOG=m" not in (tree / ".config").read_text():
        raise InfraError(f"CONFIG_MEMLOG=m did not stick in the {series} tree; see out/logs/{log}")
    run(
        ["make", "-C", tree, jobs, "modules_prepare"],
        log=log,
        step=f"make modules_prepare ({series})",
    )
    # One in-tree build now, so that later ones find every prepared part up to
    # date and compile only memlog, never writing to the cached tree again.
    run(["make", "-C", tree, jobs, "W=1", "KBUILD_MODPOST_WARN=1", "drivers/char/memlog/"], log=log)


def prepared_tree(series: str) -> Path:
    """The cached, prepared tree of ``series``, fetched and prepared first if needed."""
    version = candidate_version(series)
    entry = cache_dir() / "kernel-trees" / f"{series}-{version}-{recipe_hash()}"
    done = entry / ".prepared"
    if not done.exists():
        if entry.exists():
            shutil.rmtree(entry)  # an interrupted earlier attempt
        entry.mkdir(parents=True)
        try:
            tree = _fetch_source(series, version, entry)
            _prepare(tree, series)
        except BaseException:
            shutil.rmtree(entry, ignore_errors=True)
            raise
        with atomic_file(done) as tmp:
            tmp.write_text(f"{tree.name}\n")
        for old in entry.parent.glob(f"{series}-*"):
            if old != entry and not old.name.startswith("."):
                shutil.rmtree(old, ignore_errors=True)
    return entry / done.read_text().strip()
