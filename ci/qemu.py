"""QEMU itself: the command line for one run, its disk overlay, starting and stopping it.

The cached image is only ever a read-only backing file: every run writes to its
own qcow2 overlay.  ssh is forwarded from a free port on 127.0.0.1; should
another process take that port between choosing and binding it, QEMU exits at
once and :func:`start` tries again with a new one.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import shlex
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ci.rootfs import Image
from wintermute.errors import InfraError
from wintermute.run import run

MEMORY_MB = 2048
CPUS = 2
PR_SET_PDEATHSIG = 1
PORT_ATTEMPTS = 3
# QEMU binds the forwarded port before the guest runs; one that fails exits within this.
STARTUP_SECONDS = 2.0
PORT_IN_USE = "Could not set up host forwarding rule"


@dataclass(frozen=True)
class Launch:
    """What one run hands to QEMU."""

    image: Image
    overlay: Path
    accelerator: str
    port: int
    console: Path
    cmdline_extra: str = ""
    cpus: int = CPUS
    # Boot the disk through the firmware and the boot loader installed on it
    # (no -kernel): the guest's own GRUB chooses the kernel and its command line.
    from_disk: bool = False


def free_port() -> int:
    """A port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def kernel_cmdline(extra: str = "") -> str:
    # panic=-1 reboots at once on a panic; the boot wait sees it in the console log.
    return f"root=/dev/vda1 rw console=ttyS0 panic=-1 {extra}".strip()


def command(launch: Launch) -> list[str]:
    """The QEMU command line for one run (no -no-reboot: the guest may reboot)."""
    cmd = [
        "qemu-system-x86_64", "-accel", launch.accelerator,
        "-m", str(MEMORY_MB), "-smp", str(launch.cpus),
        "-nodefaults", "-no-user-config", "-display", "none",
        "-serial", f"file:{launch.console}",
        "-drive", f"file={launch.overlay},if=virtio,format=qcow2,cache=unsafe",
        "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{launch.port}-:22",
        "-device", "virtio-net-pci,netdev=n0",
        "-device", "virtio-rng-pci",
    ]  # fmt: skip
    if not launch.from_disk:
        cmd += [
            "-kernel", str(launch.image.kernel), "-initrd", str(launch.image.initrd),
            "-append", kernel_cmdline(launch.cmdline_extra),
        ]  # fmt: skip
    if launch.accelerator == "tcg":
        # Never under KVM: -cpu max and host abort here.  No LA57 (5-level paging):
        # Linux 7.2 clears the CPU's feature bits in identify_cpu() with interrupts
        # on, so an interrupt there sees pgtable_l5_enabled() false, and KASAN
        # reports its 5-level direct-map address as a wild access.
        cmd[3:3] = ["-cpu", "max,la57=off"]
    return cmd


def create_overlay(image: Image, overlay: Path, log: Path) -> None:
    """A copy-on-write disk over the cached image, which stays untouched."""
    run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", image.path, overlay],
        log=log,
    )


def _die_with_parent() -> None:  # runs in the child, before exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _tail(path: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def _spawn(cmd: list[str], log: Path, *, detach: bool) -> subprocess.Popen[bytes]:
    with log.open("ab") as fh:
        fh.write(f"$ {shlex.join(cmd)}\n".encode())
        fh.flush()
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            # QEMU must not outlive us, unless asked to (a guest kept for a person)
            preexec_fn=None if detach else _die_with_parent,
            start_new_session=detach,
        )


def start(
    launch: Launch, log: Path, *, detach: bool = False
) -> tuple[subprocess.Popen[bytes], Launch]:
    """Start QEMU; returns the process and the launch it runs (its port may be a new one).

    ``detach``: QEMU survives this process (own session, no parent-death signal).
    """
    for _ in range(PORT_ATTEMPTS):
        offset = log.stat().st_size if log.exists() else 0
        proc = _spawn(command(launch), log, detach=detach)
        try:
            proc.wait(STARTUP_SECONDS)
        except subprocess.TimeoutExpired:
            return proc, launch
        output = log.read_bytes()[offset:].decode(errors="replace")
        if PORT_IN_USE not in output:
            raise InfraError(
                f"QEMU exited with {proc.returncode} at start; see {log}\n{_tail(log)}"
            )
        launch = dataclasses.replace(launch, port=free_port())
    raise InfraError(f"QEMU found no free port for ssh in {PORT_ATTEMPTS} attempts; see {log}")


def stop(proc: subprocess.Popen[bytes], grace: float = 0.0) -> None:
    """Make sure QEMU is gone: wait up to ``grace`` seconds, then kill it."""
    if proc.poll() is None and grace > 0:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
    if proc.poll() is None:
        proc.kill()
    proc.wait()
