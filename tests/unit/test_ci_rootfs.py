"""The VM image's inputs: cache key, package list, APT sources, guest config."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ci import rootfs


@pytest.fixture
def rootfs_inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of ci/rootfs to change without touching the repository."""
    copy = tmp_path / "rootfs"
    shutil.copytree(rootfs.ROOTFS_DIR, copy)
    monkeypatch.setattr(rootfs, "PACKAGES_FILE", copy / "packages.txt")
    monkeypatch.setattr(rootfs, "SOURCES_DIR", copy / "sources")
    monkeypatch.setattr(rootfs, "OVERLAY_DIR", copy / "overlay")
    return copy


def test_image_key_is_stable_for_the_same_inputs(rootfs_inputs: Path) -> None:
    """The same inputs give the same cache key."""
    assert rootfs.cache_key("6.1.1-1") == rootfs.cache_key("6.1.1-1")


def test_image_key_changes_when_the_package_list_changes(rootfs_inputs: Path) -> None:
    """Adding a package to packages.txt makes a new image."""
    before = rootfs.cache_key("6.1.1-1")
    with (rootfs_inputs / "packages.txt").open("a") as fh:
        fh.write("strace\n")
    assert rootfs.cache_key("6.1.1-1") != before


def test_image_key_changes_when_a_guest_config_file_changes(rootfs_inputs: Path) -> None:
    """Editing a file of the overlay makes a new image."""
    before = rootfs.cache_key("6.1.1-1")
    (rootfs_inputs / "overlay" / "etc" / "hostname").write_text("other\n")
    assert rootfs.cache_key("6.1.1-1") != before


def test_image_key_changes_with_the_kernel_version(rootfs_inputs: Path) -> None:
    """A new linux-image-amd64 makes a new image (its kernel must match the host's headers)."""
    assert rootfs.cache_key("6.1.1-1") != rootfs.cache_key("6.1.2-1")


def test_package_list_ignores_comments_and_blank_lines() -> None:
    """packages.txt lists package names only."""
    names = rootfs.packages()
    assert "openssh-server" in names and "linux-image-amd64" in names
    assert all(name and not name.startswith("#") and " " not in name for name in names)


def test_image_key_ignores_overlay_permission_bits_git_does_not_keep(rootfs_inputs: Path) -> None:
    """A checkout made under another umask (0664 instead of 0644) gives the same key."""
    hostname = rootfs_inputs / "overlay" / "etc" / "hostname"
    hostname.chmod(0o644)
    before = rootfs.cache_key("6.1.1-1")
    hostname.chmod(0o664)
    assert rootfs.cache_key("6.1.1-1") == before


def test_image_key_changes_when_a_guest_file_becomes_executable(rootfs_inputs: Path) -> None:
    """The executable bit reaches the guest, so it is an input."""
    hostname = rootfs_inputs / "overlay" / "etc" / "hostname"
    hostname.chmod(0o644)
    before = rootfs.cache_key("6.1.1-1")
    hostname.chmod(0o755)
    assert rootfs.cache_key("6.1.1-1") != before


def test_image_key_changes_when_the_apt_sources_change(rootfs_inputs: Path) -> None:
    """Another mirror or suite makes a new image."""
    before = rootfs.cache_key("6.1.1-1")
    with (rootfs_inputs / "sources" / "bookworm.list").open("a") as fh:
        fh.write("deb http://deb.debian.org/debian bookworm-backports main\n")
    assert rootfs.cache_key("6.1.1-1") != before


def test_image_key_changes_with_the_recipe_version(
    rootfs_inputs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bumping RECIPE (build steps changed) makes a new image."""
    before = rootfs.cache_key("6.1.1-1")
    monkeypatch.setattr(rootfs, "RECIPE", rootfs.RECIPE + "-next")
    assert rootfs.cache_key("6.1.1-1") != before


@pytest.mark.parametrize("suite", rootfs.SUITES)
def test_apt_sources_are_the_three_main_lines_of_the_suite(suite: str) -> None:
    """Each image is built from Debian's own mirrors only, never the host's sources."""
    lines = [line for line in rootfs.sources_file(suite).read_text().splitlines() if line.strip()]
    assert lines == [
        f"deb http://deb.debian.org/debian {suite} main",
        f"deb http://deb.debian.org/debian {suite}-updates main",
        f"deb http://deb.debian.org/debian-security {suite}-security main",
    ]


@pytest.mark.parametrize("suite", rootfs.SUITES)
def test_mmdebstrap_is_given_the_suite_and_its_sources_file_explicitly(
    suite: str, tmp_path: Path
) -> None:
    """mmdebstrap reads ci/rootfs/sources/<suite>.list, as root, with the package list."""
    argv = rootfs._mmdebstrap_argv(tmp_path / "root", suite)
    assert argv[0] == "mmdebstrap" and "--mode=root" in argv
    assert argv[-3:] == [suite, str(tmp_path / "root"), str(rootfs.sources_file(suite))]
    assert any(a.startswith("--include=") and "openssh-server" in a for a in argv)


def test_the_suite_is_part_of_the_image_key(rootfs_inputs: Path) -> None:
    """The same kernel version in another suite is another image."""
    assert rootfs.cache_key("6.12.1-1", "bookworm") != rootfs.cache_key("6.12.1-1", "trixie")


def test_an_unknown_guest_suite_is_one_line_naming_the_suites(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """WINTERMUTE_GUEST_SUITE=buster is refused before anything is built."""
    from wintermute.errors import UserError

    monkeypatch.setenv(rootfs.SUITE_ENV, "buster")
    with pytest.raises(UserError, match="bookworm, trixie"):
        rootfs.guest_suite()


def test_pruning_leaves_another_suites_image_alone(tmp_path: Path) -> None:
    """An old trixie entry is not an older bookworm image: only same-suite entries go."""
    import json
    import os

    keep = tmp_path / "keep"
    for name, suite in (("keep", "bookworm"), ("old-bookworm", "bookworm"), ("trixie", "trixie")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "meta.json").write_text(json.dumps({"suite": suite}))
        os.utime(tmp_path / name, (0, 0))
    rootfs._prune(keep, "bookworm")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep", "trixie"]


def test_public_key_unit_runs_before_sshd_and_only_with_a_key() -> None:
    """The per-run key is installed before ssh.service starts, from the kernel command line."""
    unit = (rootfs.OVERLAY_DIR / "etc/systemd/system/wintermute-ssh-key.service").read_text()
    assert "Before=ssh.service" in unit
    assert "ConditionKernelCommandLine=wintermute.ssh_key" in unit


def test_guest_sshd_allows_root_with_keys_only() -> None:
    """Root logs in with a key; passwords are refused."""
    conf = (rootfs.OVERLAY_DIR / "etc/ssh/sshd_config.d/wintermute.conf").read_text().split("\n")
    assert "PermitRootLogin prohibit-password" in conf
    assert "PasswordAuthentication no" in conf


def test_disk_image_has_one_bootable_linux_partition_holding_the_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sfdisk's MBR label, the ext4 file system at 1 MiB with the tree's files (no mounting)."""
    import json
    import subprocess

    tree = tmp_path / "root"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "hostname").write_text("wintermute-vm\n")
    disk = tmp_path / "image.raw"
    monkeypatch.setattr(rootfs, "IMAGE_SIZE", "16M")
    rootfs._make_disk(tree, disk)
    table = json.loads(subprocess.run(
        ["sfdisk", "--json", disk], capture_output=True, text=True, check=True
    ).stdout)["partitiontable"]  # fmt: skip
    assert table["label"] == "dos"
    [part] = table["partitions"]
    assert (part["start"], part["size"], part["type"]) == (2048, 16 * 2048, "83")
    assert part.get("bootable") is True
    fs = tmp_path / "fs.raw"
    with disk.open("rb") as src, fs.open("wb") as dst:
        src.seek(2048 * 512)
        dst.write(src.read())
    cat = subprocess.run(
        ["debugfs", "-R", "cat /etc/hostname", fs], capture_output=True, text=True, check=True
    )
    assert cat.stdout == "wintermute-vm\n"


def test_guest_mounts_its_root_from_the_first_partition() -> None:
    """fstab names the partition the -kernel command line and GRUB's root are."""
    fstab = (rootfs.OVERLAY_DIR / "etc" / "fstab").read_text().split()
    assert fstab[:3] == ["/dev/vda1", "/", "ext4"]


def test_guest_grub_talks_on_the_serial_console_and_never_waits_long() -> None:
    """The boot loader's menu and the kernel's messages reach the run's console.log."""
    cfg = (rootfs.OVERLAY_DIR / "etc" / "default" / "grub.d" / "wintermute-vm.cfg").read_text()
    assert "GRUB_TERMINAL=serial" in cfg
    assert 'GRUB_CMDLINE_LINUX="console=ttyS0 panic=-1"' in cfg
    assert "GRUB_TIMEOUT=1" in cfg
