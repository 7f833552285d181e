"""The pacman repository's layout, its pacman.conf section, and what publish refuses up front."""

from __future__ import annotations

from pathlib import Path

import pytest

from wintermute.errors import UserError
from wintermute.repository import pacman
from wintermute.repository.keys import ArchiveKey

# Never used for signing: every refusal below comes before gpg runs.
NO_KEY = ArchiveKey(Path("/nonexistent/gnupg"), "0" * 40, "a test")


@pytest.fixture(autouse=True)
def _out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Logs of a publish that got further than it should go to tmp_path, not out/."""
    monkeypatch.setenv("WINTERMUTE_OUT", str(tmp_path / "out"))


def test_the_repository_directory_is_arch_s_repo_os_arch_layout(tmp_path: Path) -> None:
    """dest/<name>/os/<arch>: what Server = <url>/$repo/os/$arch names."""
    assert pacman.repository_dir(tmp_path, "wintermute", "x86_64") == (
        tmp_path / "wintermute" / "os" / "x86_64"
    )


def test_the_snippet_requires_signatures_and_names_the_server_with_repo_and_arch() -> None:
    """[name], SigLevel = Required, Server = URL/$repo/os/$arch (pacman expands both)."""
    assert pacman.snippet("wintermute", "https://example.invalid/arch") == (
        "[wintermute]\nSigLevel = Required\nServer = https://example.invalid/arch/$repo/os/$arch\n"
    )


@pytest.mark.parametrize(
    ("name", "arch"),
    [
        ("memlog-tools-0.2.0-1-any.pkg.tar.zst", "any"),
        ("libmemlog-0.2.0-1-x86_64.pkg.tar.zst", "x86_64"),
        ("linux-wintermute-headers-7.2.13-1-x86_64.pkg.tar.zst", "x86_64"),
    ],
)
def test_the_architecture_comes_from_the_package_file_name(name: str, arch: str) -> None:
    """NAME-VERSION-RELEASE-ARCH.pkg.tar.zst: the last field."""
    assert pacman.package_arch(Path(name)) == arch


def test_the_files_a_database_lists_are_its_filename_entries() -> None:
    """Each %FILENAME% value of the desc entries, and nothing else (not %NAME%, not %BASE%)."""
    desc = (
        "%FILENAME%\nmemlog-tools-0.2.1-1-any.pkg.tar.zst\n\n%NAME%\nmemlog-tools\n\n"
        "%FILENAME%\nlibmemlog-0.2.1-1-x86_64.pkg.tar.zst\n\n%BASE%\nlibmemlog\n"
    )
    assert pacman.listed_files(desc) == {
        "memlog-tools-0.2.1-1-any.pkg.tar.zst",
        "libmemlog-0.2.1-1-x86_64.pkg.tar.zst",
    }


@pytest.mark.parametrize("name", ["memlog-tools_0.2.0-1_all.deb", "memlog.pkg.tar.zst"])
def test_a_file_that_is_no_pacman_package_is_refused(name: str) -> None:
    """A .deb, or a name without VERSION-RELEASE-ARCH: a UserError naming the form expected."""
    with pytest.raises(UserError, match=r"is not a pacman package"):
        pacman.package_arch(Path(name))


def test_publish_refuses_a_package_of_another_architecture_before_writing(tmp_path: Path) -> None:
    """An aarch64 package is not put into the x86_64 repository; nothing is created."""
    package = tmp_path / "libmemlog-0.2.0-1-aarch64.pkg.tar.zst"
    package.write_bytes(b"package")
    with pytest.raises(UserError, match=r"built for aarch64, not x86_64"):
        pacman.publish([package], tmp_path / "repo", NO_KEY)
    assert not (tmp_path / "repo").exists()


def test_publish_refuses_nothing_to_publish(tmp_path: Path) -> None:
    """An empty list is a mistake (no invoke arch yet), not an empty repository."""
    with pytest.raises(UserError, match=r"no \.pkg\.tar\.zst file to publish"):
        pacman.publish([], tmp_path / "repo", NO_KEY)


def test_publish_refuses_the_same_version_with_other_bytes(tmp_path: Path) -> None:
    """A published file is never replaced by other contents: a rebuild needs a new release."""
    package = tmp_path / "memlog-tools-0.2.0-1-any.pkg.tar.zst"
    package.write_bytes(b"rebuilt")
    published = pacman.repository_dir(tmp_path / "repo", "wintermute", "x86_64") / package.name
    published.parent.mkdir(parents=True)
    published.write_bytes(b"first build")
    with pytest.raises(UserError, match=r"already published .* with other contents"):
        pacman.publish([package], tmp_path / "repo", NO_KEY)
    assert published.read_bytes() == b"first build"
    assert sorted(p.name for p in published.parent.iterdir()) == [package.name]
