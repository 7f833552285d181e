"""Debian: linux-image-<release>, linux-headers-<release> and their metapackages.

Built by dpkg-buildpackage in the tree; every name and version comes from
:mod:`wintermute.kernel.names` (the context's ``names``).  ``render`` writes
``debian/`` into the configured and compiled kernel tree (the toolkit's own
copy: never a user's tree), from ``templates/kernel-debian/``; the maintainer
scripts ``image.*`` and ``headers.*`` take their packages' names
(``linux-image-<release>.postinst`` ...).  ``build`` runs
``dpkg-buildpackage -b --no-pre-clean`` there (the tree's objects are kept,
so its make finds the kernel already built) and then lintian, where an error
fails the build (warnings are logged: a kernel's packages have many that
Debian's own kernels override too).

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

import shutil
from pathlib import Path
from typing import Any

from wintermute.errors import InfraError
from wintermute.packaging import render as rendering
from wintermute.reproducible import rfc2822
from wintermute.run import run, say

GROUP = "kernel-debian"
LOG = "kernel-debian.log"
LINTIAN_LOG = "kernel-lintian.log"
# An error fails the build; warnings are shown in the log.
LINTIAN = ["lintian", "--fail-on", "error", "--tag-display-limit", "0"]
# templates/kernel-debian/debian/<prefix>.<script> -> debian/<package>.<script>,
# the package's name being this field of the context's names
SCRIPT_PREFIXES = {"image": "image", "headers": "headers"}


def render(ctx: dict[str, Any], tree: Path) -> Path:
    """Write ``tree/debian/`` (replacing any earlier one); return it."""
    debian = tree / "debian"
    if debian.exists():
        shutil.rmtree(debian)
    ctx = {**ctx, "changelog_date": rfc2822(ctx["source_date_epoch"])}
    rendering.render_group(rendering.environment(), ctx, GROUP, tree)
    for path in sorted(debian.iterdir()):
        prefix, dot, script = path.name.partition(".")
        if dot and prefix in SCRIPT_PREFIXES:
            path.rename(debian / f"{ctx['names'][SCRIPT_PREFIXES[prefix]]}.{script}")
    return debian


def _outputs(tree: Path) -> list[Path]:
    """What dpkg-buildpackage leaves beside the tree."""
    return sorted(
        p for p in tree.parent.iterdir()
        if p.is_file() and p.suffix in (".deb", ".buildinfo", ".changes")
    )  # fmt: skip


def build(ctx: dict[str, Any], tree: Path, env: dict[str, str], dest: Path) -> list[Path]:
    """Build the four packages from ``tree`` into ``dest``; lintian must find no error."""
    for old in _outputs(tree):
        old.unlink()
    render(ctx, tree)
    names = ctx["names"]
    run(
        ["dpkg-buildpackage", "-b", "--no-pre-clean", "-us", "-uc"],
        cwd=tree,
        env=env,
        log=LOG,
        step=f"dpkg-buildpackage: {names['image']}, {names['headers']} and their metapackages",
        heartbeat=60,
    )
    outputs = _outputs(tree)
    debs = [p for p in outputs if p.suffix == ".deb"]
    changes = [p for p in outputs if p.suffix == ".changes"]
    if len(debs) != 4 or len(changes) != 1:
        raise InfraError(f"dpkg-buildpackage made {[p.name for p in outputs]}; see {LOG}")
    run([*LINTIAN, changes[0]], log=LINTIAN_LOG, step="lintian (errors fail)")
    dest.mkdir(parents=True, exist_ok=True)
    results = []
    for path in outputs:
        shutil.move(path, dest / path.name)
        results.append(dest / path.name)
    say(f"built {', '.join(p.name for p in results if p.suffix == '.deb')}")
    return results
