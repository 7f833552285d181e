"""The kernel source: a tarball whose sha256 does not match stops before anything is used."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from wintermute.config import KernelSource
from wintermute.errors import InfraError, UserError
from wintermute.kernel import source

DATA = b"not really a kernel, but bytes with a checksum\n"
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WINTERMUTE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """An http server on localhost serving tmp_path/www."""
    www = tmp_path / "www"
    www.mkdir()
    (www / "linux-7.2.tar.xz").write_bytes(DATA)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_local_tarball_with_its_sha256_is_used_in_place(tmp_path: Path) -> None:
    path = tmp_path / "linux.tar.xz"
    path.write_bytes(DATA)
    assert source.checked_tarball(str(path), SHA) == source.Tarball(path, SHA, str(path))


def test_local_tarball_with_a_wrong_sha256_is_refused_naming_both_sums(tmp_path: Path) -> None:
    path = tmp_path / "linux.tar.xz"
    path.write_bytes(DATA)
    with pytest.raises(UserError, match=f"sha256 {SHA} does not match kernel.yaml's {'0' * 64}"):
        source.checked_tarball(str(path), "0" * 64)


def test_downloaded_tarball_is_cached_by_its_sha256(server: str, cache: Path) -> None:
    found = source.checked_tarball(f"{server}/linux-7.2.tar.xz", SHA)
    assert found.path == cache / "kernel-sources" / "sha256" / SHA / "linux-7.2.tar.xz"
    assert found.path.read_bytes() == DATA


def test_download_with_a_wrong_sha256_leaves_nothing_in_the_cache(server: str, cache: Path) -> None:
    """The mismatch is found before the download is kept: no entry, no temporary left."""
    with pytest.raises(UserError, match="does not match"):
        source.checked_tarball(f"{server}/linux-7.2.tar.xz", "1" * 64)
    assert list((cache / "kernel-sources" / "sha256").iterdir()) == []


def test_failed_download_is_an_infrastructure_error(server: str, cache: Path) -> None:
    with pytest.raises(InfraError, match=r"downloading .*/missing\.tar\.xz failed"):
        source.checked_tarball(f"{server}/missing.tar.xz", SHA)
    assert list((cache / "kernel-sources" / "sha256").iterdir()) == []


def test_local_tree_without_a_kernel_makefile_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="is not a kernel tree"):
        source.resolve(KernelSource(tree=tmp_path))


def test_debian_package_url_is_apts_pool_url_over_https(monkeypatch: pytest.MonkeyPatch) -> None:
    """The PKGBUILD's URL for linux-source-X.Y: what apt-get --print-uris names, in https."""
    printed = (
        "'http://deb.debian.org/debian/pool/main/l/linux/linux-source-7.2_7.2.13-1_all.deb' "
        "linux-source-7.2_7.2.13-1_all.deb 164108840 SHA256:30a8\n"
    )
    seen: list[list[str]] = []
    monkeypatch.setattr(source, "capture", lambda argv: seen.append(argv) or printed)
    url = source.archive_url("linux-source-7.2", "7.2.13-1", "sid")
    assert url == (
        "https://deb.debian.org/debian/pool/main/l/linux/linux-source-7.2_7.2.13-1_all.deb"
    )
    assert seen[0][-3:] == ["--print-uris", "download", "linux-source-7.2=7.2.13-1"]


def test_cache_entry_without_its_debian_package_is_fetched_again(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An entry from before the .deb was kept (tarball only) is not taken as complete."""
    entry = cache / "kernel-sources" / "debian" / "linux-source-7.2_7.2.13-1@sid"
    entry.mkdir(parents=True)
    (entry / "linux-source-7.2.tar.xz").write_bytes(DATA)
    fetched: list[Path] = []

    def fetch(package: str, version: str, suite: str, where: Path) -> None:
        fetched.append(where)
        deb = where / "linux-source-7.2_7.2.13-1_all.deb"
        deb.write_bytes(b"a package")
        meta = {"deb": deb.name, "url": "https://x/y.deb", "sha256": "0" * 64,
                "member": "./usr/src/linux-source-7.2.tar.xz"}  # fmt: skip
        (where / source.DEB_META).write_text(json.dumps(meta))

    monkeypatch.setattr(source, "debian_version", lambda package, suite: "7.2.13-1")
    monkeypatch.setattr(source, "_fetch_debian", fetch)
    tarball = source.debian_tarball("linux-source-7.2", "sid")
    assert fetched == [entry]
    assert tarball.deb is not None and tarball.deb.url == "https://x/y.deb"
    assert source.debian_tarball("linux-source-7.2", "sid").deb == tarball.deb
    assert fetched == [entry]  # complete now: not fetched again
