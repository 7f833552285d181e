"""libmemlog and the Rust crate build on this host, warning-free, and pass their own tests.

What needs no device: ``meson test`` (the library's checks on files and
/dev/null, and abi/check-abi against the committed baseline) and ``cargo
test`` (layouts and ioctl numbers against the C header, record parsing, the
scenario's commands on /dev/null).  The device behaviour is checked in the
VM by ``tests/system/test_libmemlog.py``.  Both builds go to ``out/build``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from ci import libraries
from wintermute.paths import REPO, out_dir


def test_libmemlog_builds_with_warnings_as_errors_and_passes_meson_test() -> None:
    """meson setup -Dwerror=true -Dabi_check=enabled; meson test: the library and abi suites."""
    build = libraries.build_c()
    result = subprocess.run(["meson", "test", "-C", str(build), "--print-errorlogs"],
                            capture_output=True, text=True, env=_debian_env())  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:]
    assert " library " in result.stdout and " abi " in result.stdout
    assert (build / "libmemlog.so.0").is_symlink()


def test_libmemlog_exports_exactly_the_version_script_s_symbols_at_memlog_0_1() -> None:
    """nm -D: every defined symbol is in libmemlog.map, versioned @@MEMLOG_0.1."""
    build = libraries.build_c()
    out = subprocess.run(["nm", "-D", "--defined-only", str(build / "libmemlog.so.0")],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    symbols = {line.split()[-1] for line in out.splitlines()}
    script = (libraries.LIBRARY_SOURCE / "src" / "libmemlog.map").read_text()
    body = script.split("global:")[1].split("local:")[0]
    names = {name.strip() for name in body.split(";") if name.strip()}
    assert symbols == {f"{name}@@MEMLOG_0.1" for name in names} | {"MEMLOG_0.1"}


def test_the_rust_crate_passes_cargo_test_offline_with_debian_s_toolchain() -> None:
    """cargo test --offline (rustc 1.63, libc from /usr/share/cargo/registry): no failure."""
    target = out_dir() / "build" / "rust"
    env = {**_debian_env(), "CARGO_HOME": str(target / "cargo-home"),
           "CARGO_TARGET_DIR": str(target)}  # fmt: skip
    result = subprocess.run(["cargo", "test", "--offline"], cwd=libraries.CRATE,
                            capture_output=True, text=True, env=env)  # fmt: skip
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "warning" not in result.stderr, result.stderr[-3000:]
    assert result.stdout.count("test result: ok") >= 3


def test_the_rust_scenario_builds_and_runs(tmp_path: Path) -> None:
    """The release example the VM copies in: `stats` on /dev/null fails with ENOTTY, exit 1."""
    exe = libraries.build_rust()
    result = subprocess.run([str(exe), "--device", "/dev/null", "stats"],
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.endswith("(ENOTTY)\n")


def _debian_env() -> dict[str, str]:
    return {"PATH": libraries.DEBIAN_PATH, "HOME": "/nonexistent", "LC_ALL": "C.UTF-8"}


def test_the_readme_s_c_and_rust_examples_are_the_ones_built_here() -> None:
    """README.md quotes libmemlog/examples/hello.c and rust/memlog/examples/hello.rs whole,
    without their licence lines; both are built above (meson; cargo test builds examples)."""
    readme = (REPO / "README.md").read_text()
    for path in (libraries.LIBRARY_SOURCE / "examples" / "hello.c",
                 libraries.CRATE / "examples" / "hello.rs"):  # fmt: skip
        body = path.read_text().split("\n", 2)[2]
        assert body in readme, path
