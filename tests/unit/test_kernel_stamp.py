"""The build stamp, the newest input's time: same inputs, same stamp; a newer input, newer."""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from wintermute.kernel import stamp
from wintermute.kernel.source import Tarball, sha256_of

COMMIT = 1796817600  # 2026-12-09 12:00:00 UTC


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository with one commit, at COMMIT, of the files a kernel build reads."""
    root = tmp_path / "repo"
    for rel in (*stamp.KERNEL_INPUTS, "docs"):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if "." in path.name:
            path.write_text(f"{rel}\n")
        else:
            path.mkdir(exist_ok=True)
            (path / "file").write_text(f"{rel}\n")
    env = {**os.environ, "GIT_COMMITTER_DATE": f"@{COMMIT}", "GIT_AUTHOR_DATE": f"@{COMMIT}",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}  # fmt: skip
    for cmd in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "inputs"]):
        subprocess.run(["git", *cmd], cwd=root, env=env, check=True)
    for path in root.rglob("*"):
        os.utime(path, (COMMIT + 500, COMMIT + 500))  # a checkout's time, later than the commit
    monkeypatch.setattr(stamp, "REPO", root)
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    return root


def test_clean_checkout_is_dated_by_its_last_commit_not_by_file_times(repo: Path) -> None:
    """Unchanged inputs: the commit time, however recently the files were checked out."""
    assert stamp.repository_date([repo / p for p in stamp.KERNEL_INPUTS]) == COMMIT


def test_an_edited_input_counts_with_its_modification_time(repo: Path) -> None:
    """A driver edited since the commit makes the stamp its modification time."""
    driver = repo / "drivers/char/memlog/file"
    driver.write_text("edited\n")
    os.utime(driver, (COMMIT + 3600, COMMIT + 3600))
    assert stamp.repository_date([repo / "drivers/char/memlog"]) == COMMIT + 3600


def test_a_commit_touching_no_input_changes_nothing(repo: Path) -> None:
    """Only the inputs' history counts: a change to docs/ leaves the stamp alone."""
    (repo / "docs" / "file").write_text("edited\n")
    assert stamp.repository_date([repo / p for p in stamp.KERNEL_INPUTS]) == COMMIT


def test_a_description_outside_the_repository_counts_with_its_time(
    repo: Path, tmp_path: Path
) -> None:
    """A kernel.yaml of the user's, elsewhere: its modification time."""
    mine = tmp_path / "kernel.yaml"
    mine.write_text("kernel: {}\n")
    os.utime(mine, (COMMIT + 7200, COMMIT + 7200))
    assert stamp.repository_date([repo / "wintermute-kernel", mine]) == COMMIT + 7200


def test_source_date_epoch_replaces_the_commit_time(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SOURCE_DATE_EPOCH, when set, is the repository's date (reproducible rebuilds)."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(COMMIT + 60))
    assert stamp.repository_date([repo / "templates"]) == COMMIT + 60


def test_without_git_every_input_counts_with_its_time(repo: Path) -> None:
    """An unpacked release tarball (no .git): the newest file time."""
    subprocess.run(["rm", "-rf", str(repo / ".git")], check=True)
    assert stamp.repository_date([repo / "templates"]) == COMMIT + 500


def _tarball(tmp_path: Path, top_mtime: int) -> Tarball:
    src = tmp_path / "linux-7.2"
    src.mkdir()
    (src / "Makefile").write_text("VERSION = 7\n")
    os.utime(src / "Makefile", (top_mtime + 99, top_mtime + 99))
    os.utime(src, (top_mtime, top_mtime))
    path = tmp_path / "linux-7.2.tar.xz"
    with tarfile.open(path, "w:xz") as tar:
        tar.add(src, arcname="linux-7.2")
    return Tarball(path, sha256_of(path), "test tarball")


def test_a_tarball_is_dated_by_its_top_directory(tmp_path: Path) -> None:
    """Debian stamps linux-source's top directory with the upload's date: that is the source's."""
    assert stamp.tarball_date(_tarball(tmp_path, COMMIT - 86400)) == COMMIT - 86400


def test_a_newer_source_makes_a_newer_stamp(repo: Path, tmp_path: Path) -> None:
    """A new Debian revision of the source (newer date) sorts above, the repository unchanged."""
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    old = stamp.build_stamp(_tarball(tmp_path / "old", COMMIT - 86400), [])
    new = stamp.build_stamp(_tarball(tmp_path / "new", COMMIT + 86400), [])
    assert old == COMMIT and new == COMMIT + 86400


def _old_source(tmp_path: Path) -> Path:
    """A local kernel tree older than the repository's commit."""
    source = tmp_path / "old-linux"
    source.mkdir()
    (source / "Makefile").write_text("VERSION = 7\n")
    os.utime(source / "Makefile", (COMMIT - 10, COMMIT - 10))
    return source


def test_abi_stamp_ignores_an_edit_of_the_driver_s_c_sources(repo: Path, tmp_path: Path) -> None:
    """memlog_main.c edited: the build stamp moves on, the ABI stamp (the release) does not."""
    main_c = repo / "drivers/char/memlog/memlog_main.c"
    main_c.write_text("edited\n")
    os.utime(main_c, (COMMIT + 3600, COMMIT + 3600))
    source = _old_source(tmp_path)
    assert stamp.build_stamp(source, []) == COMMIT + 3600
    assert stamp.abi_stamp(source, []) == COMMIT


@pytest.mark.parametrize(
    "edited",
    ["drivers/char/memlog/Kconfig", "include/uapi/linux/memlog.h", "wintermute-kernel/file"],
)
def test_abi_stamp_moves_with_the_driver_s_wiring_the_uapi_and_the_description(
    repo: Path, tmp_path: Path, edited: str
) -> None:
    """What can change the module ABI (or the configuration) gives a new release."""
    path = repo / edited
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("edited\n")
    os.utime(path, (COMMIT + 3600, COMMIT + 3600))
    assert stamp.abi_stamp(_old_source(tmp_path), []) == COMMIT + 3600


def test_abi_stamp_counts_a_description_outside_the_repository(repo: Path, tmp_path: Path) -> None:
    """A kernel.yaml elsewhere (the driver's version in it) moves the ABI stamp too."""
    mine = tmp_path / "kernel.yaml"
    mine.write_text("memlog: {version: 0.1.1}\n")
    os.utime(mine, (COMMIT + 7200, COMMIT + 7200))
    assert stamp.abi_stamp(_old_source(tmp_path), [mine]) == COMMIT + 7200
