"""The signed pacman repository: package signatures, repo-add, the keyring and pacman.conf lines.

:func:`publish` puts ``.pkg.tar.zst`` files into ``DEST/<name>/os/<arch>/``,
Arch's own layout, so that ``Server = <url>/$repo/os/$arch`` finds them.  Each
package gets a detached binary signature ``<package>.sig`` by the archive key
(:mod:`wintermute.repository.keys`), and ``repo-add --sign`` signs the
databases ``<name>.db.tar.zst`` and ``<name>.files.tar.zst``.  Beside
``os/`` go what a user needs to trust it: ``<name>-keyring.pgp`` (for
``pacman-key --add``, then ``--lsign-key`` the fingerprint) and
``pacman.conf.snippet``, the ``[<name>]`` section with ``SigLevel = Required``.

repo-add checks neither the packages' signatures (its ``--verify`` checks the
existing database's) nor that signing the database worked (a failed gpg is
only a warning, and the unsigned database replaces the signed one), so it runs
on copies, in a temporary directory inside ``os/<arch>``, and both are checked
there, with gpg, against the key, before anything is moved in.

Publishing a newer build into the same ``DEST`` is the upgrade: repo-add puts
the new entry in place of the older one, and once the new databases are in
place the files they no longer name (the older package and its signature) are
deleted, as Arch's dbscripts do (``repo-add --remove`` would delete them
before the new database exists).  The same version with other bytes is
refused (a rebuild needs a new release), as reprepro refuses it, so no file a
database names changes under it.  A failure at any step leaves the previous
repository usable: every move is a rename within one directory, packages and
their signatures before the databases that name them.
"""

from __future__ import annotations

import filecmp
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from wintermute.errors import InfraError, UserError
from wintermute.paths import atomic_file
from wintermute.repository.keys import ArchiveKey
from wintermute.run import capture, run

LOG = "repository-pacman.log"
PKGEXT = ".pkg.tar.zst"
TAREXT = ".tar.zst"  # of the databases: <name>.db.tar.zst, linked as <name>.db


def repository_dir(dest: Path, name: str, arch: str) -> Path:
    """Where the packages and databases live: ``dest/<name>/os/<arch>`` (``$repo/os/$arch``)."""
    return dest / name / "os" / arch


def snippet(name: str, url: str) -> str:
    """The pacman.conf section a user adds: signatures required on packages and databases."""
    return f"[{name}]\nSigLevel = Required\nServer = {url}/$repo/os/$arch\n"


def package_arch(package: Path) -> str:
    """The architecture in a package's file name (``NAME-VERSION-RELEASE-ARCH.pkg.tar.zst``)."""
    if not package.name.endswith(PKGEXT) or package.name.count("-") < 3:
        raise UserError(f"{package} is not a pacman package (NAME-VERSION-RELEASE-ARCH{PKGEXT})")
    return package.name.removesuffix(PKGEXT).rsplit("-", 1)[1]


def _check_packages(packages: Sequence[Path], arch: str) -> None:
    if not packages:
        raise UserError(f"no {PKGEXT} file to publish")
    for package in packages:
        built_for = package_arch(package)
        if built_for not in ("any", arch):
            raise UserError(f"{package} is built for {built_for}, not {arch}: publish it apart")
        if not package.is_file():
            raise UserError(f"{package} is not a file")
    names = [p.name for p in packages]
    if len(set(names)) != len(names):
        raise UserError(f"two packages to publish have the same file name: {sorted(names)}")


def _gpg(key: ArchiveKey, *args: str | Path) -> list[str | Path]:
    return ["gpg", "--homedir", key.home, "--batch", "--no-tty", *args]


def _check_signature(key: ArchiveKey, data: Path, signature: Path) -> None:
    """``signature`` is a good signature of ``data`` by ``key`` (gpg's VALIDSIG names it)."""
    try:
        status = capture(_gpg(key, "--status-fd", "1", "--verify", signature, data))
    except InfraError as exc:
        raise InfraError(
            f"{signature} is not a good signature of {data.name} by the archive key "
            f"{key.fingerprint} ({key.origin}): {exc}"
        ) from exc
    signers = {
        field
        for line in status.splitlines()
        if line.startswith("[GNUPG:] VALIDSIG ")
        for field in (line.split()[2], line.split()[-1])
    }
    if key.fingerprint not in signers:
        raise InfraError(
            f"{signature} is signed by {sorted(signers) or 'nobody'}, not by the archive key "
            f"{key.fingerprint} ({key.origin})"
        )


def _sign(key: ArchiveKey, data: Path) -> Path:
    """``data.sig``: a detached binary signature of ``data`` by ``key``, checked."""
    signature = data.with_name(f"{data.name}.sig")
    run(
        _gpg(key, "--yes", "--detach-sign", "--no-armor", "--local-user", key.fingerprint,
             "--output", signature, data),
        log=LOG,
    )  # fmt: skip
    _check_signature(key, data, signature)
    return signature


def listed_files(desc: str) -> set[str]:
    """The package files that a database's ``desc`` entries (concatenated) name in %FILENAME%."""
    lines = desc.splitlines()
    return {lines[i + 1] for i, line in enumerate(lines[:-1]) if line == "%FILENAME%"}


def _databases(directory: Path, name: str) -> list[Path]:
    """``<name>.db.tar.zst`` (what pacman -Sy fetches) and ``<name>.files.tar.zst`` (pacman -F)."""
    return [directory / f"{name}.{kind}{TAREXT}" for kind in ("db", "files")]


def _build(packages: Sequence[Path], target: Path, key: ArchiveKey, work: Path, name: str) -> None:
    """In ``work``: signed copies of ``packages`` and ``target``'s databases with them added.

    A package already in ``target`` under its name must have the same bytes.
    """
    for package in packages:
        published = target / package.name
        if published.exists() and not filecmp.cmp(package, published, shallow=False):
            raise UserError(
                f"{package.name} is already published in {target} with other contents: "
                "a rebuild needs a new release (kernel.yaml's memlog.release)"
            )
        _sign(key, Path(shutil.copy2(package, work / package.name)))
    for database in _databases(target, name):
        for path in (database, database.with_name(f"{database.name}.sig")):
            if path.exists():
                shutil.copy2(path, work / path.name)
    run(
        ["repo-add", "--sign", "--key", key.fingerprint, "--verify", "--nocolor",
         _databases(work, name)[0], *(work / p.name for p in packages)],
        log=LOG,
        cwd=work,
        env=key.env(),
        step=f"repo-add: {len(packages)} packages into {target / _databases(work, name)[0].name}",
    )  # fmt: skip
    for database in _databases(work, name):
        # repo-add only warns when gpg fails to sign
        _check_signature(key, database, database.with_name(f"{database.name}.sig"))


def _replace_link(link: Path, to: str) -> None:
    if not link.is_symlink() or link.readlink() != Path(to):
        tmp = link.with_name(f".{link.name}.tmp")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(to)
        tmp.replace(link)


def _rename(path: Path, target: Path) -> None:
    path.chmod(0o644)  # served as they are, whatever the umask and the packages' modes
    path.replace(target / path.name)


def _move_in(work: Path, target: Path, name: str) -> None:
    """``work``'s packages, then its databases, into ``target``; then drop what they no longer list.

    A package file is never there without its .sig, nor named by a database
    before it is there.  The older versions' files go last, as Arch's dbscripts
    do it (``repo-add --remove`` would delete them before the new database is
    in place).
    """
    for signature in sorted(work.glob(f"*{PKGEXT}.sig")):
        package = signature.with_name(signature.name.removesuffix(".sig"))
        _rename(signature, target)
        if not (target / package.name).exists():
            _rename(package, target)
    for database in _databases(work, name):
        for path in (database.with_name(f"{database.name}.sig"), database):
            _rename(path, target)
        short = database.name.removesuffix(TAREXT)
        _replace_link(target / short, database.name)
        _replace_link(target / f"{short}.sig", f"{database.name}.sig")
    listed = listed_files(capture(["bsdtar", "-xOf", _databases(target, name)[0], "*/desc"]))
    for path in sorted(target.glob(f"*{PKGEXT}*")):
        if path.name.removesuffix(".sig") not in listed:
            path.unlink()


def publish(
    packages: Sequence[Path],
    dest: Path,
    key: ArchiveKey,
    *,
    name: str = "wintermute",
    arch: str = "x86_64",
    url: str | None = None,
) -> Path:
    """Add ``packages`` to the signed repository ``name`` in ``dest``; return its ``os/<arch>``.

    ``url`` (default ``file://DEST``) is where ``dest`` is served; the
    pacman.conf snippet names ``<url>/$repo/os/$arch``.
    """
    _check_packages(packages, arch)
    target = repository_dir(dest, name, arch)
    target.mkdir(parents=True, exist_ok=True)
    database = _databases(target, name)[0]
    if (target / f"{database.name}.sig").exists():
        # repo-add --verify checks it too, but says only "NOT valid"
        try:
            _check_signature(key, database, target / f"{database.name}.sig")
        except InfraError as exc:
            raise UserError(
                f"{database} is not signed by the archive key {key.fingerprint} ({key.origin}): "
                f"publish into another directory or with the key that signed it ({exc})"
            ) from exc
    work = Path(tempfile.mkdtemp(prefix=".publish.", dir=target))
    try:
        _build(packages, target, key, work, name)
        _move_in(work, target, name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    key.export_public(dest / name / f"{name}-keyring.pgp")
    with atomic_file(dest / name / "pacman.conf.snippet") as tmp:
        tmp.write_text(snippet(name, url or f"file://{dest.resolve()}"))
        tmp.chmod(0o644)
    return target
