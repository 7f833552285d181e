"""A release made from a clone: its tarball, signature and notes, and a package build from it.

The release is made from a clone of this checkout whose HEAD holds the
working tree as it is (its uncommitted changes committed on top, in the
clone only; CI's fresh clone has none), so that what is checked is the code
under test.  The Debian packages are then built twice, each in a process of
its own: from the unpacked tarball (no ``.git``, no ``SOURCE_DATE_EPOCH``)
and from the clone; they must be the same bytes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from wintermute import config, release
from wintermute.errors import InfraError
from wintermute.paths import REPO
from wintermute.reproducible import DATE_FILE, source_date_epoch

pytestmark = pytest.mark.build

# What a package build runs, in the tree it is started in (cwd, PYTHONPATH).
BUILD = (
    "from wintermute.packaging import debian, targets\n"
    "for path in debian.build(targets.render()):\n"
    "    print(path)\n"
)
# Not passed to the builds: they must find their date and description themselves.
UNSET = ("SOURCE_DATE_EPOCH", "WINTERMUTE_KERNEL_YAML", "WINTERMUTE_OUT", "PYTHONPATH")


@pytest.fixture(scope="module", autouse=True)
def private_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keys in a tmp directory (never the host's ~/.local/share), no date from outside.

    The keys' directory has a short path: gpg-agent's sockets live in the
    GnuPG home, and a socket's path may not be longer than 107 bytes.
    """
    keys = tempfile.mkdtemp(prefix="wm-keys.")
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("WINTERMUTE_KEYS", keys)
            mp.setenv("WINTERMUTE_OUT", str(tmp_path_factory.mktemp("release-out")))
            mp.delenv("WINTERMUTE_ARCHIVE_KEY", raising=False)
            mp.delenv("SOURCE_DATE_EPOCH", raising=False)
            yield
    finally:
        shutil.rmtree(keys, ignore_errors=True)


def _git(root: Path, *args: str) -> str:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_AUTHOR_NAME": "test",
           "GIT_AUTHOR_EMAIL": "test@wintermute.invalid", "GIT_COMMITTER_NAME": "test",
           "GIT_COMMITTER_EMAIL": "test@wintermute.invalid"}  # fmt: skip
    return subprocess.run(["git", "-C", root, *args], env=env, check=True, capture_output=True,
                          text=True).stdout  # fmt: skip


def snapshot_clone(dest: Path) -> Path:
    """A clone of REPO whose HEAD is REPO's working tree (tracked and untracked, not ignored)."""
    _git(REPO, "clone", "-q", REPO, dest)
    known = {p for p in _git(REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
             .split("\0") if p and os.path.lexists(REPO / p)}  # fmt: skip
    for gone in set(_git(dest, "ls-files", "-z").split("\0")) - known - {""}:
        (dest / gone).unlink()
    for rel in known:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, dest / rel, follow_symlinks=False)
    _git(dest, "add", "-A")
    if _git(dest, "status", "--porcelain"):
        _git(dest, "commit", "-q", "-m", "the checkout under test, uncommitted changes included")
    return dest


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return snapshot_clone(tmp_path_factory.mktemp("release") / "clone")


@pytest.fixture(scope="module")
def made(clone: Path, tmp_path_factory: pytest.TempPathFactory) -> release.Release:
    return release.make_release(tmp_path_factory.mktemp("release-dest"), root=clone)


@pytest.fixture(scope="module")
def top() -> str:
    return f"wintermute-{config.load().memlog.version}"


@pytest.fixture(scope="module")
def unpacked(made: release.Release, top: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("unpacked")
    subprocess.run(["tar", "-C", dest, "-xzf", made.tarball], check=True)
    return dest / top


def _build(tree: Path, out: Path) -> list[Path]:
    """The Debian packages built by a process started in ``tree``, into ``out``."""
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    done = subprocess.run(
        [sys.executable, "-c", BUILD],
        cwd=tree,
        env={**env, "PYTHONPATH": str(tree / "src"), "WINTERMUTE_OUT": str(out)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"the build in {tree} failed:\n{done.stderr[-3000:]}"
    return [Path(line) for line in done.stdout.split() if line.endswith(".deb")]


def _gpgv(made: release.Release, data: Path, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["gpgv", "--homedir", home, "--keyring", made.public_key, made.signature, data],
        capture_output=True,
        text=True,
        check=False,
    )


def test_release_writes_tarball_signature_key_and_notes(made: release.Release, top: str) -> None:
    """wintermute-VERSION.tar.gz, .tar.gz.asc, .md and the public key, side by side."""
    assert [p.name for p in made.files] == [
        f"{top}.tar.gz", f"{top}.tar.gz.asc", release.PUBLIC_KEY, f"{top}.md",
    ]  # fmt: skip
    assert sorted(p.name for p in made.tarball.parent.iterdir()) == sorted(
        p.name for p in made.files
    )


def test_tarball_is_heads_files_under_one_directory_with_the_date(
    made: release.Release, clone: Path, top: str
) -> None:
    """Every member under wintermute-VERSION/: HEAD's files, no .git, and the date file."""
    with tarfile.open(made.tarball) as tar:
        files = {m.name for m in tar.getmembers() if not m.isdir()}
        date = tar.extractfile(f"{top}/{DATE_FILE}").read().decode()  # type: ignore[union-attr]
    head = {f"{top}/{p}" for p in _git(clone, "ls-files", "-z").split("\0") if p}
    assert files == head | {f"{top}/{DATE_FILE}"}
    assert not any("/.git/" in f or f.endswith("/.git") for f in files)
    assert date == f"{source_date_epoch(root=clone)}\n"


def test_signature_verifies_with_the_exported_key(made: release.Release, tmp_path: Path) -> None:
    """gpgv, given only the public key written beside it, accepts the tarball's signature."""
    done = _gpgv(made, made.tarball, tmp_path)
    assert done.returncode == 0, done.stderr


def test_signature_refuses_a_tarball_changed_by_one_byte(
    made: release.Release, tmp_path: Path
) -> None:
    """The same tarball with one byte changed in its middle fails gpgv."""
    data = bytearray(made.tarball.read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered = tmp_path / made.tarball.name
    tampered.write_bytes(data)
    done = _gpgv(made, tampered, tmp_path)
    assert done.returncode != 0 and "BAD signature" in done.stderr


def test_the_same_commit_gives_the_same_tarball_bytes(
    made: release.Release, clone: Path, tmp_path: Path
) -> None:
    """A second release of HEAD, from another clone, later and under another umask: same bytes."""
    other = tmp_path / "other-clone"
    _git(clone, "clone", "-q", clone, other)
    time.sleep(1.1)  # a time stored anywhere would differ
    old = os.umask(0o077)
    try:
        again = release.make_release(tmp_path / "dest", root=other)
    finally:
        os.umask(old)
    assert again.tarball.read_bytes() == made.tarball.read_bytes()


def test_notes_hold_the_changes_entry_and_the_commits(made: release.Release, clone: Path) -> None:
    """The version's entry of README.md's Changes, then the commits (HEAD's subject first)."""
    version = config.load(clone / "wintermute-kernel" / "kernel.yaml").memlog.version
    entry = release.changes_entry((clone / "README.md").read_text(), version)
    notes = made.notes.read_text()
    assert entry and f"## Changes\n\n{entry}\n\n## Commits" in notes
    subject = _git(clone, "log", "-1", "--format=%s")
    assert notes.split("## Commits")[1].splitlines()[2].startswith(f"- {subject.strip()} (")


def test_a_failed_release_leaves_no_file(
    clone: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Signing fails after the tarball was made: the release directory stays empty."""

    def fail(*args: object) -> Path:
        raise InfraError("gpg failed")

    monkeypatch.setattr(release, "sign", fail)
    with pytest.raises(InfraError):
        release.make_release(tmp_path / "dest", root=clone)
    assert list((tmp_path / "dest").iterdir()) == []


def test_debs_built_from_the_tarball_are_the_clones(
    unpacked: Path, clone: Path, tmp_path: Path
) -> None:
    """Built where there is no .git and no SOURCE_DATE_EPOCH: the same .debs as from the clone."""
    assert not (unpacked / ".git").exists()
    from_tarball = _build(unpacked, tmp_path / "out-tarball")
    from_clone = _build(clone, tmp_path / "out-clone")
    assert sorted(p.name for p in from_tarball) == sorted(p.name for p in from_clone)
    assert len(from_clone) >= 2
    different = [
        a.name
        for a, b in zip(sorted(from_tarball), sorted(from_clone), strict=True)
        if a.read_bytes() != b.read_bytes()
    ]
    assert different == []
