"""Debian packages for the guest that the image does not have, fetched on the host.

The guest has no network: whatever a test installs there must be served from
a local repository.  :func:`fetch` resolves what installing some packages in
the guest would pull in, by asking apt with the guest's own dpkg status (kept
beside the image) and the suites named, through a private APT configuration
under ``cache/apt/<suites>/`` (the host's own APT sources and state are never
touched), and downloads exactly those ``.deb`` files.

The result is cached under ``cache/guest-debs/<key>/``, keyed by the image and
the request, and written atomically: an interrupted download is never taken
for a complete one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from ci.rootfs import Image, dpkg_status
from wintermute.errors import InfraError
from wintermute.paths import atomic_dir, cache_dir
from wintermute.run import capture, run

MIRROR = "http://deb.debian.org/debian"
LOG = "guest-debs.log"
# Bump when how the packages are chosen changes in a way the request does not show.
RECIPE = "2"


@dataclass(frozen=True)
class Request:
    """Packages to install in the guest, from these suites (the guest's own first)."""

    suites: tuple[str, ...]
    packages: tuple[
        str, ...
    ]  # apt-get install arguments, e.g. "linux-image-cloud-amd64/bookworm-backports"


def _apt_dir(suites: tuple[str, ...]) -> Path:
    return cache_dir() / "apt" / "+".join(suites)


def _apt_options(base: Path, status: Path) -> list[str]:
    return [
        "-o", f"Dir::Etc::SourceList={base / 'sources.list'}",
        "-o", "Dir::Etc::SourceParts=/dev/null",
        "-o", f"Dir::Etc::Preferences={base / 'preferences'}",
        "-o", "Dir::Etc::PreferencesParts=/dev/null",
        "-o", f"Dir::State={base / 'state'}",
        "-o", f"Dir::State::Lists={base / 'lists'}",
        "-o", f"Dir::State::status={status}",
        "-o", f"Dir::Cache={base / 'cache'}",
        "-o", "APT::Get::List-Cleanup=0",
        "-o", "APT::Install-Recommends=0",
        "-o", "Debug::NoLocking=1",
    ]  # fmt: skip


def _configure(suites: tuple[str, ...]) -> Path:
    base = _apt_dir(suites)
    for sub in ("lists/partial", "state", "cache/archives/partial"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    (base / "sources.list").write_text("".join(f"deb {MIRROR} {s} main\n" for s in suites))
    # Suites after the first only serve what is asked for from them by name
    # (pkg/suite): bookworm-backports' "ButAutomaticUpgrades" would otherwise
    # upgrade the guest's installed packages (its 6.1 kernel, for one) too.
    (base / "preferences").write_text(
        "".join(f"Package: *\nPin: release n={suite}\nPin-Priority: 90\n\n" for suite in suites[1:])
    )
    return base


def _index_signature(base: Path) -> str:
    """What the downloaded indexes say, so a changed archive changes the cache key."""
    h = hashlib.sha256()
    for path in sorted((base / "lists").glob("*_Release")) + sorted(
        (base / "lists").glob("*_InRelease")
    ):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def fetch(image: Image, request: Request) -> list[Path]:
    """The ``.deb`` files installing ``request`` in ``image``'s guest needs, downloaded."""
    base = _configure(request.suites)
    status = dpkg_status(image)
    if not status.exists():
        raise InfraError(f"the VM image has no {status.name} beside it: rebuild it (invoke image)")
    options = _apt_options(base, status)
    run(
        ["apt-get", *options, "update"],
        log=LOG,
        step=f"apt-get update ({', '.join(request.suites)})",
    )
    h = hashlib.sha256()
    h.update(json.dumps([RECIPE, image.key, request.suites, request.packages]).encode())
    h.update(_index_signature(base).encode())
    entry = cache_dir() / "guest-debs" / h.hexdigest()[:16]
    if not (entry / "debs.json").exists():
        with atomic_dir(entry) as tmp:
            _download(options, base, request, tmp)
    names = json.loads((entry / "debs.json").read_text())
    return [entry / name for name in names]


def _download(options: list[str], base: Path, request: Request, dest: Path) -> None:
    archives = base / "cache" / "archives"
    for old in archives.glob("*.deb"):
        old.unlink()
    # What apt would install on the guest, printed rather than done
    plan = capture(["apt-get", *options, "install", "--simulate", "-q", *request.packages])
    wanted = [line.split()[1] for line in plan.splitlines() if line.startswith("Inst ")]
    if not wanted:
        raise InfraError(
            f"apt plans to install nothing for {' '.join(request.packages)}; see out/logs/{LOG}"
        )
    run(
        ["apt-get", *options, "install", "--download-only", "-y", "-q", *request.packages],
        log=LOG,
        step=f"downloading {len(wanted)} packages for the guest ({', '.join(request.packages)})",
    )
    debs = sorted(archives.glob("*.deb"))
    got = {deb.name.split("_", 1)[0] for deb in debs}
    missing = sorted(set(wanted) - got)
    if missing:
        raise InfraError(f"apt did not download {', '.join(missing)}; see out/logs/{LOG}")
    for deb in debs:
        shutil.move(deb, dest / deb.name)
    (dest / "debs.json").write_text(json.dumps([deb.name for deb in debs], indent=1) + "\n")
