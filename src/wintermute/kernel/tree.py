"""The kernel tree the build works in: extracted, patched, with memlog's patch series applied.

A tarball source is extracted once per (tarball, patch series) into::

    cache/kernel-build/<sha256[:16]>-<patches hash>/
        linux/      the tree, patched; the build writes its objects here
        pristine/   the tree's files memlog's series changes, as extracted and patched
        .top        the tarball's top directory name
        .ready      written last: an entry without it is thrown away

and the tree then stays, so the next build is incremental.  A local tree
(``kernel.source.tree``) is the user's: it is never written to, nor anything
beside it.  It is copied (``rsync``) into
``cache/kernel-build/tree-<path hash>-<patches hash>/linux`` and built there;
each build copies what changed in the user's tree over the copy (never its
``.git``, ``debian/``, ``.config`` or the files the toolkit writes), then
applies the patch series to it.  Nothing is deleted from the copy, so
kbuild's outputs there stay (a ``.gitignore`` is no guide: Debian's
``linux-source`` ignores every top-level file) and a file deleted from the
user's tree stays in the copy until the entry is removed.

Every build then brings the tree up to date with this repository
(:func:`sync`), touching only what changed, so that make recompiles only what
was edited: memlog goes in as its upstream patch series
(:mod:`wintermute.upstream.series`), made against ``pristine/`` and applied
with ``git apply`` to those files; what that gives is written over the tree's
files where it differs (the driver in ``drivers/char/memlog/``, the UAPI
header, the wiring in ``drivers/char/Kconfig`` and ``Makefile``, its
documentation), and a file an earlier series created and this one does not is
removed.  So what the kernel ships is what the series would submit.  Then the
``localversion.*`` files that pin the release.  The module signing key is
placed by :func:`install_key` for the build and removed by :func:`remove_key`
after it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from wintermute import config
from wintermute.errors import InfraError, UserError
from wintermute.kernel.source import Tarball
from wintermute.paths import REPO, atomic_dir, cache_dir, log_dir, out_dir
from wintermute.run import run, say
from wintermute.upstream import series

LOG = "kernel-tree.log"
READY = ".ready"
PRISTINE = "pristine"  # series.BASE_FILES as extracted and patched: the series' base
APPLIED = "memlog-series.json"  # the files the last applied memlog series created
SERIES_DIR = "memlog-series"  # under out/build: the series the last build applied
TOP = ".top"  # the tarball's top directory, which makepkg extracts as is
TREE = "linux"
# The release suffix: X.Y.Z-<stamp>-wintermute[-flavour], from two files the way Arch
# pins its kernels (scripts/setlocalversion reads localversion* in name order).
LOCALVERSION_FILES = ("localversion.10-release", "localversion.20-wintermute")
# Not kbuild's default certs/signing_key.pem: kbuild regenerates that one
# (a random key) on a tree's first build.  wintermute.config names this one.
SIGNING_KEY = Path("certs") / "wintermute-signing-key.pem"
# kbuild's copy of the key's certificate, built into vmlinux
CERTIFICATE = Path("certs") / "signing_key.x509"


def patch_paths(names: Sequence[str], directory: Path) -> list[Path]:
    """kernel.yaml's patches as files: ``patches/NAME`` beside it (``directory``)."""
    paths = [directory / "patches" / name for name in names]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        where = directory / "patches"
        shown = where.relative_to(REPO) if where.is_relative_to(REPO) else where
        raise UserError(f"kernel.yaml kernel.patches names {', '.join(missing)}, not in {shown}/")
    return paths


def series_hash(patches: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for patch in patches:
        digest.update(patch.name.encode() + b"\0" + patch.read_bytes() + b"\0")
    return digest.hexdigest()[:8]


def build_root() -> Path:
    return cache_dir() / "kernel-build"


@contextlib.contextmanager
def locked() -> Iterator[None]:
    """One kernel build at a time per cache (they share the tree and ccache)."""
    path = build_root() / ".lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another kernel build to finish (lock: {path})")
            fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def apply_patches(tree: Path, patches: Sequence[Path]) -> None:
    """``patch -p1`` each of ``patches`` in order; UserError naming the first that fails."""
    for patch in patches:
        try:
            run(
                ["patch", "-p1", "--forward", "--batch", "-i", patch],
                cwd=tree,
                log=LOG,
                step=f"applying {patch.name}",
            )
        except InfraError:
            raise UserError(
                f"patch {patch.name} does not apply (kernel.yaml kernel.patches); "
                f"see {log_dir() / LOG}"
            ) from None


def extracted_tree(tarball: Tarball, patches: Sequence[Path]) -> Path:
    """The tree of ``tarball`` with ``patches`` applied, extracted once and kept."""
    entry = build_root() / f"{tarball.sha256[:16]}-{series_hash(patches)}"
    if (entry / READY).is_file() and (entry / PRISTINE).is_dir():
        return entry / TREE
    if entry.exists():
        shutil.rmtree(entry)  # an interrupted or failed extraction
    with atomic_dir(entry) as tmp:
        with tempfile.TemporaryDirectory(dir=tmp) as unpack:
            run(
                ["tar", "-xf", tarball.path, "-C", unpack],
                log=LOG,
                step=f"extracting {tarball.label}",
            )
            tops = list(Path(unpack).iterdir())
            if len(tops) != 1 or not (tops[0] / "Makefile").is_file():
                raise UserError(
                    f"{tarball.label}: not a kernel tarball (one top directory with a Makefile)"
                )
            (tmp / TOP).write_text(f"{tops[0].name}\n")
            tops[0].rename(tmp / TREE)
        apply_patches(tmp / TREE, patches)
        snapshot_base(tmp / TREE)
        (tmp / READY).write_text(f"{tarball.label}\n")
    for old in build_root().iterdir():
        if old.is_dir() and old != entry and not old.name.startswith("."):
            say(f"removing the older kernel build tree {old}")
            shutil.rmtree(old, ignore_errors=True)
    return entry / TREE


def tarball_top(tree: Path) -> str:
    """The top directory name of the tarball ``tree`` (from :func:`extracted_tree`) came from."""
    return (tree.parent / TOP).read_text().strip()


def snapshot_base(tree: Path) -> None:
    """The files memlog's series changes, copied from ``tree`` (not yet synced) beside it."""
    dest = tree.parent / PRISTINE
    if dest.exists():
        shutil.rmtree(dest)
    for path in series.BASE_FILES:
        if (tree / path).is_file():
            (dest / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(tree / path, dest / path)
    dest.mkdir(exist_ok=True)


# What the toolkit writes into a copied tree, which rsync must not copy over.
OWN_FILES = (
    "/drivers/char/memlog/",
    "/include/uapi/linux/memlog.h",
    f"/{series.ABI_PATH}",
    f"/{series.SELFTEST_DIR}/",
    *(f"/{name}" for name in LOCALVERSION_FILES),
    f"/{SIGNING_KEY}",
    "/debian/",
    "/.config",
)


def local_tree(tree: Path, patches: Sequence[Path]) -> Path:
    """A copy of the user's ``tree`` in the cache, up to date, with ``patches`` applied.

    Nothing is written in or beside ``tree``.
    """
    name = hashlib.sha256(str(tree.resolve()).encode()).hexdigest()[:16]
    entry = build_root() / f"tree-{name}-{series_hash(patches)}"
    copy = entry / TREE
    copy.mkdir(parents=True, exist_ok=True)
    run(
        ["rsync", "-a", "--exclude=/.git", *(f"--exclude={own}" for own in OWN_FILES),
         f"{tree}/", f"{copy}/"],
        log=LOG,
        step=f"copying {tree} into {entry} (your tree is not written to)",
    )  # fmt: skip
    for created in files_created_by(patches):  # else patch finds them already there
        (copy / created).unlink(missing_ok=True)
    apply_patches(copy, patches)
    snapshot_base(copy)
    (entry / READY).write_text(f"{tree}\n")
    return copy


def files_created_by(patches: Sequence[Path]) -> list[str]:
    """The paths (``-p1``) the patches create: a ``--- /dev/null`` then ``+++ b/PATH``."""
    created = []
    for patch in patches:
        lines = patch.read_text(errors="replace").splitlines()
        for before, after in itertools.pairwise(lines):
            if before.startswith("--- /dev/null") and after.startswith("+++ "):
                path = after[4:].split("\t")[0].strip()
                created.append(path.split("/", 1)[1] if "/" in path else path)
    return created


# --- bringing the tree up to date with this repository ------------------------


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` unless it already holds it (its mtime then stays)."""
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return True


def write_series(tree: Path, cfg: config.Config) -> list[Path]:
    """memlog's patch series against ``tree``'s pristine files, in out/build/memlog-series/.

    The cover letter is left out of what is returned: the patches, in order.
    """
    base = series.base_files(tree, pristine=tree.parent / PRISTINE)
    written = series.write_series(base, out_dir() / "build" / SERIES_DIR, cfg=cfg)
    return [p for p in written if not p.name.startswith("0000-")]


def apply_series(tree: Path, patches: Sequence[Path]) -> list[str]:
    """``patches`` applied to the pristine files, the result written over ``tree``'s
    files where it differs; what an earlier series created and these do not is
    removed.  Returns what changed."""
    pristine = tree.parent / PRISTINE
    base = series.base_files(tree, pristine=pristine)
    files = series.applied_files(base, list(patches))
    changed = []
    for path, text in files.items():
        if write_if_changed(tree / path, text.encode()):
            changed.append(path)
    record = tree.parent / APPLIED
    created = sorted(set(files) - set(base))
    before = json.loads(record.read_text()) if record.is_file() else []
    for stale in sorted(set(before) - set(created)):
        if (tree / stale).is_file():
            (tree / stale).unlink()
            changed.append(f"{stale} (removed)")
    tmp = record.with_name(f".{APPLIED}.tmp")
    tmp.write_text(json.dumps(created, indent=1) + "\n")
    os.replace(tmp, record)
    return changed


def sync(tree: Path, *, memlog_series: Sequence[Path],
         localversion: Sequence[str]) -> list[str]:  # fmt: skip
    """Bring ``tree`` up to date with this repository; return what changed.

    ``memlog_series``: the patches of :func:`write_series`; ``localversion``: the
    two localversion files' contents
    (:attr:`wintermute.kernel.names.KernelNames.localversion`).
    """
    changed = apply_series(tree, memlog_series)
    for name, text in zip(LOCALVERSION_FILES, localversion, strict=True):
        if write_if_changed(tree / name, f"{text}\n".encode()):
            changed.append(name)
    return changed


def copy_private(src: Path, dest: Path) -> None:
    """``src`` copied to ``dest``, which is created 0600: never readable by others, even briefly.

    ``dest`` keeps ``src``'s modification time: kbuild remakes the certificate
    built into vmlinux (and relinks it) only when the key file is newer.
    """
    dest.unlink(missing_ok=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(src.read_bytes())
    mtime = src.stat().st_mtime_ns
    os.utime(dest, ns=(mtime, mtime))


def install_key(tree: Path, key: Path | str) -> None:
    """The module signing key where the config names it, created private (0600).

    A PKCS#11 URI (a ``str``) stays in its token: the config names it instead.
    """
    if not isinstance(key, Path):
        return
    dest = tree / SIGNING_KEY
    copy_private(key, dest)
    # The key keeps its time, so an unchanged key leaves vmlinux alone; another key
    # (even an older file) must be newer than the certificate kbuild made before.
    built = tree / CERTIFICATE
    if built.is_file() and built.read_bytes() != certificate_der(dest):
        os.utime(dest)


def certificate_der(key: Path) -> bytes:
    """The certificate in a PEM key file, as kbuild's extract-cert writes it (DER)."""
    done = subprocess.run(
        ["openssl", "x509", "-in", key, "-outform", "DER"], capture_output=True, check=False
    )
    if done.returncode != 0:
        raise UserError(f"{key}: no certificate in the signing key file (openssl x509 failed)")
    return done.stdout


def remove_key(tree: Path) -> None:
    """The signing key out of the tree, once the modules are signed."""
    (tree / SIGNING_KEY).unlink(missing_ok=True)
