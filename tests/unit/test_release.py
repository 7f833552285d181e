"""Releases: the notes from README.md's Changes, the stored source date, the refusals.

The tarball itself, its signature and a package build from it are checked in
tests/packaging/test_release_tarball.py.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from wintermute import release, reproducible
from wintermute.errors import UserError

COMMIT = 1796817600  # 2026-12-09 12:00:00 UTC
STORED = 1790000000

README = """\
# memlog

## Changes

Incompatible changes of the device, newest first.

- **0.3.0** (unreleased)
  - Records carry a cgroup id.

    Readers built for 0.2.0 skip it.
- **0.2.0**
  - The ioctls moved from type 0xCB to **0xC1**:
    rebuild against the new header.
  - `max_bytes` is shared fairly between users.

## Licences

- **0.1.0** is not an entry: this is another section.
"""


def test_changes_entry_is_the_versions_lines_unindented() -> None:
    """0.2.0's entry: its bullets, one level less indented, up to the next section."""
    assert release.changes_entry(README, "0.2.0") == (
        "- The ioctls moved from type 0xCB to **0xC1**:\n"
        "  rebuild against the new header.\n"
        "- `max_bytes` is shared fairly between users."
    )


def test_changes_entry_stops_at_the_next_version_and_keeps_the_heading_text() -> None:
    """0.3.0's entry: the text after its version, its bullets and paragraphs, not 0.2.0's."""
    assert release.changes_entry(README, "0.3.0") == (
        "(unreleased)\n- Records carry a cgroup id.\n\n  Readers built for 0.2.0 skip it."
    )


@pytest.mark.parametrize(
    ("readme", "version"),
    [(README, "0.1.0"), (README, "0.2"), (README.replace("## Changes", "## Changelog"), "0.2.0")],
    ids=["no-entry", "prefix-of-a-version", "no-changes-section"],
)
def test_changes_entry_is_none_without_an_entry(readme: str, version: str) -> None:
    """Only an entry under ``## Changes`` for exactly that version counts."""
    assert release.changes_entry(readme, version) is None


# --- the source date: environment, git, stored file ---------------------------


def _git(root: Path, *args: str, date: int = COMMIT) -> str:
    env = {**os.environ, "GIT_COMMITTER_DATE": f"@{date}", "GIT_AUTHOR_DATE": f"@{date}",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "GIT_CONFIG_GLOBAL": "/dev/null"}  # fmt: skip
    return subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True,
                          text=True).stdout  # fmt: skip


def _commit(root: Path, files: dict[str, str], subject: str, date: int = COMMIT) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    _git(root, "add", "-A", date=date)
    _git(root, "commit", "-q", "-m", subject, date=date)


@pytest.fixture
def clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git checkout whose package inputs were last committed at COMMIT."""
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    root = tmp_path / "clone"
    root.mkdir()
    _git(root, "init", "-q", "-b", "main")
    _commit(root, {"README.md": README, "src/memlog/cli.py": ""}, "inputs")
    return root


@pytest.fixture
def unpacked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A release's tree: no .git, the stored date at its top."""
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    root = tmp_path / "wintermute-0.2.0"
    (root / "src" / "memlog").mkdir(parents=True)
    (root / reproducible.DATE_FILE).write_text(f"{STORED}\n")
    return root


def test_a_checkout_is_dated_by_git_not_by_a_stored_file(clone: Path) -> None:
    """In a clone, git's date of the inputs; a stray date file there is not read."""
    (clone / reproducible.DATE_FILE).write_text(f"{STORED}\n")
    assert reproducible.source_date_epoch(root=clone) == COMMIT


def test_a_tree_without_git_is_dated_by_its_stored_file(unpacked: Path) -> None:
    """An unpacked release: the date stored in it, for any inputs."""
    assert reproducible.source_date_epoch(root=unpacked) == STORED
    assert reproducible.source_date_epoch(("drivers/char/memlog",), root=unpacked) == STORED


def test_the_environment_comes_before_git_and_the_stored_file(
    clone: Path, unpacked: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SOURCE_DATE_EPOCH, when set, wins in a clone and in a release's tree."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1234")
    assert reproducible.source_date_epoch(root=clone) == 1234
    assert reproducible.source_date_epoch(root=unpacked) == 1234


def test_a_release_unpacked_inside_a_checkout_is_dated_by_its_file(
    clone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Git would answer for the enclosing checkout: a tree without .git never asks it."""
    inner = clone / "wintermute-0.2.0"
    inner.mkdir()
    (inner / reproducible.DATE_FILE).write_text(f"{STORED}\n")
    assert reproducible.source_date_epoch(root=inner) == STORED


def test_the_default_tree_is_the_repository(
    unpacked: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without ``root``, ``reproducible.REPO`` is the tree dated."""
    monkeypatch.setattr(reproducible, "REPO", unpacked)
    assert reproducible.source_date_epoch() == STORED


def test_no_git_and_no_stored_date_is_one_line_saying_what_to_do(unpacked: Path) -> None:
    """Neither git nor the file: set SOURCE_DATE_EPOCH or build from a release tarball."""
    (unpacked / reproducible.DATE_FILE).unlink()
    with pytest.raises(UserError) as exc:
        reproducible.source_date_epoch(root=unpacked)
    assert str(exc.value) == (
        f"no git and no SOURCE_DATE_EPOCH in {unpacked}: set SOURCE_DATE_EPOCH or build from a "
        "release tarball"
    )


def test_a_stored_date_that_is_not_a_number_is_refused(unpacked: Path) -> None:
    """A damaged date file stops the build, naming the file."""
    (unpacked / reproducible.DATE_FILE).write_text("yesterday\n")
    with pytest.raises(UserError, match=f"{unpacked}/SOURCE_DATE_EPOCH holds 'yesterday'"):
        reproducible.source_date_epoch(root=unpacked)


# --- refusals and notes ------------------------------------------------------


def test_a_release_is_made_from_a_git_clone_only(unpacked: Path, tmp_path: Path) -> None:
    """An unpacked release cannot make another: one line saying releases come from a clone."""
    with pytest.raises(UserError, match="releases are made from a git clone"):
        release.make_release(tmp_path / "out", root=unpacked)
    assert not (tmp_path / "out").exists()


def test_uncommitted_changes_are_refused_by_name(clone: Path, tmp_path: Path) -> None:
    """An edit and an untracked file: refused, both named, --allow-dirty suggested."""
    (clone / "README.md").write_text("edited\n")
    (clone / "notes.txt").write_text("new\n")
    assert release.uncommitted(clone) == ["README.md", "notes.txt"]
    with pytest.raises(UserError) as exc:
        release.make_release(tmp_path / "out", root=clone)
    assert "README.md, notes.txt" in str(exc.value) and "--allow-dirty" in str(exc.value)
    assert not (tmp_path / "out").exists()


def test_notes_hold_the_entry_and_the_commits_since_the_previous_tag(clone: Path) -> None:
    """Commits after v0.1.0 are listed, those before are not; v0.2.0 on HEAD is not 'previous'."""
    _git(clone, "tag", "v0.1.0")
    _commit(clone, {"src/memlog/cli.py": "1"}, "memlog: the first change")
    _commit(clone, {"src/memlog/cli.py": "2"}, "memlog: the second change")
    _git(clone, "tag", "v0.2.0")
    notes = release.release_notes(clone, "0.2.0")
    assert notes.startswith("# wintermute 0.2.0\n\n## Changes\n\n- The ioctls moved")
    commits = notes.split("## Commits since v0.1.0\n\n")[1].splitlines()
    assert [line.rsplit(" (", 1)[0] for line in commits] == [
        "- memlog: the second change",
        "- memlog: the first change",
    ]


def test_notes_without_a_tag_list_every_commit_and_say_when_no_entry(clone: Path) -> None:
    """No tag v* yet: all commits; no Changes entry for the version: said, not invented."""
    _commit(clone, {"src/memlog/cli.py": "1"}, "memlog: a change")
    notes = release.release_notes(clone, "0.2.1")
    assert "README.md's Changes has no entry for 0.2.1" in notes
    assert "## Commits (all: no earlier release tag v*)" in notes
    assert "- memlog: a change (" in notes and "- inputs (" in notes
