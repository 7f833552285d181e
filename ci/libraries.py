"""libmemlog and the Rust crate, built on the host for the VM's tests and the benchmark.

:func:`build_c` builds ``libmemlog/`` with Meson (``-Dwerror=true``) into
``out/build/libmemlog``: the shared library and ``memlog-c-scenario``.
:func:`build_rust` builds the crate's ``memlog-rs-scenario`` example with
Debian's cargo and rustc, offline, into ``out/build/rust``.  Both speak the
protocol described at the top of ``libmemlog/tests/scenario.c``; the guest
is Debian 12 like this host, so their glibc is the guest's.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from wintermute.errors import UserError
from wintermute.paths import REPO, out_dir
from wintermute.run import run

LIBRARY_SOURCE = REPO / "libmemlog"
CRATE = REPO / "rust" / "memlog"
LOG = "libraries-build.log"
# Debian's toolchain, never a rustup one first on a user's PATH
DEBIAN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
C_SCENARIO = "memlog-c-scenario"
RUST_SCENARIO = "memlog-rs-scenario"


def _need(tool: str) -> None:
    if shutil.which(tool, path=DEBIAN_PATH) is None:
        raise UserError(f"{tool} is missing; run scripts/setup-host")


def build_c() -> Path:
    """Build libmemlog; return the build directory (libmemlog.so.0, memlog-c-scenario)."""
    for tool in ("meson", "ninja", "abidiff"):
        _need(tool)
    build = out_dir() / "build" / "libmemlog"
    env = {"PATH": DEBIAN_PATH}
    if not (build / "build.ninja").exists():
        shutil.rmtree(build, ignore_errors=True)
        run(["meson", "setup", "-Dwerror=true", "-Dabi_check=enabled", build, LIBRARY_SOURCE],
            log=LOG, env=env, step="configuring libmemlog (meson)")  # fmt: skip
    run(["meson", "compile", "-C", build], log=LOG, env=env, step="building libmemlog")
    return build


def build_rust() -> Path:
    """Build the crate's scenario example (release); return the binary."""
    _need("cargo")
    target = out_dir() / "build" / "rust"
    env = {
        "PATH": DEBIAN_PATH,
        # The crate's .cargo/config.toml points at Debian's crates; no user's ~/.cargo
        "CARGO_HOME": str(target / "cargo-home"),
        "CARGO_TARGET_DIR": str(target),
    }
    run(["cargo", "build", "--offline", "--release", "--example", RUST_SCENARIO],
        log=LOG, cwd=CRATE, env=env, step="building the Rust crate's scenario (cargo)")  # fmt: skip
    return target / "release" / "examples" / RUST_SCENARIO
