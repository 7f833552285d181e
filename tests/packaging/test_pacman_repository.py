"""The signed pacman repository: everything signed by the archive key, and pacman trusting only it.

The Arch packages are built once at kernel.yaml's version and once at the
next one (ci.package_verify.upgrade_description), with arch.build as
test_arch_packages.py does, and published with pacman.publish into a
repository whose key keys.py makes under a temporary ``WINTERMUTE_KEYS``
(never the host's home).  pacman installs from it into scratch roots laid out
as arch.install_into_scratch_root's, each with a keyring of its own that
pacman-key made (``--init``, ``--add`` the published ``<name>-keyring.pgp``,
``--lsign-key`` its fingerprint; once per module, copied into each root) and
a pacman.conf that is the published ``pacman.conf.snippet`` (``SigLevel =
Required``) under an ``[options]`` without a SigLevel of its own.  As in
test_arch_packages.py, ``-dd --noscriptlet``: the packages depend on python,
systemd and dkms, Arch packages a scratch root on Debian cannot have, and
there is no shell in the root to run the install script.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ci.package_verify import next_version, upgrade_description
from wintermute import config
from wintermute.errors import UserError
from wintermute.packaging import arch, targets
from wintermute.repository import keys, pacman

pytestmark = pytest.mark.build

NAME = "wintermute"
# no SigLevel in [options]: the published section's decides
OPTIONS = "[options]\nArchitecture = x86_64\n\n"
# pacman -S / -Syu of every package the repository holds
PACKAGES = ("libmemlog", "memlog-dkms", "memlog-tools")


@dataclass(frozen=True)
class Repo:
    dest: Path  # what publish() was given
    fingerprint: str

    @property
    def os_dir(self) -> Path:
        return pacman.repository_dir(self.dest, NAME, "x86_64")

    @property
    def keyring(self) -> Path:
        return self.dest / NAME / f"{NAME}-keyring.pgp"

    @property
    def snippet(self) -> Path:
        return self.dest / NAME / "pacman.conf.snippet"

    def packages(self) -> list[Path]:
        return sorted(self.os_dir.glob(f"*{pacman.PKGEXT}"))

    def databases(self) -> list[Path]:
        return [self.os_dir / f"{NAME}.db.tar.zst", self.os_dir / f"{NAME}.files.tar.zst"]


@dataclass(frozen=True)
class Installed:
    root: Path
    query: list[str]  # pacman -Q right after the step


@pytest.fixture(scope="module", autouse=True)
def environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """This module's out/ and archive keys, never the shared out/ or the host's home."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WINTERMUTE_OUT", str(tmp_path_factory.mktemp("pacman-repo-out")))
        mp.setenv("WINTERMUTE_KEYS", str(tmp_path_factory.mktemp("keys")))
        mp.setenv("GNUPGHOME", str(tmp_path_factory.mktemp("gnupghome")))  # gpgv, --list-packets
        yield


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """The packages at kernel.yaml's version ("current") and at the next one ("upgrade")."""
    upgrade_yaml = upgrade_description(
        config.default_path(), tmp_path_factory.mktemp("upgrade") / "kernel.yaml"
    )
    results = {}
    for label, kernel_yaml in (("current", None), ("upgrade", upgrade_yaml)):
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("WINTERMUTE_OUT", str(tmp_path_factory.mktemp(f"arch-{label}")))
            if kernel_yaml:
                mp.setenv("WINTERMUTE_KERNEL_YAML", str(kernel_yaml))
            results[label] = arch.build(targets.render())
    return results


@pytest.fixture(scope="module")
def cfg() -> config.Config:
    return config.load()


def _publish(packages: list[Path], dest: Path) -> Repo:
    with keys.archive_key(dest) as key:
        pacman.publish(packages, dest, key)
        return Repo(dest, key.fingerprint)


@pytest.fixture(scope="module")
def repo(builds: dict[str, list[Path]], tmp_path_factory: pytest.TempPathFactory) -> Repo:
    """The current build published; the upgrade test publishes the next one into it later."""
    return _publish(builds["current"], tmp_path_factory.mktemp("repository"))


@pytest.fixture(scope="module")
def keyring(repo: Repo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pacman keyring trusting the published archive key: pacman-key --init, --add, --lsign."""
    home = tmp_path_factory.mktemp("pacman-keyring") / "gnupg"
    conf = home.parent / "pacman.conf"
    conf.write_text(OPTIONS)
    pacman_key = ["pacman-key", "--config", str(conf), "--gpgdir", str(home)]
    try:
        for args in (["--init"], ["--add", str(repo.keyring)], ["--lsign-key", repo.fingerprint]):
            _ok(subprocess.run([*pacman_key, *args], capture_output=True, text=True, check=False))
    finally:
        _stop_gpg(home)
    return home


def _stop_gpg(home: Path) -> None:
    """Stop the gpg-agent and dirmngr that pacman-key or gpgme may have started for ``home``."""
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)


@pytest.fixture(scope="module")
def scratch_root(
    keyring: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[Repo], Path]]:
    """Make a scratch root whose pacman.conf is ``repo``'s published snippet, with the keyring."""
    made: list[Path] = []

    def make(repo: Repo) -> Path:
        scratch = tmp_path_factory.mktemp("scratch")
        root = scratch / "root"
        for sub in ("var/lib/pacman", "var/cache/pacman/pkg", "var/log", "etc/pacman.d"):
            (root / sub).mkdir(parents=True)
        (scratch / "hooks").mkdir()
        (scratch / arch.PACMAN_CONF).write_text(OPTIONS + repo.snippet.read_text())
        gpgdir = root / "etc/pacman.d/gnupg"
        shutil.copytree(keyring, gpgdir, ignore=shutil.ignore_patterns("S.*"))
        made.append(gpgdir)
        return root

    yield make
    for gpgdir in made:
        _stop_gpg(gpgdir)


def _pacman(root: Path, *args: str, answer: str | None = None) -> subprocess.CompletedProcess[str]:
    """pacman on the scratch ``root``; ``answer``: what it reads for its questions (else
    --noconfirm, which says yes)."""
    confirm = () if answer is not None else ("--noconfirm",)
    return subprocess.run(
        arch._pacman(root, *args, *confirm),
        input=answer,
        capture_output=True,
        text=True,
        check=False,
    )


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"{done.args}: {done.stdout}{done.stderr}"
    return done.stdout


def _installed(root: Path) -> list[str]:
    return _ok(_pacman(root, "-Q")).splitlines()


@pytest.fixture(scope="module")
def installed(repo: Repo, scratch_root: Callable[[Repo], Path]) -> Installed:
    """pacman -Sy, then -S of every package, from the repository into a scratch root."""
    root = scratch_root(repo)
    _ok(_pacman(root, "-Sy"))
    _ok(_pacman(root, "-S", "-dd", "--noscriptlet", *PACKAGES))
    return Installed(root, _installed(root))


@pytest.fixture(scope="module")
def upgraded(installed: Installed, repo: Repo, builds: dict[str, list[Path]]) -> Installed:
    """The upgrade build published into the same repository, then pacman -Syu in that root."""
    again = _publish(builds["upgrade"], repo.dest)
    assert again.fingerprint == repo.fingerprint  # the same key: made once per directory
    _ok(_pacman(installed.root, "-Syu", "-dd", "--noscriptlet"))
    return Installed(installed.root, _installed(installed.root))


def _gpgv(keyring: Path, data: Path) -> str:
    done = subprocess.run(
        ["gpgv", "--keyring", str(keyring), "--status-fd", "1", f"{data}.sig", str(data)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"gpgv {data.name}: {done.stdout}{done.stderr}"
    return done.stdout


def _packets(path: Path) -> str:
    return subprocess.run(
        ["gpg", "--batch", "--list-packets", str(path)], capture_output=True, text=True, check=True
    ).stdout


def test_the_databases_and_every_package_carry_a_good_signature_by_the_archive_key(
    repo: Repo,
) -> None:
    """gpgv with only the published keyring accepts <name>.db, .files and each package's .sig,
    and names the archive key as the signer."""
    packages = repo.packages()
    assert len(packages) == len(PACKAGES)
    for path in [*repo.databases(), *packages]:
        status = _gpgv(repo.keyring, path)
        assert re.search(rf"^\[GNUPG:\] VALIDSIG {repo.fingerprint} ", status, re.MULTILINE), (
            path.name,
            status,
        )


def test_the_published_keyring_is_the_archive_key_alone(repo: Repo) -> None:
    """<name>-keyring.pgp holds one public key, the archive key's fingerprint."""
    out = subprocess.run(
        ["gpg", "--batch", "--with-colons", "--show-keys", str(repo.keyring)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    records = [line.split(":") for line in out.splitlines()]
    assert [r[0] for r in records if r[0] in ("pub", "sec", "sub", "ssb")] == ["pub"]
    assert [r[9] for r in records if r[0] == "fpr"] == [repo.fingerprint]


def test_the_signatures_and_the_key_self_signatures_use_sha512(repo: Repo) -> None:
    """Every signature packet, in the .sig files and the keyring's bindings: digest algo 10."""
    for path in [repo.keyring, *(Path(f"{p}.sig") for p in [*repo.databases(), *repo.packages()])]:
        digests = re.findall(r"digest algo (\d+)", _packets(path))
        assert digests, path.name
        assert set(digests) == {"10"}, (path.name, digests)


def test_no_private_key_material_is_published(repo: Repo) -> None:
    """No file under the repository holds "PRIVATE KEY", and no OpenPGP file a secret key packet."""
    files = [p for p in repo.dest.rglob("*") if p.is_file() and not p.is_symlink()]
    openpgp = [p for p in files if p.suffix in (".sig", ".pgp")]
    assert len(openpgp) == 2 + len(PACKAGES) + 1  # databases, packages, the keyring
    for path in files:
        assert b"PRIVATE KEY" not in path.read_bytes(), f"{path} holds PRIVATE KEY"
    for path in openpgp:
        packets = _packets(path)
        assert ":signature packet:" in packets, path
        assert "secret key packet" not in packets, f"{path} holds a secret key packet"
        assert "secret sub key packet" not in packets, f"{path} holds a secret subkey packet"


def test_the_pacman_conf_snippet_requires_signatures_and_names_the_repository(
    repo: Repo,
) -> None:
    """[wintermute], SigLevel = Required and Server = file://DEST/$repo/os/$arch."""
    assert repo.snippet.read_text() == (
        f"[{NAME}]\nSigLevel = Required\nServer = file://{repo.dest.resolve()}/$repo/os/$arch\n"
    )


def _state(directory: Path) -> dict[str, str]:
    """Every file in ``directory``: its name -> its sha256 (a link: where it points)."""
    return {
        p.name: str(p.readlink()) if p.is_symlink() else hashlib.sha256(p.read_bytes()).hexdigest()
        for p in directory.iterdir()
    }


def test_publishing_with_another_key_is_refused_and_changes_nothing(
    repo: Repo, builds: dict[str, list[Path]], tmp_path: Path
) -> None:
    """publish() into the repository with a key that did not sign its database: a UserError
    naming the database, and every file of os/x86_64 as it was."""
    before = _state(repo.os_dir)
    with (
        keys.archive_key(tmp_path / "elsewhere") as other,
        pytest.raises(UserError, match=r"is not signed by the archive key"),
    ):
        pacman.publish(builds["upgrade"], repo.dest, other)
    assert _state(repo.os_dir) == before


def test_pacman_installs_every_package_from_the_signed_repository_into_a_scratch_root(
    installed: Installed, cfg: config.Config
) -> None:
    """pacman -Sy and -S with SigLevel = Required: every package, at kernel.yaml's version."""
    version = f"{cfg.memlog.version}-{cfg.memlog.release}"
    assert installed.query == [f"{name} {version}" for name in PACKAGES]


def test_pacman_syu_upgrades_to_the_newer_build_published_into_the_same_repository(
    upgraded: Installed, cfg: config.Config
) -> None:
    """After publishing the next version into the same directory, pacman -Syu installs it."""
    version = f"{next_version(cfg.memlog.version)}-{cfg.memlog.release}"
    assert upgraded.query == [f"{name} {version}" for name in PACKAGES]


def test_publishing_the_newer_build_removes_the_older_package_files_and_signatures(
    upgraded: Installed, repo: Repo, cfg: config.Config
) -> None:
    """Only the next version's packages and their .sig are left beside the databases."""
    version = f"{next_version(cfg.memlog.version)}-{cfg.memlog.release}"
    names = sorted(p.name for p in repo.os_dir.iterdir() if ".pkg." in p.name)
    assert names == sorted(
        f"{package}-{version}-{'x86_64' if package == 'libmemlog' else 'any'}{pacman.PKGEXT}{sig}"
        for package in PACKAGES
        for sig in ("", ".sig")
    )


def test_pacman_refuses_a_tampered_package_for_its_pgp_signature(
    repo: Repo, scratch_root: Callable[[Repo], Path], tmp_path: Path
) -> None:
    """One byte of memlog-tools changed after signing (same .sig, same database): pacman -S
    fails with "invalid or corrupted package (PGP signature)" and installs nothing."""
    copy = Repo(tmp_path / "tampered", repo.fingerprint)
    shutil.copytree(repo.dest, copy.dest, symlinks=True)
    copy.snippet.write_text(repo.snippet.read_text().replace(str(repo.dest), str(copy.dest)))
    [package] = [p for p in copy.packages() if p.name.startswith("memlog-tools-")]
    data = bytearray(package.read_bytes())
    data[len(data) // 2] ^= 0x01
    package.write_bytes(data)
    root = scratch_root(copy)
    _ok(_pacman(root, "-Sy"))
    done = _pacman(root, "-S", "-dd", "--noscriptlet", "memlog-tools")
    assert done.returncode != 0
    assert "invalid or corrupted package (PGP signature)" in done.stderr, done.stdout + done.stderr
    query = _pacman(root, "-Q", "memlog-tools")
    assert "package 'memlog-tools' was not found" in query.stderr, query.stdout + query.stderr


def test_pacman_sy_refuses_a_repository_signed_by_another_key(
    repo: Repo,
    builds: dict[str, list[Path]],
    scratch_root: Callable[[Repo], Path],
    tmp_path: Path,
) -> None:
    """The same packages published into another directory (so another key): pacman -Sy, with
    the archive key trusted, refuses its database ("invalid or corrupted database (PGP
    signature)", the key unknown) when asked not to import the key."""
    other = _publish(builds["current"], tmp_path / "other")
    assert other.fingerprint != repo.fingerprint
    root = scratch_root(other)
    done = _pacman(root, "-Sy", answer="n\n")
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "invalid or corrupted database (PGP signature)" in done.stderr, output
    assert f'key "{other.fingerprint}" is unknown' in done.stderr, output
