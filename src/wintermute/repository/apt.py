"""The signed APT repository: reprepro, the archive keyring package, deb822 sources files.

:func:`publish` puts .deb files into ``DEST/apt/`` for every suite kernel.yaml's
``repository.suites`` names, with ``InRelease`` and ``Release.gpg`` signed by
the archive key (:mod:`wintermute.repository.keys`).  reprepro keeps one
version of each package per suite, so publishing a newer build is the
upgrade users get.  Beside ``dists/`` and ``pool/`` it writes what a user needs
to add the repository in two steps:

* ``<name>-archive-keyring.deb``: the key as a package (its own version is the
  key's creation date, so the same key gives the same bytes), installing
  ``/usr/share/keyrings/<name>-archive-keyring.pgp``;
* ``<suite>.sources``: a deb822 sources file with ``Signed-By`` that key.

reprepro's own database (``DEST/reprepro/``) stays beside ``apt/``: serve
``DEST/apt`` (and ``DEST/arch``), not ``DEST``.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wintermute.config import Config
from wintermute.errors import InfraError, UserError
from wintermute.packaging.debian import LINTIAN
from wintermute.packaging.render import context, environment, render_group
from wintermute.repository.keys import ArchiveKey
from wintermute.reproducible import rfc2822
from wintermute.run import capture, run

LOG = "repository-apt.log"


@dataclass(frozen=True)
class Published:
    root: Path  # DEST/apt: what is served at URL/apt
    keyring_deb: Path  # DEST/apt/<name>-archive-keyring.deb
    sources: dict[str, Path]  # suite -> DEST/apt/<suite>.sources
    packages: dict[str, list[str]]  # suite -> "name version" lines, as reprepro lists them


def keyring_name(cfg: Config) -> str:
    return f"{cfg.repository.name}-archive-keyring"


def apt_url(cfg: Config, url: str | None = None) -> str:
    return f"{url or cfg.repository.url}/apt"


def _key_created(key: ArchiveKey) -> int:
    out = capture(["gpg", "--homedir", str(key.home), "--with-colons", "--list-keys",
                   key.fingerprint])  # fmt: skip
    for line in out.splitlines():
        fields = line.split(":")
        if fields[0] == "pub":
            return int(fields[5])
    raise InfraError(f"gpg lists no public key {key.fingerprint} in {key.home}")


def _context(cfg: Config, key: ArchiveKey) -> dict[str, Any]:
    created = _key_created(key)
    ctx = context(cfg)
    ctx.update(
        fingerprint=key.fingerprint,
        keyring_package=keyring_name(cfg),
        keyring_file=f"{keyring_name(cfg)}.pgp",
        # the key's creation date: a new key sorts above the old one's package
        keyring_version=time.strftime("%Y.%m.%d", time.gmtime(created)),
        key_created=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(created)),
        changelog_date=rfc2822(created),
        copyright_year=time.gmtime(created).tm_year,
        source_date_epoch=created,
    )
    return ctx


def build_keyring_package(cfg: Config, key: ArchiveKey, dest: Path) -> Path:
    """``<name>-archive-keyring_<date>_all.deb`` holding the public key, into ``dest``."""
    ctx = _context(cfg, key)
    with tempfile.TemporaryDirectory(prefix="keyring.") as tmp:
        tree = Path(tmp) / f"{ctx['keyring_package']}-{ctx['keyring_version']}"
        render_group(environment(), ctx, "keyring", tree)
        key.export_public(tree / ctx["keyring_file"])
        run(
            ["dpkg-buildpackage", "-b", "-us", "-uc"],
            cwd=tree,
            log=LOG,
            env={"SOURCE_DATE_EPOCH": str(ctx["source_date_epoch"])},
            step=f"building {ctx['keyring_package']} {ctx['keyring_version']}",
        )
        [changes] = Path(tmp).glob("*.changes")
        run([*LINTIAN, changes], log=LOG)
        [deb] = Path(tmp).glob("*.deb")
        dest.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy2(deb, dest / deb.name))


def _reprepro(state: Path, outdir: Path, key: ArchiveKey, args: Sequence[str]) -> list[str]:
    return ["reprepro", "--basedir", str(state), "--outdir", str(outdir),
            "--gnupghome", str(key.home), "--silent", *args]  # fmt: skip


def publish(
    debs: Sequence[Path], dest: Path, key: ArchiveKey, cfg: Config, *, url: str | None = None
) -> Published:
    """Add ``debs`` and the keyring package to every suite of the repository in ``dest``.

    ``url`` (default kernel.yaml's ``repository.url``) is where ``dest`` is
    served; the sources files name ``<url>/apt``.
    """
    if not debs:
        raise UserError("no .deb to publish")
    for deb in debs:
        if not deb.is_file() or deb.suffix != ".deb":
            raise UserError(f"{deb} is not a .deb file")
    root, state = dest / "apt", dest / "reprepro"
    (state / "conf").mkdir(parents=True, exist_ok=True)
    ctx = _context(cfg, key)
    env = environment()
    (state / "conf" / "distributions").write_text(
        env.get_template("apt/distributions.j2").render(ctx)
    )
    keyring_deb = build_keyring_package(cfg, key, state / "keyring")
    all_debs = [keyring_deb, *debs]
    for suite in cfg.repository.suites:
        # includedeb takes a newer version in place of the older one, and
        # refuses the same version with other bytes (a rebuild that needed a
        # new release number)
        run(
            _reprepro(state, root, key, ["includedeb", suite, *map(str, all_debs)]),
            log=LOG,
            step=f"publishing {len(all_debs)} packages to {root} ({suite})",
        )
    # nothing left unreferenced in pool/ (the older versions)
    run(_reprepro(state, root, key, ["deleteunreferenced"]), log=LOG)
    key.export_public(root / ctx["keyring_file"])
    stable = root / f"{ctx['keyring_package']}.deb"
    shutil.copy2(keyring_deb, stable)
    sources = {}
    for suite in cfg.repository.suites:
        text = env.get_template("apt/repository.sources.j2").render(
            {**ctx, "suite": suite, "apt_url": apt_url(cfg, url)}
        )
        sources[suite] = root / f"{suite}.sources"
        sources[suite].write_text(text)
    list_format = ["--list-format", "${package} ${version}\\n", "list"]
    listed = {
        suite: capture(_reprepro(state, root, key, [*list_format, suite])).splitlines()
        for suite in cfg.repository.suites
    }
    return Published(root, stable, sources, listed)
