"""The whole test suite in two lanes, so that both of the machine's cores keep working.

``scripts/test`` without arguments (and so ``.ci/run``) runs this.  Alone, the
suite is one long chain: the built-kernel tier compiles the debug kernel on
both cores, then spends about 25 minutes in a TCG guest that keeps only one
of them busy, then the other VM tiers follow.  Here the tiers run in two
pytest sessions at once:

* the **kernel lane**: ``tests/built_kernel`` (the compile, then its guest);
* the **other lane**: every other tier, the host tiers first (unit,
  packaging, kernel builds, the stress programs' build), then the VM image
  is made, then the stock kernel's VM tiers (functional, system).  Those wait at a gate until the
  kernel lane's compile is over (``WINTERMUTE_VM_GATE``, opened by the
  ``kernel_build`` fixture, or by this runner when the kernel lane ends), so
  that two guests share the cores rather than a guest and ``make -j2``:
  guests starved by a compile hit their time limits.

The other lane prints as it goes; the kernel lane's output goes to
``out/logs/suite-kernel-lane.log`` and is printed whole when it is done.  The
two JUnit reports are merged into ``out/junit.xml``.  The exit code is the
first lane's that failed (pytest's codes), else 0.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wintermute.paths import REPO, log_dir, out_dir
from wintermute.run import say

GATE_ENV = "WINTERMUTE_VM_GATE"
KERNEL_BUILT_ENV = "WINTERMUTE_KERNEL_BUILT"


@dataclass(frozen=True)
class Lane:
    """One pytest session of the suite: its arguments and its JUnit report's name."""

    name: str
    args: tuple[str, ...]
    junit: str


KERNEL_LANE = Lane("kernel", ("tests/built_kernel",), "junit-kernel-lane.xml")
# Everything else, as one session (its tiers' conftest.py files load as in a
# plain run); its VM tests run last (vm_last)
OTHER_LANE = Lane("other", ("tests", "--ignore=tests/built_kernel"), "junit-other-lane.xml")
LANES = (KERNEL_LANE, OTHER_LANE)


def vm_last(items: list[Any]) -> None:
    """Reorder pytest ``items`` in place: those without the ``vm`` marker first, each
    group in its own order (the host tiers run while the kernel lane compiles)."""
    items.sort(key=lambda item: item.get_closest_marker("vm") is not None)


def pytest_command(lane: Lane, out: Path) -> list[str]:
    return [sys.executable, "-m", "pytest", f"--junitxml={out / lane.junit}", *lane.args]


def merge_junit(reports: Sequence[Path], dest: Path) -> None:
    """One ``<testsuites>`` holding every report's suites (a missing report is skipped)."""
    merged = ET.Element("testsuites")
    for report in reports:
        if not report.exists():
            continue
        root = ET.parse(report).getroot()
        suites = [root] if root.tag == "testsuite" else list(root)
        merged.extend(suites)
    tmp = dest.with_name(dest.name + ".tmp")
    ET.ElementTree(merged).write(tmp, encoding="utf-8", xml_declaration=True)
    tmp.replace(dest)


def exit_code(codes: Sequence[int]) -> int:
    """The first non-zero code, else 0."""
    return next((code for code in codes if code != 0), 0)


def open_gate() -> None:
    """Called by the kernel lane once its kernel is built (no-op outside the runner)."""
    gate = os.environ.get(KERNEL_BUILT_ENV)
    if gate:
        Path(gate).touch()


def pass_vm_gate(gate: Path, poll_seconds: float = 5.0) -> None:
    """Make the VM image (while the kernel compiles), then wait for ``gate`` to exist."""
    from ci import rootfs

    rootfs.ensure_image()
    if gate.exists():
        return
    say("the VM tiers wait for the kernel lane's compile (two guests share the cores better)")
    started = time.monotonic()
    while not gate.exists():
        time.sleep(poll_seconds)
    waited = time.monotonic() - started
    say(f"the kernel lane's compile is over: the VM tiers go on (waited {waited:.0f} s)")


def _open_gate_when_done(proc: subprocess.Popen[bytes], gate: Path) -> None:
    proc.wait()
    gate.touch()


def run(repo: Path = REPO, lanes: tuple[Lane, Lane] = LANES) -> int:
    """Both lanes, side by side (the kernel lane first in ``lanes``); the suite's exit code."""
    kernel_lane, other_lane = lanes
    out = out_dir()
    gate = out / ".suite-vm-gate"
    gate.unlink(missing_ok=True)
    kernel_log = log_dir() / "suite-kernel-lane.log"
    # unbuffered: the log is for following as it grows
    env = {**os.environ, KERNEL_BUILT_ENV: str(gate), "PYTHONUNBUFFERED": "1"}
    name = " ".join(kernel_lane.args)
    say(f"{name} runs beside the other tiers (log: {kernel_log})")
    started = time.monotonic()
    with kernel_log.open("wb") as log:
        kernel = subprocess.Popen(
            pytest_command(kernel_lane, out),
            cwd=repo,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    threading.Thread(target=_open_gate_when_done, args=(kernel, gate), daemon=True).start()
    try:
        other = subprocess.run(
            pytest_command(other_lane, out), cwd=repo, env={**os.environ, GATE_ENV: str(gate)}
        ).returncode
        if kernel.poll() is None:
            say(f"the other tiers are done; waiting for {name} (log: {kernel_log})")
        kernel_code = kernel.wait()
    except KeyboardInterrupt:
        os.killpg(kernel.pid, signal.SIGINT)
        kernel.wait()
        raise
    print(f"\n===== {name} (from {kernel_log}) =====", flush=True)
    sys.stdout.buffer.write(kernel_log.read_bytes())
    sys.stdout.flush()
    merge_junit([out / lane.junit for lane in lanes], out / "junit.xml")
    minutes = (time.monotonic() - started) / 60
    say(f"both lanes done in {minutes:.1f} min: kernel lane exit {kernel_code}, other {other}")
    return exit_code([kernel_code, other])


if __name__ == "__main__":
    sys.exit(run())
