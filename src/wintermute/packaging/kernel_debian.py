"""Debian: linux-image-<release>, linux-headers-<release> and their metapackages.

Built by dpkg-buildpackage in the tree; every name and version comes from
:mod:`wintermute.kernel.names` (the context's ``names``).  ``render`` writes
``debian/`` into the configured kernel tree (the toolkit's own copy: never a
user's tree), from ``templates/kernel-debian/``; the maintainer scripts
``image.*`` and ``headers.*`` take their packages' names
(``linux-image-<release>.postinst`` ...).  The build then compiles the tree
with ``debian/rules build`` (``BUILD_COMMAND``), and ``build`` runs
``dpkg-buildpackage -b --no-pre-clean`` there (the tree's objects are kept,
and debhelper's build stamp skips the build step) and then lintian on what
it built, where an error fails the build (warnings are logged: a kernel's
packages have many that Debian's own kernels override too).

The headers package and its metapackage are rebuilt only when what they are
made from changed (:func:`headers_digest`: the rendered ``debian/``, the
configuration, ``Module.symvers``, the release's generated headers, the UAPI
header, the compiler).  Otherwise (the driver's C sources, say, with a
persistent signing key) the last build's, kept beside the tree, are reused
and dpkg-buildpackage runs with the build profile ``NOHEADERS_PROFILE``.

What the packages hold, and who does what:

* linux-image: ``/boot/vmlinuz-<release>``, ``System.map``, ``config`` and the
  modules, stripped then signed by ``modules_install``.  Its maintainer
  scripts are Debian's own kernels': depmod, linux-base's
  ``linux-update-symlinks`` and ``linux-check-removal``, the
  ``/etc/kernel/*.d`` hooks with ``run-parts --exit-on-error``
  (initramfs-tools makes the initramfs, the boot loader's hook its entry),
  and on purge what depmod made.
* linux-headers: the kernel's ``scripts/package/install-extmod-build`` output
  in ``/usr/src/linux-headers-<release>``, plus ``.config`` and the built
  ``scripts/sign-file`` (DKMS needs both), linked from
  ``/lib/modules/<release>/build``, its Makefile naming the compiler the
  kernel was built with (``gcc-12``), which it depends on; its postinst runs
  ``/etc/kernel/header_postinst.d`` (DKMS builds its modules for the kernel).
* linux-image-wintermute, linux-headers-wintermute (``-<flavour>``): the
  metapackages, depending on this build's packages at this version.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wintermute.errors import InfraError
from wintermute.packaging import render as rendering
from wintermute.paths import atomic_dir
from wintermute.reproducible import rfc2822
from wintermute.run import capture, run, say

GROUP = "kernel-debian"
LOG = "kernel-debian.log"
LINTIAN_LOG = "kernel-lintian.log"
# An error fails the build; warnings are shown in the log.
LINTIAN = ["lintian", "--fail-on", "error", "--tag-display-limit", "0"]
# templates/kernel-debian/debian/<prefix>.<script> -> debian/<package>.<script>,
# the package's name being this field of the context's names
SCRIPT_PREFIXES = {"image": "image", "headers": "headers"}
# The compile, debhelper's build step (dpkg-buildpackage then skips it)
BUILD_COMMAND = ["debian/rules", "build"]
# Leaves out the headers and their metapackage (templates' Build-Profiles)
NOHEADERS_PROFILE = "pkg.linux-wintermute.noheaders"
# Beside the tree: the last build's headers packages, and what they were made from
HEADERS_STORE = "debian-headers"
INPUTS = "inputs"
# Tree files the headers package is made from that can change while the release does not
HEADERS_TREE_INPUTS = (
    ".config",
    "Module.symvers",
    "include/config/kernel.release",
    "include/generated/autoconf.h",
    "include/generated/utsrelease.h",
    "include/generated/compile.h",
    "include/uapi/linux/memlog.h",
)


@dataclass(frozen=True)
class Rendered:
    debian: Path
    digest: str  # of the rendered files but the changelog (which names the version)


def render(ctx: dict[str, Any], tree: Path) -> Rendered:
    """Write ``tree/debian/`` (replacing any earlier one)."""
    debian = tree / "debian"
    if debian.exists():
        shutil.rmtree(debian)
    ctx = {
        **ctx,
        "changelog_date": rfc2822(ctx["source_date_epoch"]),
        "noheaders_profile": NOHEADERS_PROFILE,
    }
    rendering.render_group(rendering.environment(), ctx, GROUP, tree)
    for path in sorted(debian.iterdir()):
        prefix, dot, script = path.name.partition(".")
        if dot and prefix in SCRIPT_PREFIXES:
            path.rename(debian / f"{ctx['names'][SCRIPT_PREFIXES[prefix]]}.{script}")
    digest = hashlib.sha256()
    for path in sorted(p for p in debian.rglob("*") if p.is_file()):
        if path.name != "changelog":
            digest.update(f"{path.relative_to(debian)}\0".encode() + path.read_bytes())
    return Rendered(debian, digest.hexdigest())


def headers_digest(tree: Path, rendered: Rendered) -> str:
    """What the headers package is made from, once the tree is compiled."""
    digest = hashlib.sha256(f"debian\0{rendered.digest}\0".encode())
    for rel in HEADERS_TREE_INPUTS:
        path = tree / rel
        data = path.read_bytes() if path.is_file() else b"(none)"
        digest.update(f"{rel}\0{len(data)}\0".encode() + data)
    digest.update(capture(["gcc", "--version"]).encode())
    return digest.hexdigest()


def _reusable_headers(tree: Path, names: dict[str, str], digest: str) -> list[Path]:
    """The last build's headers packages, if made from the same inputs (else [])."""
    store = tree.parent / HEADERS_STORE
    inputs = store / INPUTS
    if not inputs.is_file() or inputs.read_text().strip() != digest:
        return []
    debs = sorted(store.glob("*.deb"))
    wanted = {names["headers"], names["headers_meta"]}
    if {p.name.split("_")[0] for p in debs} != wanted:
        return []
    return debs


def _keep_headers(tree: Path, debs: list[Path], digest: str) -> None:
    """This build's headers packages beside the tree, for the next build to reuse."""
    with atomic_dir(tree.parent / HEADERS_STORE) as tmp:
        for deb in debs:
            shutil.copy2(deb, tmp / deb.name)
        (tmp / INPUTS).write_text(f"{digest}\n")


def _outputs(tree: Path) -> list[Path]:
    """What dpkg-buildpackage leaves beside the tree."""
    return sorted(
        p for p in tree.parent.iterdir()
        if p.is_file() and p.suffix in (".deb", ".buildinfo", ".changes")
    )  # fmt: skip


def build(
    ctx: dict[str, Any], tree: Path, env: dict[str, str], dest: Path, rendered: Rendered
) -> list[Path]:
    """The four packages from the ``rendered``, compiled ``tree`` into ``dest``.

    The headers and their metapackage are the last build's when their inputs
    did not change; lintian checks what was built and must find no error.
    """
    for old in _outputs(tree):
        old.unlink()
    names = ctx["names"]
    digest = headers_digest(tree, rendered)
    reused = _reusable_headers(tree, names, digest)
    if reused:
        step = (f"dpkg-buildpackage: {names['image']} and its metapackage (the headers "
                "unchanged: the last build's)")  # fmt: skip
        profile = [f"--build-profiles={NOHEADERS_PROFILE}"]
    else:
        step = f"dpkg-buildpackage: {names['image']}, {names['headers']} and their metapackages"
        profile = []
    run(
        ["dpkg-buildpackage", "-b", "--no-pre-clean", "-us", "-uc", *profile],
        cwd=tree,
        env={**env, "SOURCE_DATE_EPOCH": str(ctx["source_date_epoch"])},
        log=LOG,
        step=step,
        heartbeat=60,
    )
    outputs = _outputs(tree)
    debs = [p for p in outputs if p.suffix == ".deb"]
    changes = [p for p in outputs if p.suffix == ".changes"]
    if len(debs) != 4 - len(reused) or len(changes) != 1:
        raise InfraError(f"dpkg-buildpackage made {[p.name for p in outputs]}; see {LOG}")
    run([*LINTIAN, changes[0]], log=LINTIAN_LOG, step="lintian (errors fail)")
    if not reused:
        headers = {names["headers"], names["headers_meta"]}
        _keep_headers(tree, [p for p in debs if p.name.split("_")[0] in headers], digest)
    dest.mkdir(parents=True, exist_ok=True)
    results = []
    for path in outputs:
        shutil.move(path, dest / path.name)
        results.append(dest / path.name)
    for path in reused:
        shutil.copy2(path, dest / path.name)
        results.append(dest / path.name)
    built = ", ".join(p.name for p in debs)
    say(f"built {built}" + (f"; reused {', '.join(p.name for p in reused)}" if reused else ""))
    return results
