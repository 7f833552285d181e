"""Choose QEMU's accelerator: KVM only if a probe guest actually makes progress.

On these machines /dev/kvm opens but KVM guests stall right after SeaBIOS,
so opening it proves nothing.  The probe boots the guest kernel alone under
KVM and waits for the kernel's first console line; without it, TCG.
``WINTERMUTE_ACCEL=kvm|tcg`` skips the probe.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

from wintermute.errors import UserError
from wintermute.run import say

PROBE_SECONDS = 10.0
ENV = "WINTERMUTE_ACCEL"
CHOICES = ("kvm", "tcg")
PROGRESS_MARK = b"Linux version"

_chosen: str | None = None


def probe_kvm(kernel: Path, seconds: float = PROBE_SECONDS) -> bool:
    """True if a KVM guest booting ``kernel`` prints the kernel banner within ``seconds``."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    with tempfile.TemporaryDirectory(prefix="wintermute-kvm-probe-") as tmp:
        console = Path(tmp) / "console.log"
        cmd = [
            "qemu-system-x86_64", "-accel", "kvm", "-m", "256", "-nodefaults",
            "-no-user-config", "-display", "none", "-no-reboot",
            "-serial", f"file:{console}", "-kernel", str(kernel),
            "-append", "console=ttyS0 panic=-1 earlyprintk=serial",
        ]  # fmt: skip
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                if console.exists() and PROGRESS_MARK in console.read_bytes():
                    return True
                if proc.poll() is not None:
                    return False
                time.sleep(0.25)
            return False
        finally:
            proc.kill()
            proc.wait()


def forced() -> str | None:
    """The accelerator ``WINTERMUTE_ACCEL`` asks for, if any."""
    value = os.environ.get(ENV)
    if not value:
        return None
    if value not in CHOICES:
        raise UserError(f"{ENV}={value!r}: use kvm or tcg")
    return value


def choose(kernel: Path) -> str:
    """``kvm`` or ``tcg``, printed on one line with the reason; probed once per process."""
    global _chosen
    chosen = forced()
    if chosen:
        say(f"accelerator: {chosen} (forced by {ENV})")
        return chosen
    if _chosen is None:
        started = time.monotonic()
        ok = probe_kvm(kernel)
        seconds = time.monotonic() - started
        if ok:
            _chosen = "kvm"
            say(f"accelerator: kvm (a probe guest printed its kernel banner in {seconds:.1f} s)")
        else:
            _chosen = "tcg"
            say(
                f"accelerator: tcg (no usable KVM: a probe guest printed nothing under KVM "
                f"in {seconds:.0f} s; {ENV}=kvm|tcg skips the probe)"
            )
    return _chosen
