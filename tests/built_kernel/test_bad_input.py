"""`invoke build-kernel` on bad input: one line naming the cause, its exit code, no package.

Exit 1: something in kernel.yaml or its files to fix.  Exit 2: a download or
build failed.  Each case runs the real command with a kernel.yaml of its own
(``WINTERMUTE_KERNEL_YAML``) and an ``out/`` of its own (``WINTERMUTE_OUT``),
sharing the machine's cache; ``out/kernel/`` must not exist afterwards.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from wintermute import config
from wintermute.paths import REPO

Mutation = Callable[[dict[str, Any], Path], None]


def _build_kernel(
    tmp_path: Path, mutate: Mutation, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    """invoke build-kernel with the default kernel.yaml changed by ``mutate`` (in tmp_path)."""
    desc = tmp_path / "desc"
    (desc / "config").mkdir(parents=True)
    (desc / "patches").mkdir()
    for fragment in (config.DESCRIPTIONS / "config").glob("*.config"):
        (desc / "config" / fragment.name).write_bytes(fragment.read_bytes())
    data = yaml.safe_load(config.KERNEL_YAML.read_text())
    mutate(data["kernel"], desc)
    (desc / "kernel.yaml").write_text(yaml.safe_dump(data))
    env = {
        **os.environ,
        "WINTERMUTE_KERNEL_YAML": str(desc / "kernel.yaml"),
        "WINTERMUTE_OUT": str(tmp_path / "out"),
        **extra_env,
    }
    return subprocess.run(
        [sys.executable, "-m", "invoke", "build-kernel", "--target", "debian"],
        cwd=REPO, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=1800,
    )  # fmt: skip


def _error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The command's last stderr line, which must be its one E: line."""
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("E: "), result.stderr[-2000:]
    assert sum(line.startswith("E: ") for line in lines) == 1, result.stderr[-2000:]
    return lines[-1]


def _no_packages(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert not (out / "kernel").exists()
    assert not [p for p in out.rglob("*") if p.suffix in (".deb", ".zst")]


def _fake_kernel_tarball(path: Path) -> str:
    """A tarball with the files tree preparation reads; returns its sha256."""
    root = path.parent / "linux-0.0.1"
    (root / "drivers" / "char").mkdir(parents=True)
    (root / "drivers" / "char" / "Kconfig").write_text('menu "Character devices"\nendmenu\n')
    (root / "drivers" / "char" / "Makefile").write_text("obj-y += mem.o\n")
    (root / "Makefile").write_text("VERSION = 0\n")
    with tarfile.open(path, "w:xz") as tar:
        tar.add(root, arcname=root.name)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_wrong_sha256_stops_before_extracting(tmp_path: Path) -> None:
    tarball = tmp_path / "linux-0.0.1.tar.xz"
    actual = _fake_kernel_tarball(tarball)

    def mutate(kernel: dict[str, Any], desc: Path) -> None:
        kernel["source"] = {"tarball": {"location": str(tarball), "sha256": "0" * 64}}

    result = _build_kernel(tmp_path, mutate)
    assert result.returncode == 1
    line = _error_line(result)
    assert f"sha256 {actual} does not match kernel.yaml's {'0' * 64}" in line
    assert "nothing was extracted" in line
    _no_packages(tmp_path)


def test_missing_debian_source_package_is_named(tmp_path: Path) -> None:
    def mutate(kernel: dict[str, Any], desc: Path) -> None:
        kernel["source"] = {"debian": {"package": "linux-source-0.1", "suite": "sid"}}

    result = _build_kernel(tmp_path, mutate)
    assert result.returncode == 1
    assert "sid has no package linux-source-0.1" in _error_line(result)
    _no_packages(tmp_path)


def test_patch_that_does_not_apply_is_named(tmp_path: Path) -> None:
    tarball = tmp_path / "linux-0.0.1.tar.xz"
    sha = _fake_kernel_tarball(tarball)

    def mutate(kernel: dict[str, Any], desc: Path) -> None:
        kernel["source"] = {"tarball": {"location": str(tarball), "sha256": sha}}
        (desc / "patches" / "0001-stale.patch").write_text(
            "--- a/drivers/char/Makefile\n+++ b/drivers/char/Makefile\n"
            "@@ -1 +1 @@\n-obj-y += not-this-line.o\n+obj-y += other.o\n"
        )
        kernel["patches"] = ["0001-stale.patch"]

    result = _build_kernel(tmp_path, mutate)
    assert result.returncode == 1
    assert "patch 0001-stale.patch does not apply" in _error_line(result)
    _no_packages(tmp_path)


def test_fragment_option_that_does_not_stick_is_named(tmp_path: Path) -> None:
    """CONFIG_MEMLOG=m cannot stay a module without module support: the option is named."""

    def mutate(kernel: dict[str, Any], desc: Path) -> None:
        (desc / "config" / "no-modules.config").write_text("# CONFIG_MODULES is not set\n")
        kernel["config"]["fragments"] = ["memlog.config", "no-modules.config"]

    result = _build_kernel(tmp_path, mutate)
    assert result.returncode == 1
    line = _error_line(result)
    assert "CONFIG_MEMLOG=m (from memlog.config) became y" in line, line
    _no_packages(tmp_path)


def test_tree_the_packaging_cannot_handle_is_refused_before_configuring(tmp_path: Path) -> None:
    """A kernel without scripts/package/install-extmod-build stops at once, not after a compile."""
    mine = tmp_path / "linux-old"
    for rel, text in (("Makefile", "VERSION = 6\n"), ("Kconfig", ""),
                      ("drivers/char/Kconfig", 'menu "Character devices"\nendmenu\n'),
                      ("drivers/char/Makefile", "obj-y += mem.o\n")):  # fmt: skip
        (mine / rel).parent.mkdir(parents=True, exist_ok=True)
        (mine / rel).write_text(text)

    def mutate(kernel: dict[str, Any], desc: Path) -> None:
        kernel["source"] = {"tree": str(mine)}

    # a cache of its own: the fake tree's copy never joins the machine's cache
    result = _build_kernel(tmp_path, mutate, WINTERMUTE_CACHE=str(tmp_path / "cache"))
    assert result.returncode == 1
    assert "has no scripts/package/install-extmod-build" in _error_line(result)
    assert "make olddefconfig" not in result.stderr and "compiling" not in result.stderr
    _no_packages(tmp_path)


def test_unknown_config_base_is_named(tmp_path: Path) -> None:
    def mutate(kernel: dict[str, Any], desc: Path) -> None:
        kernel["config"]["base"] = "smallconfig"

    result = _build_kernel(tmp_path, mutate)
    assert result.returncode == 1
    assert "unknown config base 'smallconfig'" in _error_line(result)
    _no_packages(tmp_path)


def test_failed_download_exits_2(tmp_path: Path) -> None:
    """A download failure is not the user's input: exit 2, naming the URL."""

    def mutate(kernel: dict[str, Any], desc: Path) -> None:
        url = "http://127.0.0.1:9/linux-0.0.1.tar.xz"  # discard port: nothing listens
        kernel["source"] = {"tarball": {"location": url, "sha256": "0" * 64}}

    result = _build_kernel(tmp_path, mutate)
    assert result.returncode == 2
    assert "downloading http://127.0.0.1:9/linux-0.0.1.tar.xz failed" in _error_line(result)
    _no_packages(tmp_path)


pytestmark = pytest.mark.build
