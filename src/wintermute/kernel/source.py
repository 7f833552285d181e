"""The kernel source kernel.yaml names, fetched and checked, as a tarball or a local tree.

Three kinds (``kernel.source``):

- ``debian``: Debian's ``linux-source-X.Y`` package of one suite, through the
  private APT configuration of :mod:`wintermute.kernel_trees` (the machine's
  own APT sources are never touched).  The package (its URL in Debian's
  archive, what a PKGBUILD downloads) and the tarball it carries are kept in
  ``cache/kernel-sources/debian/<package>_<version>@<suite>/``.
- ``tarball``: a path or an http(s) URL, with its sha256.  A download is kept
  as ``cache/kernel-sources/sha256/<sha256>/<name>``.  A checksum mismatch
  stops before anything is extracted.
- ``tree``: a local kernel tree, copied into the cache and built there (never written).

Every cache entry is written into a temporary directory beside it and renamed
into place once complete (:func:`wintermute.paths.atomic_dir`): an interrupted
download or unpacking leaves nothing that looks complete.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from wintermute import kernel_trees
from wintermute.config import KernelSource
from wintermute.errors import InfraError, UserError
from wintermute.paths import atomic_dir, cache_dir
from wintermute.run import capture, run, say

LOG = "kernel-source.log"
CHUNK = 1 << 20


@dataclass(frozen=True)
class DebianPackage:
    """Debian's ``linux-source-X.Y`` .deb the tarball came out of, as its archive serves it."""

    path: Path
    sha256: str
    url: str  # its place in Debian's archive (pool/main/l/linux/...)
    member: str  # the tarball inside the package's data.tar: ./usr/src/linux-source-7.2.tar.xz


@dataclass(frozen=True)
class Tarball:
    """A kernel source tarball whose sha256 has been checked."""

    path: Path
    sha256: str
    label: str  # what it is, for messages: "linux-source-7.2 7.2.13-1 (sid)"
    url: str | None = None  # where anyone can download it (a PKGBUILD's source)
    deb: DebianPackage | None = None  # the package it came out of, if Debian's


def sources_dir() -> Path:
    return cache_dir() / "kernel-sources"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _entry_tarball(entry: Path) -> Path | None:
    found = [p for p in entry.iterdir() if ".tar" in p.name] if entry.is_dir() else []
    return found[0] if len(found) == 1 else None


# --- Debian's linux-source-X.Y ---------------------------------------------------

DEB_META = "package.json"


def debian_version(package: str, suite: str) -> str:
    """The version of ``package`` that ``suite`` offers; UserError if it offers none."""
    kernel_trees.refresh_index(suite)
    version = kernel_trees.policy_candidate(suite, package)
    if version:
        return version
    raise UserError(
        f"{suite} has no package {package} (kernel.yaml kernel.source.debian); "
        f"see {kernel_trees.MIRROR}/pool/main/l/ for the linux-source-X.Y packages it has"
    )


def archive_url(package: str, version: str, suite: str) -> str:
    """Where Debian's archive serves ``package`` ``version`` (https, as a PKGBUILD wants it)."""
    printed = capture(
        ["apt-get", *kernel_trees.apt_options(suite), "--print-uris", "download",
         f"{package}={version}"]
    )  # fmt: skip
    urls = [line.split()[0].strip("'") for line in printed.splitlines() if line.startswith("'")]
    if len(urls) != 1:
        raise InfraError(f"apt-get --print-uris download {package}={version} printed {urls}")
    url = urls[0]
    if url.startswith("http://deb.debian.org/"):
        url = "https://" + url.removeprefix("http://")
    return url


def _download_deb(package: str, version: str, suite: str, into: Path, why: str) -> Path:
    """``apt-get download`` of ``package`` ``version`` from ``suite`` into ``into``; its path."""
    run(
        ["apt-get", *kernel_trees.apt_options(suite), "download", f"{package}={version}"],
        cwd=into,
        log=LOG,
        step=f"downloading {package} {version} {why}",
    )
    [deb] = into.glob("*.deb")
    return deb


def _fetch_debian(package: str, version: str, suite: str, entry: Path) -> None:
    url = archive_url(package, version, suite)
    with atomic_dir(entry) as tmp, tempfile.TemporaryDirectory(dir=tmp.parent) as unpack:
        deb = _download_deb(package, version, suite, Path(unpack), "(about 150 MB)")
        run(["dpkg-deb", "-x", deb, unpack], log=LOG)
        tarballs = list(Path(unpack, "usr", "src").glob(f"{package}.tar.*"))
        if len(tarballs) != 1:
            raise InfraError(f"{deb.name} holds no single /usr/src/{package}.tar.* tarball")
        shutil.move(tarballs[0], tmp / tarballs[0].name)
        shutil.move(deb, tmp / deb.name)
        meta = {
            "deb": deb.name,
            "url": url,
            "sha256": sha256_of(tmp / deb.name),
            "member": f"./usr/src/{tarballs[0].name}",
        }
        (tmp / DEB_META).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")


def _entry_deb(entry: Path) -> DebianPackage | None:
    try:
        meta = json.loads((entry / DEB_META).read_text())
        found = DebianPackage(entry / meta["deb"], meta["sha256"], meta["url"], meta["member"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # none, or unreadable: fetched again
    return found if found.path.is_file() else None


def debian_tarball(package: str, suite: str) -> Tarball:
    """The tarball inside ``package`` (the version ``suite`` offers), downloaded once."""
    version = debian_version(package, suite)
    entry = sources_dir() / "debian" / f"{package}_{version}@{suite}"
    tarball, deb = _entry_tarball(entry), _entry_deb(entry)
    if tarball is None or deb is None:  # none yet, or from before the package was kept
        _fetch_debian(package, version, suite, entry)
        tarball, deb = _entry_tarball(entry), _entry_deb(entry)
        if tarball is None or deb is None:
            raise InfraError(f"{entry} holds no single tarball and its package after download")
    return Tarball(tarball, sha256_of(tarball), f"{package} {version} ({suite})", deb=deb)


# --- the configuration of Debian's own kernel (config base "debian") --------------

# Debian's generic x86_64 flavour; its metapackage names the image of the day
DEBIAN_FLAVOUR = "amd64"


def _shown_package(package: str, version: str, suite: str) -> str:
    """``apt-cache show package=version`` of ``suite``; "" if it has no such package."""
    try:
        return capture(
            ["apt-cache", *kernel_trees.apt_options(suite), "show", f"{package}={version}"]
        )
    except InfraError:
        return ""  # apt-cache: no such package or version


def debian_image(source_package: str, suite: str) -> tuple[str, str]:
    """The ``linux-image-<abi>-amd64`` package ``suite`` builds from the same version as
    ``source_package`` (linux-source-X.Y): its name and version; UserError if none."""
    version = debian_version(source_package, suite)
    meta = f"linux-image-{DEBIAN_FLAVOUR}"
    shown = _shown_package(meta, version, suite)
    for line in shown.splitlines():
        if line.startswith("Depends:"):
            for dep in line.removeprefix("Depends:").split(","):
                name, _, pinned = dep.strip().partition(" ")
                if name.startswith("linux-image-") and f"(= {version})" in pinned:
                    return name, version
    raise UserError(
        f"{suite} has no {meta} {version}, the kernel Debian built from {source_package} "
        f"{version}: config base 'debian' needs it (kernel.yaml kernel.config.base); use "
        "defconfig, or a suite whose kernel matches its linux-source"
    )


def debian_config(source_package: str, suite: str) -> Path:
    """The configuration of Debian's own amd64 kernel of ``source_package``'s version.

    Debian's kernels since 7.x keep it in ``linux-base-<abi>``
    (``/usr/lib/modules/<abi>/config``, a package of 0.5 MB), older ones in
    the image package (``/boot/config-<abi>``).  The package is downloaded
    once; only the file is kept, in
    ``cache/kernel-sources/debian-config/<image>_<version>@<suite>/config``,
    with the package's name, URL and sha256 in ``package.json``.
    """
    image, version = debian_image(source_package, suite)
    abi = image.removeprefix("linux-image-")
    entry = sources_dir() / "debian-config" / f"{image}_{version}@{suite}"
    config = entry / "config"
    if config.is_file():
        return config
    places = [(f"linux-base-{abi}", f"./usr/lib/modules/{abi}/config"),
              (image, f"./boot/config-{abi}")]  # fmt: skip
    for package, member in places:
        if _shown_package(package, version, suite) and _fetch_member(
            package, version, suite, member, entry
        ):
            return config
    raise InfraError(
        f"neither {' nor '.join(f'{p} ({m})' for p, m in places)} {version} in {suite} "
        "holds the kernel's configuration"
    )


def _fetch_member(package: str, version: str, suite: str, member: str, entry: Path) -> bool:
    """``member`` of ``package`` into ``entry/config``, if the package has it."""
    url = archive_url(package, version, suite)
    with tempfile.TemporaryDirectory(dir=entry.parent.parent) as unpack:
        deb = _download_deb(
            package, version, suite, Path(unpack), "for Debian's kernel configuration"
        )
        listing = capture(["dpkg-deb", "-c", deb]).splitlines()
        if not any(line.split()[5:] == [member] for line in listing):
            return False
        run(["dpkg-deb", "-x", deb, Path(unpack) / "x"], log=LOG)
        with atomic_dir(entry) as tmp:
            shutil.copyfile(Path(unpack) / "x" / member, tmp / "config")
            meta = {"package": package, "version": version, "url": url,
                    "sha256": sha256_of(deb), "member": member}  # fmt: skip
            (tmp / DEB_META).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return True


# --- a tarball and its sha256 ----------------------------------------------------


def _mismatch(where: str, expected: str, actual: str) -> UserError:
    return UserError(
        f"{where}: sha256 {actual} does not match kernel.yaml's {expected} "
        "(kernel.source.tarball.sha256); nothing was extracted"
    )


def _download(url: str, expected: str, entry: Path) -> None:
    name = url.rstrip("/").rsplit("/", 1)[-1] or "linux.tar"
    say(f"downloading {url}")
    with atomic_dir(entry) as tmp:
        digest = hashlib.sha256()
        try:
            with urllib.request.urlopen(url, timeout=60) as response, (tmp / name).open("wb") as fh:
                while chunk := response.read(CHUNK):
                    digest.update(chunk)
                    fh.write(chunk)
        except (urllib.error.URLError, OSError) as exc:
            raise InfraError(f"downloading {url} failed: {exc}") from exc
        if digest.hexdigest() != expected:
            raise _mismatch(url, expected, digest.hexdigest())


def checked_tarball(location: str, expected: str) -> Tarball:
    """The tarball at ``location`` (a path or URL), if its sha256 is ``expected``."""
    if "://" in location:
        if not location.startswith(("http://", "https://")):
            raise UserError(f"{location}: only http(s) URLs or paths can be downloaded")
        entry = sources_dir() / "sha256" / expected
        tarball = _entry_tarball(entry)
        if tarball is None:
            _download(location, expected, entry)
            tarball = _entry_tarball(entry)
            assert tarball is not None
        return Tarball(tarball, expected, location, url=location)
    path = Path(location)
    if not path.is_file():
        raise UserError(f"{path}: no such file (kernel.yaml kernel.source.tarball.location)")
    actual = sha256_of(path)
    if actual != expected:
        raise _mismatch(str(path), expected, actual)
    return Tarball(path, actual, str(path))


# --- which one -------------------------------------------------------------------


def resolve(source: KernelSource) -> Tarball | Path:
    """kernel.yaml's source as a checked :class:`Tarball`, or a local tree's directory."""
    if source.tree is not None:
        if not (source.tree / "Makefile").is_file() or not (source.tree / "Kconfig").is_file():
            raise UserError(
                f"{source.tree} is not a kernel tree (no Makefile and Kconfig at its top); "
                "kernel.yaml kernel.source.tree"
            )
        return source.tree
    if source.tarball is not None:
        assert source.sha256 is not None
        return checked_tarball(source.tarball, source.sha256)
    assert source.debian_package is not None and source.suite is not None
    return debian_tarball(source.debian_package, source.suite)
