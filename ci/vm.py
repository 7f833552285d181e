"""Boot the VM from the cached image and reach it over ssh.

``with boot() as vm:`` makes a run directory under ``out/vm/``, a copy-on-write
overlay over the cached image (which is never written), a key for the run,
chooses the accelerator, starts QEMU with ssh forwarded to a free port on
127.0.0.1, and waits for ssh with a hard timeout.  The serial console goes to
``console.log`` in the run directory, the QEMU command to ``qemu-command.sh``.
QEMU is always killed when the block ends, however it ends (an exception,
Ctrl-C, SIGTERM), and dies with this process should it be killed outright.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ci import accel, qemu, ssh
from ci.rootfs import Image
from wintermute.errors import InfraError, UserError
from wintermute.paths import out_dir
from wintermute.run import say

# Seconds from starting QEMU until ssh must answer.  Debian's stock kernel and
# initrd reach ssh in about 20 s under TCG on an idle 2-core machine; the rest
# is headroom for a machine busy building kernels.
BOOT_TIMEOUT = {"kvm": 120.0, "tcg": 240.0}
BOOT_TIMEOUT_ENV = "WINTERMUTE_BOOT_TIMEOUT"
PANIC_MARK = b"Kernel panic - not syncing"
COMMAND_TIMEOUT = 600.0

# What a guest command returns: args, returncode, stdout, stderr.
Result = subprocess.CompletedProcess


def boot_timeout(accelerator: str) -> float:
    """The ssh wait for ``accelerator``, or ``WINTERMUTE_BOOT_TIMEOUT`` seconds."""
    value = os.environ.get(BOOT_TIMEOUT_ENV)
    if not value:
        return BOOT_TIMEOUT[accelerator]
    try:
        return float(value)
    except ValueError:
        raise UserError(f"{BOOT_TIMEOUT_ENV}={value!r}: give a number of seconds") from None


def _tail(path: Path, lines: int = 25) -> str:
    if not path.exists():
        return "(no console output)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Vm:
    """A running guest, reached with ssh as root."""

    run_dir: Path
    proc: subprocess.Popen[bytes]
    port: int
    accelerator: str
    boot_seconds: float = 0.0

    @property
    def console_log(self) -> Path:
        return self.run_dir / "console.log"

    @property
    def ssh_config(self) -> Path:
        return self.run_dir / "ssh_config"

    @property
    def log(self) -> Path:
        """Every guest command and its output."""
        return self.run_dir / "commands.log"

    def ssh_argv(self, *extra: str) -> list[str]:
        return ssh.ssh_argv(self.ssh_config, *extra)

    def run(
        self,
        cmd: str | list[str],
        *,
        check: bool = True,
        timeout: float = COMMAND_TIMEOUT,
        log: Path | None = None,
        user: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a shell command in the guest (as root, or ``user``); output goes to the log."""
        text = cmd if isinstance(cmd, str) else shlex.join(cmd)
        if user:
            text = f"runuser -u {shlex.quote(user)} -- sh -c {shlex.quote(text)}"
        log_path = log or self.log
        try:
            proc = subprocess.run(
                [*self.ssh_argv(), text],
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            with log_path.open("a") as fh:
                fh.write(f"$ {text}\n# timed out after {timeout:.0f} s\n")
            raise InfraError(
                f"guest command timed out after {timeout:.0f} s: {text}; see {log_path}"
            ) from exc
        with log_path.open("a") as fh:
            fh.write(f"$ {text}\n{proc.stdout}{proc.stderr}# exit {proc.returncode}\n")
        if check and proc.returncode != 0:
            raise InfraError(
                f"guest command failed with exit {proc.returncode}: {text}; see {log_path}\n"
                f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
            )
        return proc

    def put(self, local: Path, remote: str) -> None:
        """Copy a file to ``remote``, or a directory's contents into ``remote``."""
        q = shlex.quote(remote)
        if local.is_dir():
            tar = subprocess.Popen(
                ["tar", "-C", str(local), "-cf", "-", "."], stdout=subprocess.PIPE
            )
            proc = subprocess.run(
                [*self.ssh_argv(), f"mkdir -p {q} && tar -C {q} -xf -"],
                stdin=tar.stdout,
                capture_output=True,
                check=False,
            )
            if tar.stdout:
                tar.stdout.close()
            failed = tar.wait() != 0 or proc.returncode != 0
        else:
            with local.open("rb") as fh:
                proc = subprocess.run(
                    [*self.ssh_argv(), f'mkdir -p "$(dirname {q})" && cat > {q}'],
                    stdin=fh,
                    capture_output=True,
                    check=False,
                )
            failed = proc.returncode != 0
        if failed:
            raise InfraError(f"copying {local} to the guest failed: {proc.stderr.decode()[-500:]}")

    def get(self, remote: str, local: Path) -> None:
        """Copy the guest file ``remote`` to ``local``, or a directory's contents into it."""
        q = shlex.quote(remote)
        if self.run(f"test -d {q}", check=False, timeout=60).returncode == 0:
            local.mkdir(parents=True, exist_ok=True)
            ssh_proc = subprocess.Popen(
                [*self.ssh_argv(), f"tar -C {q} -cf - ."],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            untar = subprocess.run(
                ["tar", "-C", str(local), "-xf", "-"], stdin=ssh_proc.stdout, check=False
            )
            if ssh_proc.stdout:
                ssh_proc.stdout.close()
            stderr = ssh_proc.stderr.read() if ssh_proc.stderr else b""
            failed = ssh_proc.wait() != 0 or untar.returncode != 0
        else:
            local.parent.mkdir(parents=True, exist_ok=True)
            with local.open("wb") as fh:
                proc = subprocess.run(
                    [*self.ssh_argv(), f"cat {q}"],
                    stdin=subprocess.DEVNULL,
                    stdout=fh,
                    stderr=subprocess.PIPE,
                    check=False,
                )
            stderr, failed = proc.stderr, proc.returncode != 0
            if failed:
                local.unlink(missing_ok=True)
        if failed:
            raise InfraError(f"copying {remote} from the guest failed: {stderr.decode()[-500:]}")

    def boot_id(self) -> str:
        return self.run("cat /proc/sys/kernel/random/boot_id", timeout=30).stdout.strip()

    def wait_for_ssh(self, timeout: float, not_boot_id: str | None = None) -> float:
        """Wait until ssh answers (from a new boot, if ``not_boot_id``); return the seconds."""
        started = time.monotonic()
        console_offset = self.console_log.stat().st_size if self.console_log.exists() else 0
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise InfraError(
                    f"QEMU exited with {self.proc.returncode} before ssh answered; "
                    f"console: {self.console_log}\n{_tail(self.console_log)}"
                )
            if self._panicked(console_offset):
                raise InfraError(
                    f"the guest kernel panicked; console: {self.console_log}\n"
                    f"{_tail(self.console_log)}"
                )
            with contextlib.suppress(subprocess.TimeoutExpired):
                probe = subprocess.run(
                    [
                        *self.ssh_argv("-o", "ConnectTimeout=5"),
                        "cat /proc/sys/kernel/random/boot_id",
                    ],
                    capture_output=True,
                    text=True,
                    stdin=subprocess.DEVNULL,
                    timeout=30,
                    check=False,
                )
                if probe.returncode == 0 and probe.stdout.strip() != not_boot_id:
                    return time.monotonic() - started
            time.sleep(1)
        raise InfraError(
            f"the guest did not answer ssh within {timeout:.0f} s under {self.accelerator}; "
            f"console: {self.console_log}\n{_tail(self.console_log)}"
        )

    def _panicked(self, offset: int) -> bool:
        try:
            with self.console_log.open("rb") as fh:
                fh.seek(offset)
                return PANIC_MARK in fh.read()
        except OSError:
            return False

    def reboot(self) -> float:
        """Reboot the guest and wait until ssh answers from the new boot; return the seconds."""
        before = self.boot_id()
        say("rebooting the guest")
        started = time.monotonic()
        # The connection may drop before systemctl returns: its exit status says nothing.
        with contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run(
                [*self.ssh_argv(), "systemctl reboot"],
                capture_output=True,
                stdin=subprocess.DEVNULL,
                timeout=60,
                check=False,
            )
        self.wait_for_ssh(boot_timeout(self.accelerator), not_boot_id=before)
        seconds = time.monotonic() - started
        say(f"guest rebooted; ssh answered after {seconds:.0f} s")
        return seconds

    def shutdown(self, timeout: float = 60) -> None:
        """Power the guest off, then make sure QEMU is gone."""
        if self.proc.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                subprocess.run(
                    [*self.ssh_argv(), "systemctl poweroff"],
                    capture_output=True,
                    stdin=subprocess.DEVNULL,
                    timeout=30,
                    check=False,
                )
        qemu.stop(self.proc, grace=timeout)

    def kill(self) -> None:
        qemu.stop(self.proc)


def _run_dir() -> Path:
    base = out_dir() / "vm"
    base.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=base))
    path.chmod(0o755)
    link = base / f".latest.{os.getpid()}"
    link.unlink(missing_ok=True)
    link.symlink_to(path.name)
    link.replace(base / "latest")  # atomic: concurrent runs never see it missing
    return path


def _on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so the ``finally`` that kills QEMU runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def boot(image: Image | None = None, *, timeout: float | None = None) -> Iterator[Vm]:
    """Boot ``image`` (default: the cached image, built if needed) and yield the running Vm.

    QEMU is killed when the block exits; the run directory (console log, ssh
    config, command log) stays in ``out/vm/`` and ``out/vm/latest`` points at it.
    """
    if image is None:
        from ci import rootfs

        image = rootfs.ensure_image()
    run_dir = _run_dir()
    overlay = run_dir / "overlay.qcow2"
    with _sigterm_interrupts(), _removed_at_exit(overlay):
        qemu.create_overlay(image, overlay, log=run_dir / "qemu.log")
        key = ssh.make_key(run_dir)
        accelerator = accel.choose(image.kernel)
        launch = qemu.Launch(
            image=image,
            overlay=overlay,
            accelerator=accelerator,
            port=qemu.free_port(),
            console=run_dir / "console.log",
            cmdline_extra=ssh.key_cmdline_arg(key),
        )
        wait = timeout if timeout is not None else boot_timeout(accelerator)
        say(f"booting the VM under {accelerator} (run: {run_dir})")
        started = time.monotonic()
        proc, launch = qemu.start(launch, log=run_dir / "qemu.log")
        try:
            (run_dir / "qemu-command.sh").write_text(shlex.join(qemu.command(launch)) + "\n")
            ssh.write_config(run_dir / "ssh_config", launch.port, key)
            vm = Vm(run_dir, proc, launch.port, accelerator)
            vm.wait_for_ssh(wait)
            vm.boot_seconds = time.monotonic() - started
            say(f"ssh answered after {vm.boot_seconds:.0f} s")
            yield vm
        finally:
            qemu.stop(proc)


@contextlib.contextmanager
def _removed_at_exit(path: Path) -> Iterator[None]:
    """The run's overlay can be gigabytes: it goes when the run ends; the logs stay."""
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def show_command(accelerator: str | None = None) -> str:
    """The QEMU command a boot would run, without building or booting anything.

    Paths are those of the cache entry for the current inputs (it may not be
    built yet); the accelerator is ``accelerator``, else ``WINTERMUTE_ACCEL``,
    else ``tcg`` (the KVM probe runs only at boot); the port and key are examples.
    """
    from ci import rootfs

    entry = rootfs.entry_dir(rootfs.cache_key(rootfs.kernel_candidate()))
    image = Image(
        entry / "image.raw", entry / "vmlinuz", entry / "initrd.img", "(not read)", entry.name
    )
    run_dir = out_dir() / "vm" / "RUN"
    launch = qemu.Launch(
        image=image,
        overlay=run_dir / "overlay.qcow2",
        accelerator=accelerator or accel.forced() or "tcg",
        port=2222,
        console=run_dir / "console.log",
        cmdline_extra="wintermute.ssh_key=BASE64_PUBLIC_KEY",
    )
    return shlex.join(qemu.command(launch))


def shell() -> int:
    """Boot the VM and open an interactive ssh session; the VM stops when it ends."""
    with boot() as vm:
        say(f"ssh -F {vm.ssh_config} {ssh.HOST_ALIAS}   (exit the shell to stop the VM)")
        code = subprocess.run(vm.ssh_argv(), check=False).returncode
        vm.shutdown()
        return code


@dataclass(frozen=True)
class SmokeReport:
    kernel_release: str
    system_state: str
    boot_seconds: float
    accelerator: str


def smoke() -> SmokeReport:
    """Boot, check the guest reached a running system; raise naming failed units if not."""
    with boot() as vm:
        release = vm.run("uname -r").stdout.strip()
        state = vm.run("systemctl is-system-running --wait", check=False, timeout=180)
        report = SmokeReport(release, state.stdout.strip(), vm.boot_seconds, vm.accelerator)
        say(
            f"guest kernel {release} under {vm.accelerator}: ssh after {vm.boot_seconds:.0f} s, "
            f"system {report.system_state}"
        )
        if report.system_state != "running":
            failed = vm.run("systemctl --failed --no-legend --plain", check=False).stdout
            raise InfraError(
                f"the guest's system is {report.system_state}, not running; failed units:\n"
                f"{failed.strip()}\nconsole: {vm.console_log}"
            )
        vm.shutdown()
        return report


__all__ = ["Image", "Result", "SmokeReport", "Vm", "boot", "shell", "show_command", "smoke"]
