"""Choose QEMU's accelerator: KVM only if a probe guest actually makes progress.

On these machines /dev/kvm opens but KVM guests stall right after SeaBIOS,
so opening it proves nothing.  The probe boots the guest kernel alone under
KVM and waits for the kernel's first console line; without it, TCG.  The
answer is kept for the rest of the host's boot (``cache_dir()/accel.json``,
keyed by the host's boot id), so each test process does not pay the probe.
``WINTERMUTE_ACCEL=kvm|tcg`` skips the probe.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from wintermute.errors import UserError
from wintermute.paths import atomic_file, cache_dir
from wintermute.run import say

PROBE_SECONDS = 10.0
ENV = "WINTERMUTE_ACCEL"
CHOICES = ("kvm", "tcg")
PROGRESS_MARK = b"Linux version"
HOST_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")

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


def _cache_file() -> Path:
    return cache_dir() / "accel.json"


def _host_boot_id() -> str:
    return HOST_BOOT_ID.read_text().strip()


def _remembered() -> dict[str, str] | None:
    """The probe's answer from earlier in this host boot, if any."""
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(_cache_file().read_text())
        if data.get("host_boot_id") == _host_boot_id() and data.get("accel") in CHOICES:
            return data
    return None


def _probe_and_remember(kernel: Path) -> dict[str, str]:
    started = time.monotonic()
    ok = probe_kvm(kernel)
    seconds = time.monotonic() - started
    if ok:
        reason = f"a probe guest printed its kernel banner under KVM in {seconds:.1f} s"
    else:
        reason = f"no usable KVM: a probe guest printed nothing under KVM in {seconds:.0f} s"
    data = {
        "accel": "kvm" if ok else "tcg",
        "reason": reason,
        "host_boot_id": _host_boot_id(),
        "probed_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    with atomic_file(_cache_file()) as tmp:
        tmp.write_text(json.dumps(data, indent=1) + "\n")
    return data


def choose(kernel: Path) -> str:
    """``kvm`` or ``tcg``, printed on one line with the reason; probed once per host boot."""
    global _chosen
    chosen = forced()
    if chosen:
        say(f"accelerator: {chosen} (forced by {ENV})")
        return chosen
    if _chosen is None:
        data = _remembered()
        if data is not None:
            reason = f"{data['reason']}, at {data['probed_at']}"
        else:
            data = _probe_and_remember(kernel)
            reason = data["reason"]
        _chosen = data["accel"]
        say(f"accelerator: {_chosen} ({reason}; {ENV}=kvm|tcg skips the probe)")
    return _chosen
