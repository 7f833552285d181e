"""Install the built Debian packages on a booted VM the way a user would.

:func:`installed_guest` builds what the checks need — the packages from one
kernel.yaml, the same packages one version newer (the upgrade), and a second
kernel with its headers from bookworm-backports (the kernel upgrade) — then
boots the VM and adds the project's signed APT repository the way a user
does (:mod:`wintermute.repository.apt`, copied into the guest, which has no
network: install the keyring package, drop the published ``.sources`` file),
runs ``apt-get install memlog-dkms`` (DKMS builds the module in the guest,
against the guest's own headers) and reboots, so the checks see what a user
sees.  The upgrade is the same repository with the newer build published into
it; the second kernel comes from a flat repository (``apt-ftparchive``).

How long each step took, from "packages built" to "checks done", goes to
``out/vm-verify-timings.json`` (see :class:`Timings`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ci.guest_debs import Request
from wintermute import config
from wintermute.paths import cache_dir, log_dir, out_dir
from wintermute.repository import apt, keys
from wintermute.run import capture, say

APT = "DEBIAN_FRONTEND=noninteractive apt-get -y -q"
SOURCES = "/etc/apt/sources.list.d"
# guest directory of each local repository
GUEST_REPOS = {
    "current": "/srv/apt/memlog",  # the .debs only (invoke dkms-install --debs)
    "kernel": "/srv/apt/kernel",
}
# the signed repository as served (DEST/apt of wintermute.repository.apt) ...
GUEST_SIGNED = "/srv/wintermute/apt"
SIGNED_URL = "file:///srv/wintermute"  # kernel.yaml's repository.url, for the guest
# ... and the same packages signed by another key, which apt must refuse
GUEST_OTHER_KEY = "/srv/other-key/apt"
GUEST_SOURCES = f"{SOURCES}/wintermute.sources"
# A second kernel for the kernel upgrade: bookworm-backports' cloud flavour
# (virtio built in, a third of the generic flavour's size).
SECOND_KERNEL = Request(
    suites=("bookworm", "bookworm-backports"),
    packages=(
        "linux-image-cloud-amd64/bookworm-backports",
        "linux-headers-cloud-amd64/bookworm-backports",
    ),
)
TIMINGS_FILE = "vm-verify-timings.json"


@dataclass
class Timings:
    """Seconds per step, in the order they happened; written as JSON after every step."""

    path: Path
    accelerator: str = ""
    steps: list[tuple[str, float]] = field(default_factory=list)
    # While the checks run (start_checks .. end_checks), the time between two
    # named steps is recorded as a "checks" step of its own.
    _checks_since: float | None = field(default=None, init=False, repr=False)

    def add(self, step: str, seconds: float) -> None:
        self.steps.append((step, round(seconds, 1)))
        self.write()

    def _close_checks(self, now: float) -> None:
        if self._checks_since is not None and now - self._checks_since >= 0.05:
            self.add("checks", now - self._checks_since)
        self._checks_since = None

    def start_checks(self) -> None:
        self._checks_since = time.monotonic()

    def end_checks(self) -> None:
        self._close_checks(time.monotonic())

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        in_checks = self._checks_since is not None
        self._close_checks(started)
        try:
            yield
        finally:
            self.add(name, time.monotonic() - started)
            if in_checks:
                self.start_checks()

    def write(self) -> None:
        data = {
            "accelerator": self.accelerator,
            "cpus": os.cpu_count(),
            "steps": [{"step": name, "seconds": secs} for name, secs in self.steps],
            # "of which" steps are parts of the step before them
            "total_seconds": round(
                sum(secs for name, secs in self.steps if not name.startswith("of which")), 1
            ),
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        tmp.replace(self.path)


@dataclass
class Guest:
    """The booted guest with the packages installed, and what the scenarios need."""

    vm: Any  # ci.vm.Vm
    cfg: config.Config
    upgrade_cfg: config.Config
    timings: Timings
    log: Path
    second_kernel_debs: list[Path]
    stock_release: str  # the image's own kernel
    suite: str  # the guest's Debian suite
    repos: dict[str, Path] = field(default_factory=dict)  # name -> the repository on the host
    # "current", "upgrade", "other-key" -> DEST/apt of each signed repository state
    signed: dict[str, Path] = field(default_factory=dict)

    def apt(self, args: str, timeout: float = 1200) -> str:
        return self.vm.run(f"{APT} {args}", timeout=timeout, log=self.log).stdout

    def enable_repo(self, name: str) -> None:
        """Copy one more of the local repositories into the guest and let apt see it."""
        self.vm.put(self.repos[name], GUEST_REPOS[name])
        line = f"deb [trusted=yes] file:{GUEST_REPOS[name]} ./"
        self.vm.run(f"echo {shlex.quote(line)} > {SOURCES}/{name}.list", log=self.log)
        self.apt("update")

    def add_signed_repo(self) -> None:
        """The user's two steps: install the keyring package, drop the .sources file."""
        root = GUEST_SIGNED
        self.vm.put(self.signed["current"], root)
        keyring = f"{root}/{apt.keyring_name(self.cfg)}.deb"
        self.apt(f"install {keyring}")
        suite = self.vm.run(". /etc/os-release && echo $VERSION_CODENAME", log=self.log)
        self.vm.run(f"cp {root}/{suite.stdout.strip()}.sources {GUEST_SOURCES}", log=self.log)
        self.apt("update")

    def publish_signed(self, state: str) -> None:
        """Serve ``state`` ("upgrade": the newer build published) at the same place."""
        self.vm.run(f"rm -rf {GUEST_SIGNED}", log=self.log)
        self.vm.put(self.signed[state], GUEST_SIGNED)
        self.apt("update")


def signed_repositories(cfg: config.Config, current: list[Path], upgrade: list[Path],
                        work: Path) -> dict[str, Path]:  # fmt: skip
    """The signed repository with ``current``, then with ``upgrade`` published into it.

    Each state is copied aside (``work/signed-<state>``) as it is served; the
    keys are made once per repository directory and kept under the cache.
    """
    states: dict[str, Path] = {}
    keys_dir = os.environ.get("WINTERMUTE_KEYS", str(cache_dir() / "archive-keys"))
    with environment(WINTERMUTE_KEYS=keys_dir):
        for name, dest, debs in (
            ("current", work / "signed", current),
            ("upgrade", work / "signed", upgrade),
            ("other-key", work / "signed-other-key", current),
        ):
            if name != "upgrade" and dest.exists():
                shutil.rmtree(dest)  # a fresh repository; its key is kept
            with keys.archive_key(dest) as key:
                published = apt.publish(debs, dest, key, cfg, url=SIGNED_URL)
            states[name] = work / f"signed-{name}-served"
            if states[name].exists():
                shutil.rmtree(states[name])
            shutil.copytree(published.root, states[name])
    return states


def apt_repository(debs: list[Path], dest: Path) -> Path:
    """A flat APT repository (``deb [trusted=yes] file:DIR ./``) holding ``debs``."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for deb in debs:
        shutil.copy2(deb, dest / deb.name)
    (dest / "Packages").write_text(capture(["apt-ftparchive", "packages", "."], cwd=dest))
    (dest / "Release").write_text(capture(["apt-ftparchive", "release", "."], cwd=dest))
    return dest


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    """``values`` set in os.environ for the ``with`` block, the old values back after."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def build_debs(kernel_yaml: Path, out: Path) -> list[Path]:
    """The Debian packages ``kernel_yaml`` describes, built into ``out``."""
    from wintermute.packaging import debian, targets

    with environment(WINTERMUTE_KERNEL_YAML=str(kernel_yaml), WINTERMUTE_OUT=str(out)):
        return [p for p in debian.build(targets.render()) if p.suffix == ".deb"]


def next_version(version: str) -> str:
    """The version an upgrade installs: the last component plus one (0.1.0 -> 0.1.1)."""
    *head, last = version.split(".")
    return ".".join([*head, str(int(last) + 1)])


def upgrade_description(kernel_yaml: Path, dest: Path) -> Path:
    """``kernel_yaml`` with memlog.version one step newer: the upgrade's description."""
    data = yaml.safe_load(kernel_yaml.read_text())
    data["memlog"]["version"] = next_version(str(data["memlog"]["version"]))
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(
        f"# {kernel_yaml} with the next version, for the upgrade scenario\n"
        + yaml.safe_dump(data, sort_keys=False)
    )
    return dest


def _dkms_build_seconds(guest: Any, version: str, release: str, log: Path) -> float:
    """How long DKMS's make ran in the guest, from its make.log (date at the top, mtime)."""
    make_log = f"/var/lib/dkms/memlog/{version}/{release}/x86_64/log/make.log"
    out = guest.run(
        f'start=$(date -d "$(sed -n 2p {make_log})" +%s) && '
        f"end=$(stat -c %Y {make_log}) && echo $((end - start))",
        check=False,
        log=log,
    ).stdout.strip()
    return float(out) if out.isdigit() else -1.0


@contextlib.contextmanager
def installed_guest(
    kernel_yaml: Path, *, keep: bool = False, suite: str | None = None
) -> Iterator[Guest]:
    """Build, boot, ``apt-get install memlog-dkms``, reboot; yield the :class:`Guest`.

    ``suite``: the guest's Debian suite (default ``$WINTERMUTE_GUEST_SUITE``,
    else bookworm).  Only a bookworm guest gets the second kernel (from
    bookworm-backports) for the kernel upgrade.
    """
    from ci import guest_debs, rootfs, vm

    suite = suite or rootfs.guest_suite()

    cfg = config.load(kernel_yaml)
    work = out_dir() / "vm-verify"
    upgrade_yaml = upgrade_description(kernel_yaml, work / "kernel-upgrade.yaml")
    upgrade_cfg = config.load(upgrade_yaml)
    say(f"building the packages from {kernel_yaml} and, for the upgrade, version "
        f"{upgrade_cfg.memlog.version}")  # fmt: skip
    current = build_debs(kernel_yaml, work / "current")
    upgrade = build_debs(upgrade_yaml, work / "upgrade")
    say("publishing them in signed APT repositories (and one signed by another key)")
    signed = signed_repositories(cfg, current, upgrade, work)
    repos = {"current": apt_repository(current, work / "repo-current")}
    image = rootfs.ensure_image(suite)
    second_kernel: list[Path] = []
    if suite == rootfs.HOST_SUITE:
        second_kernel = guest_debs.fetch(image, SECOND_KERNEL)
        repos["kernel"] = apt_repository(second_kernel, work / "repo-kernel")
    log = log_dir() / "vm-install.log"
    log.unlink(missing_ok=True)
    timings = Timings(out_dir() / TIMINGS_FILE)
    started = time.monotonic()
    with vm.boot(image, keep=keep) as guest_vm:
        timings.accelerator = guest_vm.accelerator
        timings.add("boot (QEMU start to ssh)", time.monotonic() - started)
        guest = Guest(
            guest_vm, cfg, upgrade_cfg, timings, log, second_kernel, image.kernel_release, suite,
            repos, signed,
        )  # fmt: skip
        guest_vm.run(f"rm -f /etc/apt/sources.list {SOURCES}/*.list {SOURCES}/*.sources", log=log)
        guest_vm.put(repos["current"], GUEST_REPOS["current"])
        say(f"adding the signed repository and installing {cfg.packages.dkms} in the guest "
            f"with apt-get (log: {log})")  # fmt: skip
        with timings.step("apt-get install (DKMS build included)"):
            guest.add_signed_repo()
            guest.apt(f"install {cfg.packages.dkms}")
        timings.add(
            "of which DKMS's make",
            _dkms_build_seconds(guest_vm, cfg.memlog.version, image.kernel_release, log),
        )
        with timings.step("reboot"):
            guest_vm.reboot()
        yield guest


def verify(
    kernel_yaml: Path,
    *,
    keep: bool = False,
    pytest_args: tuple[str, ...] = (),
    suite: str | None = None,
) -> int:
    """``invoke vm-verify``: prepare the guest once, then run tests/system against it.

    ``suite`` (default ``$WINTERMUTE_GUEST_SUITE``, else bookworm) is the
    guest's; on trixie the checks that need bookworm-backports' second kernel
    are deselected (tests/system/conftest.py) and the report is
    ``out/junit-system-trixie.xml``.

    Returns pytest's exit status (0: every check passed, 1: a check failed).  A
    failure before the checks (build, boot, ssh, apt in the guest) raises
    InfraError naming its log.
    """
    import pytest

    from ci import rootfs
    from ci.pytest_support import AttachedGuest
    from wintermute.paths import REPO

    suite = suite or rootfs.guest_suite()
    report = "junit-system.xml" if suite == rootfs.HOST_SUITE else f"junit-system-{suite}.xml"
    with (
        environment(**{rootfs.SUITE_ENV: suite}),
        installed_guest(kernel_yaml, keep=keep, suite=suite) as guest,
    ):
        code = pytest.main(
            [
                str(REPO / "tests" / "system"),
                f"--junitxml={out_dir() / report}",
                *pytest_args,
            ],
            plugins=[AttachedGuest(guest)],
        )
    say(f"timings: {guest.timings.path}")
    return int(code)
