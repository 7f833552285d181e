"""The built linux-wintermute kernel, installed in the VM as a user installs it, then booted.

:func:`installed_guest` boots the cached image on its stock kernel, installs
GRUB on the disk as Debian's installer leaves a machine (``grub-install``,
``update-grub``), serves the
built kernel's packages with the memlog packages from a local flat APT
repository (the guest has no other source), and runs ``apt-get install`` of
the metapackages with memlog-tools, as a user does (``linux-image-wintermute``,
``linux-headers-wintermute``, with the flavour, and ``memlog-tools``), which
pull in ``linux-image-<release>`` and ``linux-headers-<release>``: the image's
postinst runs depmod and ``/etc/kernel/postinst.d``, where initramfs-tools
makes the initramfs and GRUB's ``zz-update-grub`` adds the kernel to the boot
menu; memlog-tools' group, udev rule, sysctl and modules-load.d take effect
at the first boot of the built kernel, the one that checks them (no reboot of
its own: every boot of a debug kernel costs minutes under TCG).  QEMU is then
started again without ``-kernel``: its firmware boots the disk, and GRUB's
default entry decides which kernel runs (it must be the built one), on every
later reboot too.  The guest is then checked by ``tests/built_kernel`` with
testinfra.

Step timings go to ``out/vm-built-kernel-timings.json``.
"""

from __future__ import annotations

import contextlib
import shlex
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci.package_verify import APT, SOURCES, Timings, apt_repository
from wintermute import config
from wintermute.errors import InfraError
from wintermute.kernel.names import KernelNames
from wintermute.paths import log_dir, out_dir
from wintermute.run import say

GUEST_REPO = "/srv/apt/wintermute"
TIMINGS_FILE = "vm-built-kernel-timings.json"
# A kernel with debug.config (KASAN, lockdep, kmemleak) reached ssh in 174 s
# under TCG where the plain one takes about 25 s: its boots may take longer.
DEBUG_BOOT_SLOWDOWN = 4.0


def boot_slowdown(cfg: config.Config) -> float:
    """How much longer than a plain kernel the built kernel may take to boot."""
    return DEBUG_BOOT_SLOWDOWN if cfg.kernel.debug else 1.0


@dataclass
class KernelGuest:
    """The guest running the built kernel, and what the checks need."""

    vm: Any  # ci.vm.Vm
    cfg: config.Config
    release: str  # the built kernel's
    stock_release: str  # the image's own kernel
    timings: Timings
    log: Path

    def apt(self, args: str, timeout: float = 1200) -> str:
        return self.vm.run(f"{APT} {args}", timeout=timeout, log=self.log).stdout

    def publish(self, debs: list[Path]) -> None:
        """Serve ``debs`` (and nothing else) from the guest's repository; apt-get update."""
        repo = apt_repository(debs, out_dir() / "vm-built-kernel" / "repo")
        self.vm.run(f"rm -rf {GUEST_REPO}", log=self.log)
        self.vm.put(repo, GUEST_REPO)
        self.apt("update")

    def expect_running(self, release: str) -> None:
        """The guest runs ``release``, or an InfraError naming GRUB's menu and the console."""
        running = self.vm.run("uname -r", log=self.log).stdout.strip()
        if running != release:
            menu = self.vm.run(
                "grep -E '^\\s*(menuentry|linux)\\s' /boot/grub/grub.cfg", check=False, log=self.log
            ).stdout
            raise InfraError(
                f"the guest runs {running}, not {release}; GRUB's menu:\n{menu}"
                f"console: {self.vm.console_log}"
            )

    def leak_checks_done(self) -> None:
        """kmemleak off from here on, at once and at every later boot (GRUB's command line).

        The lifecycle after the leak check (upgrade, reboots, purge) needs no
        leak detector, and kmemleak slows every fork of the debug kernel by
        about 40% under TCG; KASAN and lockdep stay on.
        """
        from ci import stress

        if not stress.kmemleak_off(self.vm):
            return
        say("kmemleak's checks are done: off now and on later boots (kmemleak=off)")
        line = 'GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT kmemleak=off"'
        self.vm.run(
            f"echo {shlex.quote(line)} > /etc/default/grub.d/zz-wintermute-leak-checks-done.cfg",
            log=self.log,
        )

    def reboot(self) -> None:
        """Reboot through GRUB, waiting as long as this kernel's boots may take."""
        self.vm.reboot(boot_slowdown(self.cfg))


@contextlib.contextmanager
def installed_guest(
    names: KernelNames, kernel_debs: list[Path], memlog_debs: list[Path], cfg: config.Config,
    *, keep: bool = False,
) -> Iterator[KernelGuest]:  # fmt: skip
    """Boot, ``apt-get install`` the kernel's metapackages, boot the kernel; yield the guest."""
    release = names.release
    from ci import rootfs, vm

    repo = apt_repository([*kernel_debs, *memlog_debs], out_dir() / "vm-built-kernel" / "repo")
    image = rootfs.ensure_image()
    log = log_dir() / "vm-built-kernel.log"
    log.unlink(missing_ok=True)
    timings = Timings(out_dir() / TIMINGS_FILE)
    started = time.monotonic()
    with vm.boot(image, keep=keep) as guest_vm:
        timings.accelerator = guest_vm.accelerator
        timings.add("boot the stock kernel (QEMU start to ssh)", time.monotonic() - started)
        guest = KernelGuest(guest_vm, cfg, release, image.kernel_release, timings, log)
        guest_vm.run(f"rm -f /etc/apt/sources.list {SOURCES}/*.list {SOURCES}/*.sources", log=log)
        guest_vm.put(repo, GUEST_REPO)
        line = f"deb [trusted=yes] file:{GUEST_REPO} ./"
        guest_vm.run(f"echo {shlex.quote(line)} > {SOURCES}/wintermute.list", log=log)
        with timings.step("grub-install and update-grub (the disk's boot loader)"):
            guest_vm.run("grub-install /dev/vda && update-grub", log=log)
        packages = f"{names.image_meta} {names.headers_meta} {cfg.packages.tools}"
        say(f"installing {packages} in the guest with apt-get (log: {log})")
        with timings.step("apt-get install (initramfs included)"):
            guest.apt("update")
            guest.apt(f"install --no-install-recommends {packages}")
        with timings.step("boot the built kernel through GRUB"):
            guest_vm.restart_from_disk(slowdown=boot_slowdown(cfg))
        guest.expect_running(release)
        yield guest


# A build in a scratch copy of the repository: what kernel_build() returns, as JSON
_BUILD_IN_COPY = """
import json, sys
from dataclasses import asdict
from pathlib import Path
sys.path.insert(0, "src")
from wintermute.kernel.build import build_kernel
built = build_kernel(("debian",), Path(sys.argv[1]), Path(sys.argv[2]))
Path(sys.argv[3]).write_text(json.dumps({
    "names": asdict(built.names), "tree": str(built.tree),
    "packages": {k: [str(p) for p in v] for k, v in built.packages.items()},
}))
"""


def build_in_copy(
    copy: Path, kernel_yaml: Path, dest: Path, step: str,
    *, env: dict[str, str] | None = None, background: bool = False,
) -> Any:  # fmt: skip
    """``build_kernel`` (Debian) run in ``copy``, a scratch copy of the repository
    (:func:`wintermute.kernel.bench.scratch_repo`): its driver can be edited there.
    The environment is passed on, with ``env`` (a token's OPENSSL_CONF) added.
    ``background``: at the lowest CPU priority (nice 19), so that it takes only
    what the guests leave."""
    import json
    import sys
    import tempfile

    from wintermute.kernel.build import KernelBuild
    from wintermute.reproducible import source_date_epoch
    from wintermute.run import run

    with tempfile.TemporaryDirectory(prefix="wintermute-build-") as tmp:
        result = Path(tmp) / "build.json"
        nice = ["nice", "-n", "19"] if background else []
        # the copy has no git: dated as this checkout is (and by its files' times)
        epoch = str(source_date_epoch())
        build_env = {"WINTERMUTE_OUT": str(out_dir()), "SOURCE_DATE_EPOCH": epoch}
        run(
            [*nice, sys.executable, "-c", _BUILD_IN_COPY, kernel_yaml, dest, result],
            cwd=copy,
            env={**build_env, **(env or {})},
            log="kernel-build-in-copy.log",
            step=step,
            heartbeat=60,
        )
        data = json.loads(result.read_text())
    return KernelBuild(
        KernelNames(**data["names"]),
        Path(data["tree"]),
        {k: [Path(p) for p in v] for k, v in data["packages"].items()},
    )
