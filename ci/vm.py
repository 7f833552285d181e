"""Boot the VM from the cached image and reach it over ssh.

``with boot(image) as vm:`` makes a run directory under ``out/vm/``, a
copy-on-write overlay over the cached image (which is never written), a key
for the run, chooses the accelerator, starts QEMU with ssh forwarded to a free
port on 127.0.0.1, and waits for ssh with a hard timeout.  The serial console
goes to ``console.log`` in the run directory.  QEMU is always killed when the
block ends (and dies with this process should it be killed).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ci import accel, ssh
from ci.rootfs import Image
from wintermute.errors import InfraError
from wintermute.paths import out_dir
from wintermute.run import run, say

BOOT_TIMEOUT = 300.0
MEMORY_MB = 2048
CPUS = 2
PR_SET_PDEATHSIG = 1


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def qemu_command(
    image: Image, overlay: Path, accelerator: str, port: int, console: Path, extra_cmdline: str
) -> list[str]:
    """The QEMU command line for one run (printed before it starts)."""
    cmdline = f"root=/dev/vda rw console=ttyS0 panic=-1 {extra_cmdline}"
    cmd = [
        "qemu-system-x86_64", "-accel", accelerator,
        "-m", str(MEMORY_MB), "-smp", str(CPUS),
        "-nodefaults", "-no-user-config", "-display", "none",
        "-serial", f"file:{console}",
        "-kernel", str(image.kernel), "-initrd", str(image.initrd), "-append", cmdline,
        "-drive", f"file={overlay},if=virtio,format=qcow2,cache=unsafe",
        "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:22",
        "-device", "virtio-net-pci,netdev=n0",
        "-device", "virtio-rng-pci",
    ]  # fmt: skip
    if accelerator == "tcg":
        cmd[3:3] = ["-cpu", "max"]
    return cmd


def _die_with_parent() -> None:  # runs in the child, before exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _tail(path: Path, lines: int = 25) -> str:
    if not path.exists():
        return "(no console output)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class Vm:
    """A running guest, reached with ssh as root."""

    def __init__(self, run_dir: Path, proc: subprocess.Popen[bytes], port: int) -> None:
        self.run_dir = run_dir
        self.proc = proc
        self.port = port
        self.console_log = run_dir / "console.log"
        self.ssh_config = run_dir / "ssh_config"
        self.log = run_dir / "commands.log"

    def _ssh(self, *extra: str) -> list[str]:
        return ssh.ssh_argv(self.ssh_config, *extra)

    def run(
        self,
        cmd: str | list[str],
        *,
        check: bool = True,
        timeout: float = 600,
        log: Path | None = None,
        user: str | None = None,
    ) -> Result:
        """Run a shell command in the guest (as root, or ``user``); output is logged."""
        text = cmd if isinstance(cmd, str) else shlex.join(cmd)
        if user:
            text = f"runuser -u {shlex.quote(user)} -- sh -c {shlex.quote(text)}"
        try:
            proc = subprocess.run(
                [*self._ssh(), text],
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise InfraError(f"guest command timed out after {timeout:.0f} s: {text}") from exc
        with (log or self.log).open("a") as fh:
            fh.write(f"$ {text}\n{proc.stdout}{proc.stderr}# exit {proc.returncode}\n")
        if check and proc.returncode != 0:
            raise InfraError(
                f"guest command failed with exit {proc.returncode}: {text}; "
                f"see {log or self.log}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
            )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def put(self, local: Path, remote: str) -> None:
        """Copy a file or a directory's contents to ``remote`` in the guest."""
        q = shlex.quote(remote)
        if local.is_dir():
            tar = subprocess.Popen(
                ["tar", "-C", str(local), "-cf", "-", "."], stdout=subprocess.PIPE
            )
            target = f"mkdir -p {q} && tar -C {q} -xf -"
            proc = subprocess.run([*self._ssh(), target], stdin=tar.stdout, capture_output=True)
            tar.wait()
        else:
            with local.open("rb") as fh:
                target = f"mkdir -p $(dirname {q}) && cat > {q}"
                proc = subprocess.run([*self._ssh(), target], stdin=fh, capture_output=True)
        if proc.returncode != 0:
            raise InfraError(f"copying {local} to the guest failed: {proc.stderr.decode()[-500:]}")

    def get(self, remote: str, local: Path) -> None:
        """Copy the guest file ``remote`` to ``local``."""
        local.parent.mkdir(parents=True, exist_ok=True)
        with local.open("wb") as fh:
            proc = subprocess.run(
                [*self._ssh(), f"cat {shlex.quote(remote)}"], stdout=fh, stderr=subprocess.PIPE
            )
        if proc.returncode != 0:
            local.unlink(missing_ok=True)
            raise InfraError(f"copying {remote} from the guest failed: {proc.stderr.decode()}")

    def boot_id(self) -> str:
        return self.run("cat /proc/sys/kernel/random/boot_id", timeout=30).stdout.strip()

    def wait_for_ssh(self, timeout: float = BOOT_TIMEOUT, not_boot_id: str | None = None) -> float:
        """Wait until ssh answers (from a new boot, if ``not_boot_id``); return the seconds."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise InfraError(
                    f"QEMU exited with {self.proc.returncode} before ssh answered; "
                    f"console: {self.console_log}\n{_tail(self.console_log)}"
                )
            probe = subprocess.run(
                [*self._ssh("-o", "ConnectTimeout=5"), "cat /proc/sys/kernel/random/boot_id"],
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                timeout=30,
                check=False,
            )
            if probe.returncode == 0 and probe.stdout.strip() != not_boot_id:
                return time.monotonic() - started
            time.sleep(2)
        raise InfraError(
            f"the guest did not answer ssh within {timeout:.0f} s; "
            f"console: {self.console_log}\n{_tail(self.console_log)}"
        )

    def reboot(self) -> None:
        """Reboot the guest and wait until ssh answers from the new boot."""
        before = self.boot_id()
        subprocess.run(
            [*self._ssh(), "systemctl reboot"], capture_output=True, timeout=60, check=False
        )
        seconds = self.wait_for_ssh(not_boot_id=before)
        say(f"guest rebooted; ssh answered after {seconds:.0f} s")

    def shutdown(self, timeout: float = 60) -> None:
        """Power the guest off, then make sure QEMU is gone."""
        if self.proc.poll() is None:
            subprocess.run(
                [*self._ssh(), "systemctl poweroff"], capture_output=True, timeout=30, check=False
            )
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def _run_dir() -> Path:
    base = out_dir() / "vm"
    base.mkdir(parents=True, exist_ok=True)
    path = base / time.strftime(f"%Y%m%d-%H%M%S-{os.getpid()}")
    path.mkdir()
    latest = base / "latest"
    latest.unlink(missing_ok=True)
    latest.symlink_to(path.name)
    return path


@contextlib.contextmanager
def boot(image: Image, *, timeout: float = BOOT_TIMEOUT) -> Iterator[Vm]:
    """Boot ``image`` and yield the running :class:`Vm`; QEMU is killed on exit."""
    run_dir = _run_dir()
    overlay = run_dir / "overlay.qcow2"
    run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", image.path, overlay],
        log=run_dir / "qemu.log",
    )
    key = ssh.make_key(run_dir)
    accelerator = accel.choose(image.kernel)
    port = free_port()
    ssh.write_config(run_dir / "ssh_config", port, key)
    console = run_dir / "console.log"
    cmd = qemu_command(image, overlay, accelerator, port, console, ssh.key_cmdline_arg(key))
    (run_dir / "qemu-command.sh").write_text(shlex.join(cmd) + "\n")
    say(f"booting the VM under {accelerator} (console: {console})")
    with (run_dir / "qemu.log").open("ab") as qemu_log:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=qemu_log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # QEMU must not outlive us
        )
    vm = Vm(run_dir, proc, port)
    previous = None
    if threading_is_main():
        previous = signal.signal(signal.SIGTERM, _sigterm)
    try:
        seconds = vm.wait_for_ssh(timeout)
        say(f"ssh answered after {seconds:.0f} s")
        yield vm
    finally:
        vm.kill()
        overlay.unlink(missing_ok=True)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def threading_is_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def shell() -> None:
    """Boot the VM and open an interactive ssh session; the VM stops when it ends."""
    from ci import rootfs

    image = rootfs.ensure_image()
    with boot(image) as vm:
        say(f"ssh -F {vm.ssh_config} {ssh.HOST_ALIAS}   (exit the shell to stop the VM)")
        subprocess.run(ssh.ssh_argv(vm.ssh_config), check=False)
        vm.shutdown()


def smoke() -> str:
    """Boot, check the guest reached a running system, return its kernel release."""
    from ci import rootfs

    image = rootfs.ensure_image()
    with boot(image) as vm:
        state = vm.run("systemctl is-system-running --wait", check=False, timeout=180)
        release = vm.run("uname -r").stdout.strip()
        say(f"guest kernel {release}, system state: {state.stdout.strip()}")
        vm.shutdown()
        return release


__all__ = ["Image", "Vm", "boot", "qemu_command", "shell", "smoke"]
