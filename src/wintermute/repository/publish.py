"""``invoke repository``: publish what was built into the signed repositories.

Takes the packages the build tasks left in ``out/`` (``invoke deb`` →
``out/debian``, ``invoke arch`` → ``out/arch``, ``invoke build-kernel`` →
``out/kernel``), and publishes them, signed by the repository's archive key
(:mod:`wintermute.repository.keys`), into ``DEST`` (default
``out/repository``):

* ``DEST/apt``: the APT repository, every suite of kernel.yaml's
  ``repository.suites`` (:mod:`wintermute.repository.apt`);
* ``DEST/arch``: the pacman repository (:mod:`wintermute.repository.pacman`).

Serve ``DEST/apt`` and ``DEST/arch`` at kernel.yaml's ``repository.url``.
Publishing again adds newer versions in place of older ones: users upgrade.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from wintermute import config
from wintermute.errors import UserError
from wintermute.paths import out_dir
from wintermute.repository import apt, keys, pacman
from wintermute.run import say


@dataclass
class Result:
    dest: Path
    fingerprint: str
    key_origin: str
    debs: list[Path] = field(default_factory=list)
    arch_packages: list[Path] = field(default_factory=list)


def built_packages(out: Path) -> tuple[list[Path], list[Path]]:
    """The .deb and .pkg.tar.zst files the build tasks left in ``out`` (no debug symbols)."""
    debs = sorted(
        p
        for d in (out / "debian", out / "kernel")
        for p in (d.rglob("*.deb") if d.is_dir() else [])
        if "-dbgsym_" not in p.name
    )
    arch = sorted(
        p
        for d in (out / "arch", out / "kernel")
        for p in (d.rglob("*.pkg.tar.zst") if d.is_dir() else [])
        if "-debug-" not in p.name
    )
    return debs, arch


def publish(dest: Path | None = None, url: str | None = None) -> Result:
    """Publish ``out/``'s packages into ``dest``; ``url`` overrides kernel.yaml's."""
    cfg = config.load()
    out = out_dir()
    dest = dest or out / "repository"
    debs, arch_packages = built_packages(out)
    if not debs and not arch_packages:
        raise UserError(
            f"nothing to publish in {out}/debian, {out}/arch or {out}/kernel: "
            "run invoke deb, invoke arch or invoke build-kernel first"
        )
    base = url or cfg.repository.url
    with keys.archive_key(dest, configured=cfg.repository.signing_key) as key:
        say(f"signing with {key.fingerprint} ({key.origin})")
        if debs:
            apt.publish(debs, dest, key, cfg, url=base)
        if arch_packages:
            pacman.publish(
                arch_packages, dest / "arch", key, name=cfg.repository.name, url=f"{base}/arch"
            )
        return Result(dest, key.fingerprint, key.origin, debs, arch_packages)
