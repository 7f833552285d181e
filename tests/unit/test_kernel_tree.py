"""Preparing the kernel tree: memlog's patch series applied once, patches applied or named."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import tarfile
from pathlib import Path
from unittest import mock

import pytest

from tests.unit.fake_kernel_files import write_base
from wintermute import config
from wintermute.errors import UserError
from wintermute.kernel import tree
from wintermute.kernel.source import Tarball, sha256_of
from wintermute.upstream import driver
from wintermute.upstream.kernel_files import KCONFIG_LINE, MAKEFILE_LINE


@pytest.fixture(autouse=True)
def _out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The series each sync writes goes to a scratch out/, not the repository's."""
    monkeypatch.setenv("WINTERMUTE_OUT", str(tmp_path / "out"))


def _fake_tree(root: Path) -> Path:
    """The few files of a kernel tree that preparing it touches."""
    write_base(root)
    (root / "include" / "uapi" / "linux").mkdir(parents=True)
    (root / "Makefile").write_text("VERSION = 7\n")
    (root / "Kconfig").write_text("")
    return root


LOCALVERSION = ("-20261206120000", "-wintermute")


@pytest.fixture
def key(tmp_path: Path) -> Path:
    path = tmp_path / "signing_key.pem"
    path.write_text("-----BEGIN PRIVATE KEY-----\nfake\n")
    return path


def _cfg(version: str) -> config.Config:
    cfg = config.load()
    return dataclasses.replace(cfg, memlog=dataclasses.replace(cfg.memlog, version=version))


def _sync(root: Path, version: str = "0.1.0", localversion: tuple[str, str] = LOCALVERSION):
    if not (root.parent / tree.PRISTINE).is_dir():  # as extracted_tree and local_tree leave it
        tree.snapshot_base(root)
    patches = tree.write_series(root, _cfg(version))
    return tree.sync(root, memlog_series=patches, localversion=localversion)


def _snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_preparing_twice_changes_nothing(tmp_path: Path, key: Path) -> None:
    """The second sync writes no file: contents and mtimes stay, so make has nothing to redo."""
    root = _fake_tree(tmp_path / "linux")
    first = _sync(root)
    assert "drivers/char/Kconfig" in first and "drivers/char/memlog/memlog_main.c" in first
    before = _snapshot(root)
    assert _sync(root) == []
    assert _snapshot(root) == before


def test_wiring_adds_memlog_once_before_the_menu_ends(tmp_path: Path, key: Path) -> None:
    """drivers/char/Kconfig sources memlog's Kconfig inside the menu; the Makefile builds it."""
    root = _fake_tree(tmp_path / "linux")
    for _ in range(2):
        _sync(root)
    kconfig = (root / "drivers" / "char" / "Kconfig").read_text()
    assert kconfig.count(KCONFIG_LINE) == 1
    assert kconfig.index(KCONFIG_LINE) < kconfig.rindex("endmenu")
    assert (root / "drivers" / "char" / "Makefile").read_text().count(MAKEFILE_LINE) == 1


def test_driver_and_uapi_header_are_the_patch_series_s(tmp_path: Path, key: Path) -> None:
    """The tree's memlog files are the series' form of this repository's: no compat or
    version header, the version a #define; the Makefile the Kbuild's in-tree part."""
    root = _fake_tree(tmp_path / "linux")
    _sync(root, "9.8.7")
    memlog = root / "drivers" / "char" / "memlog"
    for path, text in driver.upstream_files("9.8.7").items():
        assert (root / path).read_text() == text, path
    assert sorted(p.name for p in memlog.iterdir()) == sorted(
        path.rsplit("/", 1)[1] for path in driver.upstream_files("9.8.7") if "/memlog/" in path
    )
    assert not (memlog / "memlog_compat.h").exists() and not (memlog / "Kbuild").exists()
    assert '#define MEMLOG_DRIVER_VERSION\t"9.8.7"' in (memlog / "memlog_main.c").read_text()
    assert (root / "Documentation" / "ABI" / "testing" / "dev-memlog").is_file()


def test_a_file_an_earlier_series_created_and_this_one_does_not_is_removed(
    tmp_path: Path, key: Path
) -> None:
    """memlog-series.json beside the tree lists what the series created; what drops out goes."""
    root = _fake_tree(tmp_path / "linux")
    _sync(root)
    stale = root / "drivers" / "char" / "memlog" / "memlog_old.c"
    stale.write_text("/* from an earlier driver */\n")
    record = tmp_path / tree.APPLIED
    record.write_text(record.read_text().replace("[", '["drivers/char/memlog/memlog_old.c",', 1))
    assert _sync(root) == ["drivers/char/memlog/memlog_old.c (removed)"]
    assert not stale.exists()


def test_edited_driver_file_is_the_only_file_rewritten(tmp_path: Path, key: Path) -> None:
    """After one driver file changes, sync rewrites that file alone."""
    root = _fake_tree(tmp_path / "linux")
    _sync(root)
    main = root / "drivers" / "char" / "memlog" / "memlog_main.c"
    main.write_text("/* stale */\n")
    assert _sync(root) == ["drivers/char/memlog/memlog_main.c"]


def test_release_is_pinned_by_localversion_files(tmp_path: Path) -> None:
    """localversion.10-release and .20-wintermute hold the names' two parts of the release."""
    root = _fake_tree(tmp_path / "linux")
    _sync(root, localversion=("-20261206120000", "-wintermute-debug"))
    texts = [(root / name).read_text() for name in sorted(tree.LOCALVERSION_FILES)]
    assert texts == ["-20261206120000\n", "-wintermute-debug\n"]


def test_signing_key_is_placed_where_kbuild_looks_private_from_the_start(
    tmp_path: Path, key: Path
) -> None:
    """certs/wintermute-signing-key.pem is the key, created 0600 even under umask 000."""
    root = _fake_tree(tmp_path / "linux")
    old = os.umask(0)
    try:
        tree.install_key(root, key)
    finally:
        os.umask(old)
    placed = root / "certs" / "wintermute-signing-key.pem"
    assert placed.read_bytes() == key.read_bytes()
    assert placed.stat().st_mode & 0o777 == 0o600
    tree.remove_key(root)
    assert not placed.exists()


def test_sync_never_writes_the_signing_key(tmp_path: Path) -> None:
    """Bringing the tree up to date leaves no key in it: only install_key places one."""
    root = _fake_tree(tmp_path / "linux")
    _sync(root)
    assert not list(root.rglob("*.pem"))


def _patch(directory: Path, name: str, old: str, new: str) -> Path:
    path = directory / name
    path.write_text(
        f"--- a/drivers/char/Makefile\n+++ b/drivers/char/Makefile\n@@ -1 +1 @@\n-{old}\n+{new}\n"
    )
    return path


def test_patch_that_does_not_apply_is_named(tmp_path: Path) -> None:
    """A patch that does not apply stops with its name."""
    root = _fake_tree(tmp_path / "linux")
    good = _patch(tmp_path, "0001-good.patch", "obj-y += mem.o", "obj-y += mem.o random.o")
    bad = _patch(tmp_path, "0002-bad.patch", "obj-y += nothing-like-this.o", "obj-y += x.o")
    with pytest.raises(UserError, match=r"^patch 0002-bad.patch does not apply"):
        tree.apply_patches(root, [good, bad])


def _tarball(tmp_path: Path, root: Path) -> Tarball:
    path = tmp_path / "linux-7.2.tar.xz"
    with tarfile.open(path, "w:xz") as tar:
        tar.add(root, arcname="linux-7.2")
    return Tarball(path, sha256_of(path), "test tarball")


def test_failed_patch_leaves_no_extracted_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Extracting and patching is all or nothing: after a failing patch no entry looks ready."""
    monkeypatch.setenv("WINTERMUTE_CACHE", str(tmp_path / "cache"))
    tarball = _tarball(tmp_path, _fake_tree(tmp_path / "src"))
    bad = _patch(tmp_path, "0001-bad.patch", "nothing like this", "x")
    with pytest.raises(UserError, match=r"0001-bad\.patch"):
        tree.extracted_tree(tarball, [bad])
    assert [p.name for p in tree.build_root().iterdir() if not p.name.startswith(".")] == []


def test_extracted_tree_is_reused_and_an_unfinished_one_redone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An entry with its .ready marker is reused as is; one without it is extracted again."""
    monkeypatch.setenv("WINTERMUTE_CACHE", str(tmp_path / "cache"))
    tarball = _tarball(tmp_path, _fake_tree(tmp_path / "src"))
    first = tree.extracted_tree(tarball, [])
    (first / "scratch").write_text("kept while the entry is ready")
    assert tree.extracted_tree(tarball, []) == first and (first / "scratch").exists()
    assert tree.tarball_top(first) == "linux-7.2"
    os.unlink(first.parent / tree.READY)  # as if interrupted before the marker was written
    again = tree.extracted_tree(tarball, [])
    assert again == first and not (first / "scratch").exists()
    (again / "scratch").write_text("an entry of an older layout: no pristine/ beside the tree")
    subprocess.run(["rm", "-r", again.parent / tree.PRISTINE], check=True)
    assert tree.extracted_tree(tarball, []) == first and not (first / "scratch").exists()
    assert (first.parent / tree.PRISTINE / "MAINTAINERS").is_file()


def _everything(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_local_tree_and_what_lies_beside_it_are_never_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: Path
) -> None:
    """A user's tree with its own debian/ and a .deb beside it: byte-identical after preparing.

    The build works in a copy in the cache: patches, the driver, the wiring, the
    localversion files, the key and the rendered debian/ all land there.
    """
    from wintermute.packaging import kernel_debian

    monkeypatch.setenv("WINTERMUTE_CACHE", str(tmp_path / "cache"))
    top = tmp_path / "mine"
    root = _fake_tree(top / "linux")
    (root / "debian").mkdir()
    (root / "debian" / "rules").write_text("#!/usr/bin/make -f\n# the user's own\n")
    (root / ".gitignore").write_text("/*\n!/debian/\n")  # as Debian's linux-source has
    (top / "linux-image-6.1.0-mine_1_amd64.deb").write_bytes(b"!<arch>\nthe user's build\n")
    before = _everything(top)
    one = _patch(tmp_path, "0001-one.patch", "obj-y += mem.o", "obj-y += mem.o one.o")
    for _ in range(2):  # a second build: the copy is brought up to date again
        copy = tree.local_tree(root, [one])
        _sync(copy)
        tree.install_key(copy, key)
        monkeypatch.setattr(kernel_debian.rendering, "render_group", _fake_render)
        kernel_debian.render(
            {"names": {"image": "i", "headers": "h"}, "source_date_epoch": 0}, copy
        )
        (copy / "mem.o").write_text("an object the build made")
    assert _everything(top) == before
    assert not copy.is_relative_to(top)
    makefile = (copy / "drivers" / "char" / "Makefile").read_text()
    assert makefile == f"obj-y += mem.o one.o\n{MAKEFILE_LINE}\n"
    assert (copy / "debian" / "control").exists() and (copy / "mem.o").exists()


def _fake_render(env: object, ctx: object, group: str, dest: Path) -> None:
    (dest / "debian").mkdir()
    (dest / "debian" / "control").write_text("Source: linux-wintermute\n")


def test_missing_patch_file_is_named_before_anything_runs(tmp_path: Path) -> None:
    """kernel.yaml naming a patch that is not in patches/ is one line naming it."""
    (tmp_path / "patches").mkdir()
    with pytest.raises(UserError, match=r"kernel.patches names 0009-x.patch, not in .*patches/"):
        tree.patch_paths(["0009-x.patch"], tmp_path)


def test_local_tree_copy_takes_a_patch_that_creates_a_file_build_after_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A patch adding a file applies again on the next build (the copy keeps its files)."""
    monkeypatch.setenv("WINTERMUTE_CACHE", str(tmp_path / "cache"))
    root = _fake_tree(tmp_path / "linux")
    new = tmp_path / "0001-new.patch"
    new.write_text("--- /dev/null\n+++ b/drivers/char/new.c\n@@ -0,0 +1 @@\n+int x;\n")
    for _ in range(2):
        copy = tree.local_tree(root, [new])
    assert (copy / "drivers" / "char" / "new.c").read_text() == "int x;\n"
    assert not (root / "drivers" / "char" / "new.c").exists()


def test_pkcs11_signing_key_stays_in_its_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PKCS#11 URI is handed on as it is: no key made, none placed in the tree."""
    from wintermute.config import Kernel
    from wintermute.kernel import kbuild

    monkeypatch.setenv("WINTERMUTE_CACHE", str(tmp_path / "cache"))
    uri = "pkcs11:token=build;object=modules?pin-source=file:/etc/pin"
    kernel = mock.Mock(spec=Kernel, signing_key=None, signing_key_uri=uri)
    root = _fake_tree(tmp_path / "linux")
    with kbuild.signing_key(kernel) as key:
        assert key == uri
        tree.install_key(root, key)
    assert not (root / "certs" / "wintermute-signing-key.pem").exists()


def test_fresh_signing_key_is_private_and_the_build_keeps_the_callers_umask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key is made 0600 in a 0700 directory; what the build creates meanwhile
    (packages, logs) gets the caller's umask, not the key's 077."""
    from wintermute.config import Kernel
    from wintermute.kernel import kbuild

    monkeypatch.setenv("WINTERMUTE_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("WINTERMUTE_CACHE", str(tmp_path / "cache"))
    kernel = mock.Mock(spec=Kernel, signing_key=None, signing_key_uri=None)
    old = os.umask(0o022)
    try:
        with kbuild.signing_key(kernel) as key:
            assert key.stat().st_mode & 0o777 == 0o600
            assert key.parent.stat().st_mode & 0o777 == 0o700
            made = tmp_path / "a-package.deb"
            made.write_bytes(b"")
            assert made.stat().st_mode & 0o777 == 0o644
        assert not key.exists()
    finally:
        os.umask(old)


def _real_key(path: Path) -> Path:
    subprocess.run(
        ["openssl", "req", "-new", "-nodes", "-x509", "-newkey", "rsa:2048", "-days", "1",
         "-subj", "/CN=test/", "-batch", "-out", path, "-keyout", path],
        check=True, capture_output=True,
    )  # fmt: skip
    return path


def test_the_same_key_installed_again_keeps_its_time_so_vmlinux_is_not_relinked(
    tmp_path: Path,
) -> None:
    """kbuild remakes the certificate in vmlinux when the key file is newer than it."""
    root = _fake_tree(tmp_path / "linux")
    key = _real_key(tmp_path / "key.pem")
    os.utime(key, (1_000_000, 1_000_000))
    tree.install_key(root, key)
    (root / tree.CERTIFICATE).write_bytes(tree.certificate_der(key))  # what kbuild made
    tree.remove_key(root)
    tree.install_key(root, key)
    assert (root / tree.SIGNING_KEY).stat().st_mtime == 1_000_000


def test_another_key_is_newer_than_the_certificate_even_from_an_older_file(
    tmp_path: Path,
) -> None:
    """A different key, even one whose file is older, makes kbuild remake the certificate."""
    root = _fake_tree(tmp_path / "linux")
    first = _real_key(tmp_path / "first.pem")
    tree.install_key(root, first)
    (root / tree.CERTIFICATE).write_bytes(tree.certificate_der(first))
    tree.remove_key(root)
    other = _real_key(tmp_path / "other.pem")
    os.utime(other, (1_000_000, 1_000_000))
    tree.install_key(root, other)
    placed = root / tree.SIGNING_KEY
    assert placed.read_bytes() == other.read_bytes()
    assert placed.stat().st_mtime > (root / tree.CERTIFICATE).stat().st_mtime - 5
    assert placed.stat().st_mtime > 1_000_000
