"""Boot the VM from the cached image and reach it over ssh.

``with boot() as vm:`` makes a run directory under ``out/vm/``, a copy-on-write
overlay over the cached image (which is never written), a key for the run,
chooses the accelerator, starts QEMU with ssh forwarded to a free port on
127.0.0.1, and waits for ssh with a hard timeout.  The serial console goes to
``console.log`` in the run directory, the QEMU command to ``qemu-command.sh``.
QEMU is always killed when the block ends, however it ends (an exception,
Ctrl-C, SIGTERM), and dies with this process should it be killed outright;
``boot(keep=True)`` instead leaves it running for a person to look around.

A guest whose kernel crashes (``BUG:``, ``Oops``, a panic) fails the command
that was running with the console log's tail, at once rather than at the
command's timeout.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shlex
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
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
# What a dying guest kernel prints on the serial console.
CRASH_MARKS = (
    b"Kernel panic - not syncing",
    b"BUG: ",
    b"Oops: ",
    b"general protection fault",
    b"double fault",
    b"WARNING: CPU: ",
)
COMMAND_TIMEOUT = 600.0
POLL_SECONDS = 0.5


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


def crash_line(console: Path, offset: int = 0) -> str | None:
    """The first line of ``console`` from ``offset`` on that shows the kernel crashing."""
    try:
        with console.open("rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except OSError:
        return None
    for line in data.splitlines():
        if any(mark in line for mark in CRASH_MARKS):
            return line.decode(errors="replace").strip()
    return None


@dataclass
class Vm:
    """A running guest, reached with ssh as root."""

    run_dir: Path
    proc: subprocess.Popen[bytes]
    launch: qemu.Launch
    accelerator: str
    boot_seconds: float = 0.0
    _boot_offset: int = 0

    @property
    def port(self) -> int:
        return self.launch.port

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
        proc = self._watched(text, timeout, log_path)
        with log_path.open("a") as fh:
            fh.write(f"$ {text}\n{proc.stdout}{proc.stderr}# exit {proc.returncode}\n")
        if check and proc.returncode != 0:
            raise InfraError(
                f"guest command failed with exit {proc.returncode}: {text}; see {log_path}\n"
                f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
            )
        return proc

    def _watched(
        self, text: str, timeout: float, log_path: Path
    ) -> subprocess.CompletedProcess[str]:
        """Run ``text`` over ssh, failing at once if the guest's kernel crashes or QEMU dies."""
        offset = self._console_size()
        started = time.monotonic()
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            ssh_proc = subprocess.Popen(
                [*self.ssh_argv(), text], stdin=subprocess.DEVNULL, stdout=out, stderr=err
            )
            try:
                while ssh_proc.poll() is None:
                    problem = self._trouble(offset)
                    if problem is None and time.monotonic() - started > timeout:
                        problem = f"guest command timed out after {timeout:.0f} s"
                    if problem is not None:
                        with log_path.open("a") as fh:
                            fh.write(f"$ {text}\n# {problem}\n")
                        raise InfraError(
                            f"{problem}: {text}; console: {self.console_log}\n"
                            f"{_tail(self.console_log)}"
                        )
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        ssh_proc.wait(POLL_SECONDS)
            finally:
                if ssh_proc.poll() is None:
                    ssh_proc.kill()
                    ssh_proc.wait()
            out.seek(0)
            err.seek(0)
            return subprocess.CompletedProcess(
                text,
                ssh_proc.returncode,
                out.read().decode(errors="replace"),
                err.read().decode(errors="replace"),
            )

    def _console_size(self) -> int:
        return self.console_log.stat().st_size if self.console_log.exists() else 0

    def _trouble(self, console_offset: int) -> str | None:
        """Why the guest can no longer answer, if it cannot: a crash or QEMU gone."""
        if self.proc.poll() is not None:
            return f"QEMU exited with {self.proc.returncode}"
        line = crash_line(self.console_log, console_offset)
        if line is not None:
            return f"the guest kernel crashed ({line})"
        return None

    def crashes_since_boot(self) -> str | None:
        """The first crash line the console shows since this guest last booted, if any."""
        return crash_line(self.console_log, self._boot_offset)

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
        console_offset = self._console_size()
        self._boot_offset = console_offset
        while time.monotonic() - started < timeout:
            problem = self._trouble(console_offset)
            if problem is not None:
                raise InfraError(
                    f"{problem} before ssh answered; console: {self.console_log}\n"
                    f"{_tail(self.console_log)}"
                )
            with contextlib.suppress(subprocess.TimeoutExpired):
                probe = subprocess.run(
                    [
                        *self.ssh_argv(*ssh.UNSHARED, "-o", "ConnectTimeout=5"),
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

    def reboot(self, slowdown: float = 1.0) -> float:
        """Reboot the guest and wait until ssh answers from the new boot; return the seconds.

        ``slowdown`` multiplies the ssh wait (a debug kernel boots several times slower).
        """
        before = self.boot_id()
        say("rebooting the guest")
        started = time.monotonic()
        # The connection may drop before systemctl returns: its exit status says nothing.
        with contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run(
                [*self.ssh_argv(*ssh.UNSHARED), "systemctl reboot"],
                capture_output=True,
                stdin=subprocess.DEVNULL,
                timeout=60,
                check=False,
            )
        ssh.close_master(self.ssh_config)
        self.wait_for_ssh(boot_timeout(self.accelerator) * slowdown, not_boot_id=before)
        seconds = time.monotonic() - started
        say(f"guest rebooted; ssh answered after {seconds:.0f} s")
        return seconds

    def restart(
        self, kernel: Path, initrd: Path, *, cpus: int | None = None, slowdown: float = 1.0
    ) -> float:
        """Power off, then boot the same disk with another kernel; return ssh's seconds.

        ``slowdown`` multiplies the ssh wait, as for :meth:`reboot`.

        QEMU boots the kernel directly, so a newly installed guest kernel is
        copied out and handed to a new QEMU.
        """
        image = dataclasses.replace(self.launch.image, kernel=kernel, initrd=initrd)
        launch = dataclasses.replace(
            self.launch,
            image=image,
            cpus=cpus if cpus is not None else self.launch.cpus,
            from_disk=False,
        )
        return self._relaunch(launch, kernel.name, slowdown)

    def restart_from_disk(self, *, slowdown: float = 1.0) -> float:
        """Power off, then boot the same disk through its firmware and boot loader.

        From then on the guest's own GRUB chooses what boots, reboots included.
        The disk needs a boot loader (``grub-install``) and ssh a key on it
        (the first boot's ``wintermute.ssh_key`` left one in root's
        authorized_keys).
        """
        return self._relaunch(
            dataclasses.replace(self.launch, from_disk=True), "its boot loader", slowdown
        )

    def _relaunch(self, launch: qemu.Launch, what: str, slowdown: float) -> float:
        self.shutdown()
        say(f"booting the guest disk with {what} under {self.accelerator}")
        started = time.monotonic()
        self.proc, self.launch = qemu.start(launch, log=self.run_dir / "qemu.log")
        (self.run_dir / "qemu-command.sh").write_text(shlex.join(qemu.command(self.launch)) + "\n")
        ssh.write_config(self.ssh_config, self.launch.port, self.run_dir / "id_ed25519")
        self.wait_for_ssh(boot_timeout(self.accelerator) * slowdown)
        seconds = time.monotonic() - started
        say(f"ssh answered after {seconds:.0f} s")
        return seconds

    def shutdown(self, timeout: float = 60) -> None:
        """Power the guest off, then make sure QEMU is gone."""
        if self.proc.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                subprocess.run(
                    [*self.ssh_argv(*ssh.UNSHARED), "systemctl poweroff"],
                    capture_output=True,
                    stdin=subprocess.DEVNULL,
                    timeout=30,
                    check=False,
                )
        ssh.close_master(self.ssh_config)
        qemu.stop(self.proc, grace=timeout)

    def kill(self) -> None:
        ssh.close_master(self.ssh_config)
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
def boot(
    image: Image | None = None,
    *,
    timeout: float | None = None,
    keep: bool = False,
    cmdline: str = "",
) -> Iterator[Vm]:
    """Boot ``image`` (default: the cached image, built if needed) and yield the running Vm.

    ``cmdline`` is added to the guest kernel's command line.

    QEMU is killed when the block exits, unless ``keep``: then it goes on running
    (with its overlay) after this process ends, and how to reach and stop it is
    printed.  The run directory (console log, ssh config, command log) stays in
    ``out/vm/`` and ``out/vm/latest`` points at it.
    """
    if image is None:
        from ci import rootfs

        image = rootfs.ensure_image()
    run_dir = _run_dir()
    overlay = run_dir / "overlay.qcow2"
    vm: Vm | None = None
    with _sigterm_interrupts(), _removed_at_exit(overlay, unless=lambda: keep):
        qemu.create_overlay(image, overlay, log=run_dir / "qemu.log")
        key = ssh.make_key(run_dir)
        accelerator = accel.choose(image.kernel)
        launch = qemu.Launch(
            image=image,
            overlay=overlay,
            accelerator=accelerator,
            port=qemu.free_port(),
            console=run_dir / "console.log",
            cmdline_extra=" ".join(filter(None, (ssh.key_cmdline_arg(key), cmdline))),
        )
        wait = timeout if timeout is not None else boot_timeout(accelerator)
        say(f"booting the VM under {accelerator} (run: {run_dir})")
        started = time.monotonic()
        proc, launch = qemu.start(launch, log=run_dir / "qemu.log", detach=keep)
        vm = Vm(run_dir, proc, launch, accelerator)
        try:
            (run_dir / "qemu-command.sh").write_text(shlex.join(qemu.command(launch)) + "\n")
            ssh.write_config(run_dir / "ssh_config", launch.port, key)
            vm.wait_for_ssh(wait)
            vm.boot_seconds = time.monotonic() - started
            say(f"ssh answered after {vm.boot_seconds:.0f} s")
            yield vm
        finally:
            if keep and vm.proc.poll() is None:
                say(
                    f"the guest keeps running: ssh -F {vm.ssh_config} {ssh.HOST_ALIAS}; "
                    f"stop it with: kill {vm.proc.pid}"
                )
            else:
                ssh.close_master(vm.ssh_config)
                qemu.stop(vm.proc)


@contextlib.contextmanager
def _removed_at_exit(path: Path, unless: Callable[[], bool]) -> Iterator[None]:
    """The run's overlay can be gigabytes: it goes when the run ends; the logs stay."""
    try:
        yield
    finally:
        if not unless():
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


def shell(command: str | None = None) -> int:
    """Boot the VM and run ``command`` in it, or an interactive shell; return its exit status.

    The VM stops when the command or shell ends.  A guest that crashed meanwhile
    is an InfraError, not the command's status.
    """
    with boot() as vm:
        if command is None:
            say(f"ssh -F {vm.ssh_config} {ssh.HOST_ALIAS}   (exit the shell to stop the VM)")
        argv = vm.ssh_argv() if command is None else [*vm.ssh_argv(), command]
        code = subprocess.run(argv, check=False).returncode
        crash = vm.crashes_since_boot()
        if crash is not None:
            raise InfraError(f"the guest kernel crashed ({crash}); console: {vm.console_log}")
        vm.shutdown()
        return code


__all__ = ["Image", "Vm", "boot", "crash_line", "shell", "show_command"]
