"""invoke tasks: thin entry points; the work is done in src/wintermute and ci/.

``invoke --list`` shows them; ``invoke --help TASK`` explains one.  Every
task turns the toolkit's errors into one ``E: ...`` line and a non-zero exit
(1: something to fix on your side, 2: a build, download or VM step failed).
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from invoke import Context, Exit, task

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "src"))

from wintermute.errors import WintermuteError


def _edge(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn toolkit errors into one line on stderr and the error's exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except WintermuteError as exc:
            first, _, rest = str(exc).partition("\n")
            if rest and os.environ.get("WINTERMUTE_VERBOSE"):
                print(rest, file=sys.stderr)
            raise Exit(f"E: {first}", code=exc.exit_code) from None
        except KeyboardInterrupt:
            raise Exit("E: interrupted", code=130) from None

    return wrapper


def _pytest(*args: str) -> None:
    """Run pytest from this venv; its exit code becomes the task's."""
    code = subprocess.call([sys.executable, "-m", "pytest", *args])
    if code != 0:
        raise Exit(code=code)


@task(help={"release": "kernel release of the installed headers (default: the newest)"})
@_edge
def build_module(c: Context, release: str | None = None) -> None:
    """Build memlog.ko out of tree against installed linux-headers (W=1, warnings fail)."""
    from wintermute import module_build

    result = module_build.build_for_host_headers(release)
    module_build.require_clean(result)
    print(result.ko)


def _matrix_help() -> str:
    """build-matrix's --series help: the series of wintermute-kernel/series.yaml."""
    try:
        from wintermute.config import kernel_matrix

        choices = ", ".join(f"{row.series} ({row.suite})" for row in kernel_matrix())
    except (ImportError, WintermuteError) as exc:
        return f"one kernel series of wintermute-kernel/series.yaml ({exc}); default: all"
    return f"one kernel series: {choices}, from wintermute-kernel/series.yaml; default: all"


@task(help={"series": _matrix_help()})
@_edge
def build_matrix(c: Context, series: str | None = None) -> None:
    """Compile the driver in-tree and out-of-tree against Debian's tree of each kernel series.

    The series, and the Debian suite whose linux-source-X.Y package provides
    each, are listed in wintermute-kernel/series.yaml; the oldest is the oldest
    kernel memlog supports.
    """
    from wintermute import kernel_trees, module_build

    for name in [series] if series else list(kernel_trees.SERIES):
        tree = kernel_trees.prepared_tree(name)
        module_build.require_clean(
            module_build.build_out_of_tree(tree, label=f"{name}-out-of-tree")
        )
        module_build.require_clean(module_build.build_in_tree(name))
        print(f"{name}: in-tree and out-of-tree builds are warning-free")


@task(
    help={
        "target": "debian or arch (repeatable); default: both",
    },
    iterable=["target"],
)
@_edge
def build_kernel(c: Context, target: list[str] | None = None) -> None:
    """Build linux-wintermute (memlog in-tree) as kernel.yaml says; package it for Debian and Arch.

    Source, patches, config base and fragments, release revision: kernel.yaml's
    kernel section.  The tree, downloads and ccache stay in the cache, so the
    next build is incremental.  Packages: out/kernel/debian and out/kernel/arch
    (none are left there by a failed build).  Logs: out/logs/kernel-*.log;
    step timings: out/kernel-build-timings.json.  Exit 1: fix kernel.yaml or
    its files (the E: line says what); exit 2: a download or build failed.
    """
    from wintermute.kernel.build import TARGETS
    from wintermute.kernel.build import build_kernel as build

    result = build(target or TARGETS)
    for paths in result.packages.values():
        for path in paths:
            print(path)


@task(
    help={
        "dest": "directory to write the patches to (emptied first); default: out/patches",
        "no_check": "write the series only: no checkpatch, no build of each patch",
    }
)
@_edge
def patch_series(c: Context, dest: str | None = None, no_check: bool = False) -> None:
    """Write memlog as a git format-patch series against the newest supported kernel.

    The series (cover letter, the driver, its documentation, its selftest;
    wintermute-kernel/upstream/series.yaml says what each patch holds) is made
    against Debian's tree of the newest series of wintermute-kernel/series.yaml
    (downloaded and prepared once, cached), checked to apply with git am, then
    each patch is checked with that tree's checkpatch.pl --strict and built on
    its own with W=1 (the driver, and the selftest once it is in): any
    finding fails the task (exit 1).  build-kernel applies the same series.
    Log: out/logs/patch-series.log.
    """
    from pathlib import Path

    from wintermute.upstream import check

    for path in check.patch_series(Path(dest) if dest else None, verify=not no_check):
        print(path)


@task
@_edge
def bench_kernel(c: Context) -> None:
    """Measure the edit-to-.deb loop of build-kernel next to the plain incremental make.

    Needs a built tree (run invoke build-kernel first).  Report:
    out/bench/kernel-build.md (and .json), with the last full build's steps.
    """
    from wintermute.kernel import bench

    print(bench.bench())


@task
@_edge
def render(c: Context) -> None:
    """Render templates/ with kernel.yaml's values into out/render (never into the source tree)."""
    from wintermute.packaging import targets

    print(targets.render())


@task
@_edge
def deb(c: Context) -> None:
    """Build the Debian source and binary packages into out/debian/; lintian warnings fail."""
    from wintermute.packaging import debian, targets

    for path in debian.build(targets.render()):
        print(path)


@task
@_edge
def arch(c: Context) -> None:
    """Build the Arch packages (PKGBUILD + .SRCINFO, makepkg as a build user) into out/arch/."""
    from wintermute.packaging import arch as arch_packaging
    from wintermute.packaging import targets

    for path in arch_packaging.build(targets.render()):
        print(path)


@task(
    help={
        "dest": "directory to publish into (default: out/repository; its key is kept)",
        "url": "where DEST is served (default: kernel.yaml's repository.url)",
    }
)
@_edge
def repository(c: Context, dest: str | None = None, url: str | None = None) -> None:
    """Publish out/'s packages into signed APT and pacman repositories (out/repository/).

    Takes what invoke deb, arch and build-kernel left in out/; signs with the
    repository's archive key ($WINTERMUTE_ARCHIVE_KEY, kernel.yaml's
    repository.signing_key, or one made once for DEST and kept in
    ~/.local/share/wintermute/keys). Serve DEST/apt and DEST/arch.
    """
    from pathlib import Path

    from wintermute.repository import publish

    result = publish.publish(Path(dest) if dest else None, url)
    print(f"{result.dest}: {len(result.debs)} .deb, {len(result.arch_packages)} Arch packages, "
          f"signed by {result.fingerprint} ({result.key_origin})")  # fmt: skip


@task(help={"allow_dirty": "release HEAD although the working tree has uncommitted changes"})
@_edge
def release(c: Context, allow_dirty: bool = False) -> None:
    """Release HEAD: wintermute-VERSION.tar.gz, its signature and notes, into out/release/.

    The tarball is git archive of HEAD with the source date stored in it
    (a build from the unpacked tree needs no git), the same bytes for the same
    commit; .asc: its signature by the release directory's archive key (made
    once, kept in ~/.local/share/wintermute/keys), whose public key is written
    beside it (gpgv --keyring ./wintermute-release-key.pgp X.tar.gz.asc X.tar.gz);
    .md: the version's entry of README.md's Changes and the commits since the
    previous tag v*.  Refuses uncommitted changes unless --allow-dirty.
    """
    from wintermute import release as releasing

    made = releasing.make_release(allow_dirty=allow_dirty)
    for path in made.files:
        print(path)
    print(f"signed by {made.fingerprint} ({made.key_origin})", file=sys.stderr)


@task(help={"debs": "install the .debs in this directory instead of building them"})
@_edge
def dkms_install(c: Context, debs: str | None = None) -> None:
    """Install memlog on this Debian machine: build the packages, apt-get install them.

    DKMS builds the module for every kernel with headers; the group, udev rule,
    sysctl and autoload come with memlog-tools; the module is then loaded.
    Refuses, before installing anything, without headers for the running kernel.
    Run again, it changes nothing.
    """
    from pathlib import Path

    from wintermute.dkms_install import dkms_install as install

    install(Path(debs) if debs else None)


@task(
    help={
        "keep": "leave the guest running afterwards and print how to ssh in and stop it"
        " (DKMS path only)",
        "k": "only checks matching this pytest -k expression",
        "kernel": "stock: memlog-dkms on Debian's kernel (default); "
        "built: the linux-wintermute kernel from build-kernel",
        "suite": "the guest's Debian suite for --kernel stock: bookworm (default) or trixie",
    }
)
@_edge
def vm_verify(
    c: Context,
    keep: bool = False,
    k: str | None = None,
    kernel: str = "stock",
    suite: str | None = None,
) -> None:
    """Install the packages in the VM with apt-get as a user would, boot, run the testinfra suite.

    --kernel stock (default): build memlog-dkms and memlog-tools, install them
    on the image's Debian kernel, reboot, check; then install a second kernel,
    upgrade, remove and purge the packages, and run dkms-install in the guest
    (tests/system; timings: out/vm-verify-timings.json). --suite trixie: the
    same on a Debian 13 guest, without the second kernel (it comes from
    bookworm-backports); report out/junit-system-trixie.xml.

    --kernel built: build linux-wintermute from kernel.yaml (as build-kernel does),
    install linux-image, linux-headers with apt-get, boot that kernel, run the
    driver's functional suite on its in-tree module, install memlog-tools,
    reboot, check; then memlog-dkms on top (tests/built_kernel; also the
    package checks and bad-input cases; timings: out/vm-built-kernel-timings.json).

    Exit 1: a check failed; exit 2: a build, boot or install step failed.
    """
    if kernel == "built":
        from wintermute import config

        if suite is not None:
            raise Exit("E: --suite goes with --kernel stock (the built kernel's guest is bookworm)")

        os.environ["WINTERMUTE_BUILT_KERNEL_YAML"] = str(config.default_path())
        _pytest("tests/built_kernel", "--junitxml=out/junit-built-kernel.xml",
                *(["-k", k] if k else []))  # fmt: skip
        return
    if kernel != "stock":
        raise Exit(f"E: --kernel {kernel!r}: choose stock or built", code=1)
    from ci import package_verify, rootfs
    from wintermute import config

    if suite is not None and suite not in rootfs.SUITES:
        raise Exit(f"E: --suite {suite!r}: choose {' or '.join(rootfs.SUITES)}", code=1)
    code = package_verify.verify(
        config.default_path(), keep=keep, pytest_args=("-k", k) if k else (), suite=suite
    )
    if code:
        raise Exit(code=1)


@task(help={"suite": "bookworm (default) or trixie"})
@_edge
def image(c: Context, suite: str = "bookworm") -> None:
    """Build (or reuse) the cached Debian root filesystem image for the VM (bookworm or trixie)."""
    from ci import rootfs

    if suite not in rootfs.SUITES:
        raise Exit(f"E: --suite {suite!r}: choose {' or '.join(rootfs.SUITES)}", code=1)
    img = rootfs.ensure_image(suite)
    print(f"{img.path} (kernel {img.kernel_release})")


@task(
    help={
        "command": "run this shell command in the guest instead of an interactive shell",
        "show_command": "print the QEMU command a boot would run, and boot nothing",
    }
)
@_edge
def vm_shell(c: Context, command: str | None = None, show_command: bool = False) -> None:
    """Boot the VM (with a throw-away overlay) and open a shell, or run --command, in it.

    The task's exit status is the guest command's (or shell's).
    """
    from ci import vm

    if show_command:
        print(vm.show_command())
        return
    code = vm.shell(command)
    if code:
        raise Exit(code=code)


@task(help={"k": "only tests matching this pytest -k expression"})
def vm_test(c: Context, k: str | None = None) -> None:
    """Run the driver's functional suite inside the VM against a freshly built module."""
    _pytest("tests/functional", "--junitxml=out/junit-functional.xml", *(["-k", k] if k else []))


@task(
    help={
        "rounds": "rounds of every measure, interleaved (default: the guest program's, 5)",
        "duration": "seconds of each write measure (default: the guest program's, 0.5)",
    }
)
@_edge
def bench(c: Context, rounds: str | None = None, duration: str | None = None) -> None:
    """Benchmark memlog in the VM: write rates next to a pipe, /dev/null, /dev/kmsg; reads.

    Two boots each run bench/memlog_bench.c (static, built here) against a
    freshly built module: records/s and MB/s for 64 B to 64 KiB blobs, 1
    writer against 4 of 4 uids, the time to read N, 2N and N records over 256
    uids, ring bytes per record; each measure several rounds, interleaved;
    medians and the targets met or missed.  The first boot keeps the guest's
    own clocksource (the emulated HPET under TCG), the second forces the TSC,
    as real hardware has it.  Reports: out/bench/memlog.md and
    memlog-tsc.md (and .json); guest output: out/logs/bench.log.  Takes
    about 5 minutes under TCG, boots included (more on a busy host).  A
    missed target does not fail the task.
    """
    from ci import bench as memlog_bench

    for path in memlog_bench.bench(rounds, duration):
        print(path)


@task
@_edge
def lint(c: Context) -> None:
    """ruff, import-linter, shellcheck, checkpatch --strict on the driver (cached tree only)."""
    from wintermute import lint as checks

    failed = checks.run_all()
    for finding in failed:
        print(f"--- {finding.check}\n{finding.output}", file=sys.stderr)
    if failed:
        raise Exit(f"E: {', '.join(f.check for f in failed)} found problems (above)", code=1)
    print("lint: clean")


@task(help={"fast": "only the unit tests (no kernel builds, no VM)"})
def test(c: Context, fast: bool = False) -> None:
    """Run the test suite: unit, kernel builds, packages, and the VM tiers (in two lanes)."""
    if fast:
        _pytest("-m", "not build and not vm", "--junitxml=out/junit.xml")
        return
    from ci import suite

    code = suite.run()
    if code != 0:
        raise Exit(code=code)


@task
def verify(c: Context) -> None:
    """The main job: build for every kernel, package for Debian and Arch, verify them in VMs.

    build-matrix, patch-series (memlog as an upstream series, each patch
    checked), vm-test, deb, arch, repository (them, signed, in
    out/repository), vm-verify (memlog-dkms on Debian's kernel, installed
    from a signed repository; on a bookworm guest, then on a trixie one),
    then vm-verify --kernel built (build-kernel: linux-wintermute with that
    series applied, for Debian and Arch, booted in the VM).
    """
    steps = [
        ("build-matrix", lambda: build_matrix(c)),
        ("patch-series", lambda: patch_series(c)),
        ("vm-test", lambda: vm_test(c)),
        ("deb", lambda: deb(c)),
        ("arch", lambda: arch(c)),
        ("repository", lambda: repository(c)),
        ("vm-verify", lambda: vm_verify(c)),
        ("vm-verify --suite trixie", lambda: vm_verify(c, suite="trixie")),
        ("vm-verify --kernel built", lambda: vm_verify(c, kernel="built")),
    ]
    for name, step in steps:
        print(f"==> invoke {name}", file=sys.stderr, flush=True)
        step()
    from wintermute.config import kernel_matrix

    series = ", ".join(row.series for row in kernel_matrix())
    print(
        f"verified: memlog builds warning-free in and out of tree on {series}; "
        "its patch series (out/patches) applies to the newest, each patch checkpatch-clean "
        "and building with W=1; "
        "its functional suite passes in the VM; out/debian and out/arch hold the packages, "
        "out/repository the signed APT and pacman repositories; "
        "apt-get install memlog-dkms in the VM passes the testinfra suite on Debian 12 and 13; "
        "linux-wintermute is packaged in out/kernel and, installed with apt-get, boots in the VM "
        "and passes its checks (reports: out/junit-functional.xml, out/junit-system.xml, "
        "out/junit-built-kernel.xml; timings: out/vm-verify-timings.json, "
        "out/kernel-build-timings.json, out/vm-built-kernel-timings.json)"
    )
