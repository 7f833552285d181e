"""Debian's kernel source trees the driver must build on, fetched, prepared and cached.

Each series of the compile matrix, ``wintermute-kernel/series.yaml``
(:data:`MATRIX`), comes from Debian's ``linux-source-X.Y`` package of one
suite, fetched through a private APT configuration under
``cache/apt/<suite>/`` (the machine's own APT sources are never touched).  A
prepared tree is extracted, configured (``defconfig`` plus ``CONFIG_MEMLOG=m``),
wired for memlog in-tree (``drivers/char/Kconfig``, ``drivers/char/Makefile``)
and ``modules_prepare``d, and cached as::

    cache/kernel-trees/<series>-<package version>-<recipe hash>/
        linux-source-<series>/   the prepared tree; never written after preparation
        memlog/                  scratch: the driver source of the current in-tree build
        .prepared                written last: an entry without it is thrown away

The recipe hash (:func:`recipe_hash`) covers what preparation does, the
compiler and the driver's Kconfig (the configuration depends on all three).
The tree is prepared where it stays: kbuild's tools record absolute paths, so
a tree prepared elsewhere and renamed would relink objtool on first use, i.e.
write to the cache during a build.  A per-series lock serialises preparation
and in-tree builds between processes.

The tree's ``drivers/char/memlog`` and ``include/uapi/linux/memlog.h`` are
relative symbolic links into the entry's ``memlog/`` scratch directory, which
:func:`in_tree_driver` refills for each in-tree build.  Its Kconfig gets a
fixed, old timestamp, so kbuild never re-runs ``syncconfig`` (which would
rewrite the cached tree's configuration and rebuild its tools); a changed
Kconfig changes the recipe hash instead, so it gets a freshly prepared tree.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from wintermute import config
from wintermute.driver_source import driver_files, stage_driver_source
from wintermute.errors import InfraError, UserError
from wintermute.paths import DRIVER_DIR, atomic_file, cache_dir
from wintermute.run import capture, run, say
from wintermute.upstream.kernel_files import (
    DRIVER_PATH,
    KCONFIG,
    KCONFIG_LINE,
    MAKEFILE,
    MAKEFILE_LINE,
    UAPI_PATH,
    add_kconfig,
    add_makefile,
)

# The compile matrix, oldest first: series -> its row of wintermute-kernel/series.yaml.
MATRIX: dict[str, config.KernelSeries] = {entry.series: entry for entry in config.kernel_matrix()}
# series -> the Debian suite whose source package provides it.
SERIES: dict[str, str] = {name: entry.suite for name, entry in MATRIX.items()}
MIRROR = "http://deb.debian.org/debian"
INDEX_MAX_AGE = 24 * 3600
# Bump when _prepare() changes in a way the constants below do not show.
RECIPE = "5"
CONFIG_TARGETS = ("defconfig",)
CONFIG_MODULES = ("MEMLOG",)
# The scratch Kconfig's timestamp: older than any prepared tree's configuration.
KCONFIG_MTIME = 946684800  # 2000-01-01
SCRATCH = "memlog"
PRISTINE = "pristine"  # the tree's files as they were before preparation wired memlog in
MARKER = ".prepared"


def matrix_entry(series: str) -> config.KernelSeries:
    """The matrix's row of ``series``; a UserError listing the choices if it has none."""
    if series not in MATRIX:
        raise UserError(
            f"unknown kernel series {series!r}: choose one of {', '.join(MATRIX)}"
            " (wintermute-kernel/series.yaml)"
        )
    return MATRIX[series]


def package(series: str) -> str:
    """The Debian package carrying the source of ``series``, e.g. ``linux-source-6.1``."""
    return matrix_entry(series).source_package


def suite_of(series: str) -> str:
    return matrix_entry(series).suite


# --- the private APT configuration -----------------------------------------


def apt_dir(suite: str) -> Path:
    return cache_dir() / "apt" / suite


def sources_line(suite: str) -> str:
    return f"deb {MIRROR} {suite} main\n"


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


def write_apt_config(suite: str) -> Path:
    """Create ``cache/apt/<suite>/`` (sources.list, lists/, cache/); return it."""
    base = apt_dir(suite)
    (base / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (base / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    sources = base / "sources.list"
    if not sources.exists() or sources.read_text() != sources_line(suite):
        sources.write_text(sources_line(suite))
    return base


def index_is_fresh(suite: str, *, now: float | None = None) -> bool:
    """True if the index was updated within a day from the current sources.list."""
    stamp = apt_dir(suite) / "updated"
    try:
        age = (time.time() if now is None else now) - stamp.stat().st_mtime
        return age < INDEX_MAX_AGE and stamp.read_text() == sources_line(suite)
    except OSError:
        return False


def refresh_index(suite: str, *, force: bool = False) -> None:
    """``apt-get update`` of the private configuration, unless its index is fresh.

    One process at a time (apt-get refuses a second one on the same lists,
    it does not wait): the test suite's two lanes may both want it at once.
    """
    base = write_apt_config(suite)
    if not force and index_is_fresh(suite):
        return
    with (base / ".update.lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            if not force and index_is_fresh(suite):
                return  # refreshed by whoever held the lock
            run(
                ["apt-get", *apt_options(suite), "update"],
                log=f"apt-{suite}.log",
                step=f"apt-get update ({suite})",
            )
            (base / "updated").write_text(sources_line(suite))
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


CANDIDATES = "candidates.json"


def policy_candidate(suite: str, package: str) -> str | None:
    """The version of ``package`` the (already refreshed) index of ``suite`` offers.

    ``apt-cache policy`` reads the whole index (about 0.7 s); its answers are
    kept beside the index, for as long as the index is the same.
    """
    base = apt_dir(suite)
    stamp = base / "updated"
    updated = stamp.stat().st_mtime_ns if stamp.exists() else 0
    kept = base / CANDIDATES
    try:
        known = json.loads(kept.read_text())
        if known.get("updated") != updated:
            known = {}
    except (OSError, ValueError):
        known = {}
    versions = known.get("versions", {})
    if package in versions:
        return versions[package] or None
    policy = capture(["apt-cache", *apt_options(suite), "policy", package])
    found = ""
    for line in policy.splitlines():
        key, _, value = line.strip().partition(":")
        if key == "Candidate" and value.strip() not in ("", "(none)"):
            found = value.strip()
    with atomic_file(kept) as tmp:
        tmp.write_text(json.dumps({"updated": updated, "versions": {**versions, package: found}}))
    return found or None


def candidate_version(series: str) -> str:
    """The version of linux-source-<series> the (already refreshed) index offers."""
    suite = suite_of(series)
    version = policy_candidate(suite, package(series))
    if not version:
        raise InfraError(f"{suite} offers no {package(series)}; see out/logs/apt-{suite}.log")
    return version


# --- the cache key ----------------------------------------------------------


def compiler_id() -> str:
    """kbuild's compiler as its ``CC_VERSION_TEXT``, e.g. ``gcc (Debian 12.2.0-14) 12.2.0``."""
    return capture(["gcc", "--version"]).splitlines()[0].strip()


def recipe_hash(*, compiler: str, kconfig: str) -> str:
    """What a prepared tree depends on besides its version, as 8 hex digits."""
    parts = [RECIPE, *CONFIG_TARGETS, *CONFIG_MODULES, KCONFIG_LINE, MAKEFILE_LINE]
    parts += [compiler, kconfig]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:8]


def entry_name(series: str, version: str, recipe: str) -> str:
    return f"{series}-{version}-{recipe}"


def trees_dir() -> Path:
    return cache_dir() / "kernel-trees"


# --- locking, fetching, preparing ---------------------------------------------


@contextlib.contextmanager
def series_lock(series: str) -> Iterator[None]:
    """Hold the per-series lock (preparation and in-tree builds), across processes."""
    path = trees_dir() / f".{series}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class _DownloadFailed(InfraError):
    """apt-get download failed: the index may name a version the mirror dropped."""


def _fetch_source(series: str, version: str, dest: Path) -> Path:
    """Download linux-source-<series>=<version> and extract its tree into ``dest``."""
    log = f"tree-{series}.log"
    with tempfile.TemporaryDirectory(prefix="wintermute-deb-") as tmp:
        pkg = f"{package(series)}={version}"
        try:
            run(
                ["apt-get", *apt_options(suite_of(series)), "download", pkg],
                cwd=tmp,
                log=log,
                step=f"downloading {package(series)} {version} (about 150 MB)",
            )
        except InfraError as exc:
            raise _DownloadFailed(str(exc)) from exc
        [deb] = Path(tmp).glob("*.deb")
        run(["dpkg-deb", "-x", deb, tmp], log=log, step=f"unpacking {deb.name}")
        tarballs = list(Path(tmp, "usr", "src").glob(f"{package(series)}.tar.*"))
        if len(tarballs) != 1:
            raise InfraError(f"{deb.name} holds no single {package(series)} tarball")
        run(["tar", "-xf", tarballs[0], "-C", dest], log=log, step=f"extracting the {series} tree")
    [tree] = [d for d in dest.iterdir() if d.is_dir() and d.name != SCRATCH]
    return tree


def stage_scratch(entry: Path) -> Path:
    """Refill ``entry/memlog`` with the driver source; its Kconfig gets a fixed old mtime."""
    scratch = entry / SCRATCH
    if scratch.exists():
        shutil.rmtree(scratch)
    stage_driver_source(scratch)
    os.utime(scratch / "Kconfig", (KCONFIG_MTIME, KCONFIG_MTIME))
    return scratch


def wire_in_tree(tree: Path) -> None:
    """Hook memlog into drivers/char as the patch series does; link its files to the
    entry's scratch directory.  The files wired are first copied, as they were, into
    the entry's ``pristine/`` (the patch series is made against those)."""
    pristine = tree.parent / PRISTINE
    for path, edit in ((KCONFIG, add_kconfig), (MAKEFILE, add_makefile)):
        original = tree / path
        text = original.read_text()
        (pristine / path).parent.mkdir(parents=True, exist_ok=True)
        (pristine / path).write_text(text)
        original.write_text(edit(text))
    # tree/drivers/char/memlog -> ../../../memlog; tree/include/uapi/linux/memlog.h likewise
    (tree / "drivers" / "char" / "memlog").symlink_to(Path("../../..") / SCRATCH)
    (tree / "include" / "uapi" / "linux" / "memlog.h").symlink_to(
        Path("../../../..") / SCRATCH / "include" / "uapi" / "linux" / "memlog.h"
    )


def _prepare(tree: Path, series: str) -> None:
    stage_scratch(tree.parent)  # the configuration steps read memlog's Kconfig
    wire_in_tree(tree)
    log = f"tree-{series}.log"
    jobs = f"-j{os.cpu_count() or 1}"
    run(["make", "-C", tree, *CONFIG_TARGETS], log=log, step=f"configuring the {series} tree")
    for symbol in CONFIG_MODULES:
        run([tree / "scripts" / "config", "--file", tree / ".config", "--module", symbol], log=log)
    run(["make", "-C", tree, "olddefconfig"], log=log)
    if "CONFIG_MEMLOG=m" not in (tree / ".config").read_text().splitlines():
        raise InfraError(f"CONFIG_MEMLOG=m did not stick in the {series} tree; see out/logs/{log}")
    run(["make", "-C", tree, jobs, "modules_prepare"], log=log, step=f"modules_prepare ({series})")
    # One in-tree build now builds whatever else it needs (objtool on 7.x), so
    # later in-tree builds find the tree up to date and write only to memlog/.
    run(["make", "-C", tree, jobs, "W=1", "KBUILD_MODPOST_WARN=1", "drivers/char/memlog/"], log=log)


def _prepared(entry: Path) -> Path | None:
    marker = entry / MARKER
    return entry / marker.read_text().strip() if marker.is_file() else None


def _ensure_entry(series: str, version: str, recipe: str) -> Path:
    """The prepared tree of one cache entry, fetched and prepared if missing (lock held)."""
    entry = trees_dir() / entry_name(series, version, recipe)
    tree = _prepared(entry)
    if tree is not None:
        return tree
    if entry.exists():
        shutil.rmtree(entry)  # an interrupted earlier attempt
    entry.mkdir(parents=True)
    try:
        tree = _fetch_source(series, version, entry)
        _prepare(tree, series)
    except BaseException:
        shutil.rmtree(entry, ignore_errors=True)
        raise
    with atomic_file(entry / MARKER) as tmp:
        tmp.write_text(f"{tree.name}\n")
    for old in trees_dir().glob(f"{series}-*"):
        if old != entry:
            shutil.rmtree(old, ignore_errors=True)
    return tree


def cached_tree(series: str, recipe: str) -> Path | None:
    """A prepared tree of ``series`` for this recipe already in the cache, if any."""
    for entry in sorted(trees_dir().glob(f"{series}-*-{recipe}"), reverse=True):
        tree = _prepared(entry)
        if tree is not None:
            return tree
    return None


def current_recipe() -> str:
    return recipe_hash(compiler=compiler_id(), kconfig=(DRIVER_DIR / "Kconfig").read_text())


def _prepared_tree_locked(series: str) -> Path:
    suite = suite_of(series)
    recipe = current_recipe()
    cached = cached_tree(series, recipe)
    try:
        refresh_index(suite, force=cached is None)
        version = candidate_version(series)
    except InfraError as exc:
        if cached is None:
            raise
        say(f"W: {str(exc).splitlines()[0]}; using the cached {cached.parent.name}")
        return cached
    try:
        return _ensure_entry(series, version, recipe)
    except _DownloadFailed:
        say(f"{package(series)} {version} is gone from the mirror; refreshing the index")
        refresh_index(suite, force=True)
        return _ensure_entry(series, candidate_version(series), recipe)


def prepared_tree(series: str) -> Path:
    """The cached, prepared tree of ``series``, fetched and prepared first if needed.

    The index is refreshed when it is a day old or no tree of ``series`` is
    cached; if that fails (offline) a cached tree is used, with a warning.
    """
    suite_of(series)
    with series_lock(series):
        return _prepared_tree_locked(series)


def fill_scratch(scratch: Path, files: dict[str, str]) -> None:
    """``scratch`` holds the driver and UAPI header of ``files`` (kernel tree path -> text).

    Unchanged files keep their mtimes (make rebuilds what changed only); the
    driver's other source files (the out-of-tree Kbuild, the compat and version
    headers of :func:`stage_scratch`) go.
    """
    wanted = {}
    for path, text in files.items():
        if path.startswith(DRIVER_PATH + "/"):
            wanted[scratch / path.removeprefix(DRIVER_PATH + "/")] = text
        elif path == UAPI_PATH:
            wanted[scratch / "include" / "uapi" / "linux" / "memlog.h"] = text
    for stale in driver_files(scratch):
        if stale not in wanted:
            stale.unlink()
    for dest, text in wanted.items():
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not dest.is_file() or dest.read_text() != text:
            dest.write_text(text)
    os.utime(scratch / "Kconfig", (KCONFIG_MTIME, KCONFIG_MTIME))


@contextlib.contextmanager
def series_scratch(series: str) -> Iterator[tuple[Path, Path]]:
    """Yield ``(tree, scratch)``: the prepared tree of ``series`` and the scratch directory
    its ``drivers/char/memlog`` links to, for :func:`fill_scratch`; the series lock is held."""
    suite_of(series)
    with series_lock(series):
        tree = _prepared_tree_locked(series)
        yield tree, tree.parent / SCRATCH


@contextlib.contextmanager
def in_tree_driver(series: str) -> Iterator[tuple[Path, Path]]:
    """Yield ``(tree, driver dir)`` with the current driver source staged in the tree.

    ``tree/drivers/char/memlog`` is then the freshly staged source; the series
    lock is held until the block ends, so one in-tree build of it runs at a time.
    """
    suite_of(series)
    with series_lock(series):
        tree = _prepared_tree_locked(series)
        yield tree, stage_scratch(tree.parent)
