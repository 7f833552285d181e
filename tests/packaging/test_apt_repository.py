"""The signed APT repository, checked with the host's own apt on a private configuration.

apt runs with every directory of its own under the test's tmp (sources,
trusted keys, lists, cache), so the host's configuration is read by nothing
and changed by nothing.  The packages are small .debs made here with
dpkg-deb (their content does not matter to a repository); the real packages
go through the same code in the VM tier (tests/system/test_signed_repository.py).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from wintermute import config
from wintermute.repository import apt, keys, publish

pytestmark = pytest.mark.build

SUITE = "bookworm"


def make_deb(dest: Path, name: str, version: str) -> Path:
    """A minimal arch-all package ``name`` ``version`` in ``dest``."""
    tree = dest / f"{name}-{version}"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "usr/share/doc" / name).mkdir(parents=True)
    (tree / "usr/share/doc" / name / "README").write_text(f"{name} {version}\n")
    (tree / "DEBIAN/control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: all\nSection: misc\n"
        "Priority: optional\n"
        "Maintainer: Test <test@wintermute.invalid>\nDescription: test package\n"
    )
    deb = dest / f"{name}_{version}_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", tree, deb], check=True,
                   capture_output=True)  # fmt: skip
    shutil.rmtree(tree)
    return deb


@pytest.fixture(autouse=True)
def private_keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keys made here go under the test's tmp, never the host's ~/.local/share."""
    path = tmp_path_factory.getbasetemp() / "archive-keys"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WINTERMUTE_KEYS", str(path))
        mp.delenv("WINTERMUTE_ARCHIVE_KEY", raising=False)
        yield path


@pytest.fixture(scope="module")
def cfg() -> config.Config:
    return config.load()


def _publish(debs: list[Path], dest: Path, cfg: config.Config) -> apt.Published:
    with keys.archive_key(dest) as key:
        return apt.publish(debs, dest, key, cfg, url=f"file://{dest}")


class Apt:
    """The host's apt-get and apt-cache, with a configuration of their own under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for sub in ("sources.list.d", "lists/partial", "cache/archives/partial"):
            (root / sub).mkdir(parents=True, exist_ok=True)

    def options(self) -> list[str]:
        r = self.root
        return [
            "-o", "Dir::Etc::SourceList=/dev/null",
            "-o", f"Dir::Etc::SourceParts={r}/sources.list.d",
            "-o", "Dir::Etc::Trusted=/dev/null",
            "-o", "Dir::Etc::TrustedParts=/dev/null",
            "-o", f"Dir::State::Lists={r}/lists",
            "-o", f"Dir::Cache={r}/cache",
            "-o", "Dir::Etc::Preferences=/dev/null",
            "-o", "Dir::Etc::PreferencesParts=/dev/null",
            "-o", "APT::Sandbox::User=root",
            "-o", "Debug::NoLocking=true",
        ]  # fmt: skip

    def add(self, name: str, text: str) -> None:
        (self.root / "sources.list.d" / f"{name}.sources").write_text(text)

    def update(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["apt-get", *self.options(), "update"], capture_output=True,
                              text=True, check=False)  # fmt: skip

    def candidate(self, package: str) -> str:
        out = subprocess.run(["apt-cache", *self.options(), "policy", package],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
        for line in out.splitlines():
            if line.strip().startswith("Candidate:"):
                return line.split(":", 1)[1].strip()
        return "(none)"


def _sources(published: apt.Published, keyring: Path) -> str:
    """The published .sources, its Signed-By pointed at ``keyring`` (the host has no package)."""
    text = published.sources[SUITE].read_text()
    return "\n".join(
        f"Signed-By: {keyring}" if line.startswith("Signed-By:") else line
        for line in text.splitlines()
    )


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, cfg: config.Config) -> apt.Published:
    base = tmp_path_factory.mktemp("apt-repo")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WINTERMUTE_KEYS", str(base / "keys"))
        debs = [make_deb(base, cfg.packages.dkms, "0.2.0-1"),
                make_deb(base, cfg.packages.tools, "0.2.0-1")]  # fmt: skip
        return _publish(debs, base / "dest", cfg)


def _keyring(published: apt.Published, cfg: config.Config) -> Path:
    return published.root / f"{apt.keyring_name(cfg)}.pgp"


def test_apt_update_accepts_the_repository_with_its_published_keyring(
    repo: apt.Published, cfg: config.Config, tmp_path: Path
) -> None:
    """apt-get update, signature checking on, reads the repository; the package is a candidate."""
    client = Apt(tmp_path)
    client.add("wintermute", _sources(repo, _keyring(repo, cfg)))
    done = client.update()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "W:" not in done.stderr and "E:" not in done.stderr, done.stderr
    assert client.candidate(cfg.packages.dkms) == "0.2.0-1"


def test_apt_update_refuses_the_same_packages_signed_by_another_key(
    repo: apt.Published, cfg: config.Config, tmp_path: Path
) -> None:
    """A repository published into another directory has another key: apt refuses it."""
    other = _publish([make_deb(tmp_path, cfg.packages.dkms, "0.2.0-1")], tmp_path / "other", cfg)
    client = Apt(tmp_path / "apt")
    client.add("other", _sources(other, _keyring(repo, cfg)))
    done = client.update()
    assert done.returncode != 0
    assert "NO_PUBKEY" in done.stdout + done.stderr
    assert client.candidate(cfg.packages.dkms) == "(none)"


def test_apt_update_refuses_an_index_changed_after_signing(
    repo: apt.Published, cfg: config.Config, tmp_path: Path
) -> None:
    """A Packages index edited after InRelease was signed does not match its hash: refused."""
    copy = tmp_path / "copy"
    shutil.copytree(repo.root, copy)
    for index in (copy / "dists" / SUITE / "main" / "binary-amd64").glob("Packages*"):
        if index.suffix == "":
            index.write_text(index.read_text().replace("Version: 0.2.0-1", "Version: 9.9-1"))
        else:
            index.unlink()  # leave apt only the edited, uncompressed index
    client = Apt(tmp_path / "apt")
    client.add("copy", _sources(repo, _keyring(repo, cfg)).replace(str(repo.root), str(copy)))
    done = client.update()
    assert done.returncode != 0
    assert "Hash Sum mismatch" in done.stdout + done.stderr or "unexpected size" in done.stderr
    assert client.candidate(cfg.packages.dkms) == "(none)"


def test_inrelease_is_signed_with_sha512_and_the_keys_bindings_too(
    repo: apt.Published, cfg: config.Config, tmp_path: Path
) -> None:
    """InRelease says Hash: SHA512; every signature packet of the key has digest algo 10."""
    assert "Hash: SHA512" in (repo.root / "dists" / SUITE / "InRelease").read_text()
    packets = subprocess.run(
        ["gpg", "--homedir", str(tmp_path), "--list-packets", str(_keyring(repo, cfg))],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    algos = [line.split("digest algo ")[1].split(",")[0] for line in packets.splitlines()
             if "digest algo" in line]  # fmt: skip
    assert algos and set(algos) <= {"8", "9", "10"}, algos  # SHA-256, -384, -512


def test_nothing_published_holds_secret_key_material(repo: apt.Published, tmp_path: Path) -> None:
    """No file under the repository has a PRIVATE KEY block or an OpenPGP secret-key packet."""
    dest = repo.root.parent
    for path in dest.rglob("*"):
        if path.is_file():
            assert b"PRIVATE KEY" not in path.read_bytes(), path
    for pgp in dest.rglob("*.pgp"):
        packets = subprocess.run(
            ["gpg", "--homedir", str(tmp_path), "--list-packets", str(pgp)],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert "secret key packet" not in packets and ":public key packet:" in packets


def test_the_keyring_package_installs_only_the_key_under_usr_share_keyrings(
    repo: apt.Published, cfg: config.Config
) -> None:
    """The keyring .deb holds the published .pgp at /usr/share/keyrings/ (and its docs)."""
    listing = subprocess.run(["dpkg-deb", "-c", str(repo.keyring_deb)], capture_output=True,
                             text=True, check=True).stdout  # fmt: skip
    files = {line.split()[-1] for line in listing.splitlines() if not line.startswith("d")}
    key = f"./usr/share/keyrings/{apt.keyring_name(cfg)}.pgp"
    assert key in files
    assert {f for f in files if not f.startswith("./usr/share/doc/")} == {key}
    extracted = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(repo.keyring_deb)],
                               capture_output=True, check=True).stdout  # fmt: skip
    assert _keyring(repo, cfg).read_bytes() in extracted


def test_the_sources_files_name_each_suite_and_sign_by_the_packaged_keyring(
    repo: apt.Published, cfg: config.Config
) -> None:
    """One deb822 .sources per suite of kernel.yaml, URIs under the repository's URL."""
    assert set(repo.sources) == set(cfg.repository.suites)
    for suite, path in repo.sources.items():
        fields = dict(line.split(": ", 1) for line in path.read_text().splitlines()
                      if line and not line.startswith("#"))  # fmt: skip
        assert fields == {
            "Types": "deb",
            "URIs": f"file://{repo.root}",
            "Suites": suite,
            "Components": "main",
            "Signed-By": f"/usr/share/keyrings/{apt.keyring_name(cfg)}.pgp",
        }


def test_publishing_a_newer_build_replaces_the_old_one_in_every_suite(
    cfg: config.Config, tmp_path: Path
) -> None:
    """The newer version is listed instead of the older, and the older leaves the pool."""
    dest = tmp_path / "dest"
    _publish([make_deb(tmp_path, cfg.packages.dkms, "0.2.0-1")], dest, cfg)
    newer = _publish([make_deb(tmp_path, cfg.packages.dkms, "0.2.1-1")], dest, cfg)
    for suite in cfg.repository.suites:
        assert f"{cfg.packages.dkms} 0.2.1-1" in newer.packages[suite]
        assert f"{cfg.packages.dkms} 0.2.0-1" not in newer.packages[suite]
    assert [p.name for p in (newer.root / "pool").rglob(f"{cfg.packages.dkms}_*.deb")] == [
        f"{cfg.packages.dkms}_0.2.1-1_all.deb"
    ]


def test_the_key_is_made_once_per_repository_directory_and_kept(tmp_path: Path) -> None:
    """Two runs on one directory sign with one key; another directory gets another key."""
    with keys.archive_key(tmp_path / "a") as first:
        pass
    with keys.archive_key(tmp_path / "a") as again:
        pass
    with keys.archive_key(tmp_path / "b") as other:
        pass
    assert first.fingerprint == again.fingerprint != other.fingerprint
    assert (keys.home_for(tmp_path / "a").stat().st_mode & 0o777) == 0o700


def test_a_key_given_in_the_environment_signs_instead_and_is_not_kept(
    cfg: config.Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$WINTERMUTE_ARCHIVE_KEY's key signs; no key is made or kept for the directory."""
    with keys.archive_key(tmp_path / "source") as made:
        secret = subprocess.run(
            ["gpg", "--homedir", str(made.home), "--batch", "--pinentry-mode", "loopback",
             "--passphrase", "", "--export-secret-keys", made.fingerprint],
            capture_output=True, check=True,
        ).stdout  # fmt: skip
    (tmp_path / "given.key").write_bytes(secret)
    monkeypatch.setenv("WINTERMUTE_ARCHIVE_KEY", str(tmp_path / "given.key"))
    published = _publish([make_deb(tmp_path, cfg.packages.dkms, "0.2.0-1")], tmp_path / "d", cfg)
    assert not keys.home_for(tmp_path / "d").exists()
    out = subprocess.run(
        ["gpg", "--homedir", str(made.home), "--verify",
         str(published.root / "dists" / SUITE / "InRelease")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 0 and made.fingerprint[-16:] in out.stderr.replace(" ", ""), out.stderr


def test_invoke_repository_publishes_out_packages_and_names_the_key(
    cfg: config.Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """publish.publish takes out/debian's .debs (not the dbgsym ones) into DEST/apt."""
    out = tmp_path / "out"
    (out / "debian").mkdir(parents=True)
    make_deb(out / "debian", cfg.packages.tools, "0.2.0-1")
    make_deb(out / "debian", "libmemlog0-dbgsym", "0.2.0-1").rename(
        out / "debian" / "libmemlog0-dbgsym_0.2.0-1_all.deb"
    )
    monkeypatch.setenv("WINTERMUTE_OUT", str(out))
    result = publish.publish()
    assert result.dest == out / "repository"
    assert [p.name for p in result.debs] == [f"{cfg.packages.tools}_0.2.0-1_all.deb"]
    assert (out / "repository" / "apt" / "dists" / SUITE / "InRelease").is_file()


def test_invoke_repository_with_nothing_built_says_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No packages in out/: one UserError naming the tasks that build them."""
    from wintermute.errors import UserError

    monkeypatch.setenv("WINTERMUTE_OUT", str(tmp_path))
    with pytest.raises(UserError, match="run invoke deb, invoke arch or invoke build-kernel"):
        publish.publish()
