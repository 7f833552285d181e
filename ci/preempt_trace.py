"""The kernel's preempt-off latency tracer around a run in the guest, and its report.

On a kernel with ``CONFIG_PREEMPT_TRACER`` (the test suite's debug kernel:
``debug.config``), :func:`start` resets the tracer's maximum and switches
``preemptoff`` on; :func:`stop` reads the trace of the longest section seen
since (the tracer keeps only the longest), switches the tracer off, and
returns :class:`Section`: how long preemption stayed off, where the section
started and ended, which task ran it, and the stack where it ended.  The
tracer watches the whole kernel, so the longest section may be someone
else's: :attr:`Section.memlog` says whether memlog's functions are in it.  If
they are not, every section of memlog's during the run was shorter.

Under TCG, with KASAN and lockdep, every figure is many times what real
hardware gives: the report is for comparing runs and finding the culprit,
never a pass/fail threshold.  :func:`write_report` writes
``out/preempt-off.json`` and the raw trace to ``out/logs/preempt-off.trace``.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import asdict, dataclass
from typing import Protocol

from wintermute.paths import log_dir, out_dir

TRACING = "/sys/kernel/tracing"
TRACER = "preemptoff"
# The symbol of a module's function, as the trace prints it: "memlog_store [memlog]"
MEMLOG_SYMBOL = re.compile(r"\bmemlog_\w+|\[memlog\]")


class Guest(Protocol):
    """What tracing needs of a booted guest (``ci.vm.Vm`` has it)."""

    def run(
        self, cmd: str, *, check: bool = True, timeout: float = ...
    ) -> subprocess.CompletedProcess[str]: ...


@dataclass(frozen=True)
class Section:
    """The longest preempt-off section the tracer saw."""

    latency_us: int
    started_at: str
    ended_at: str
    task: str
    stack: tuple[str, ...]

    @property
    def memlog(self) -> bool:
        """Whether memlog's code started or ended the section, or is on its stack."""
        return any(
            MEMLOG_SYMBOL.search(text) for text in (self.started_at, self.ended_at, *self.stack)
        )

    def summary(self) -> str:
        """One line for a person."""
        whose = "memlog's" if self.memlog else "not memlog's: memlog's were all shorter"
        return (
            f"{self.latency_us} us, started at {self.started_at}, ended at {self.ended_at}, "
            f"task {self.task} ({whose})"
        )


def parse(trace: str) -> Section:
    """The longest section in the ``trace`` file of a latency tracer.

    Raises ValueError when the trace has no latency header (the tracer was not
    on, or saw no section).
    """
    latency = re.search(r"^# latency: (\d+) us", trace, re.MULTILINE)
    started = re.search(r"^#\s+=> started at:\s*(.*?)\s*$", trace, re.MULTILINE)
    ended = re.search(r"^#\s+=> ended at:\s*(.*?)\s*$", trace, re.MULTILINE)
    if not (latency and started and ended):
        raise ValueError("no latency header in the trace (was the tracer on?)")
    task = re.search(r"^#\s+\| task: (\S+)", trace, re.MULTILINE)
    stack = tuple(match.group(1) for match in re.finditer(r"^ => (\S.*?)\s*$", trace, re.MULTILINE))
    return Section(
        latency_us=int(latency.group(1)),
        started_at=started.group(1),
        ended_at=ended.group(1),
        task=task.group(1) if task else "",
        stack=stack,
    )


def available(guest: Guest) -> bool:
    """Whether the guest kernel has the preempt-off tracer (tracefs mounted if need be)."""
    guest.run(
        f"mountpoint -q {TRACING} || mount -t tracefs nodev {TRACING}", check=False, timeout=60
    )
    found = guest.run(f"grep -qw {TRACER} {TRACING}/available_tracers", check=False, timeout=60)
    return found.returncode == 0


def start(guest: Guest) -> bool:
    """Reset the tracer's maximum and switch it on; False if the kernel has no such tracer."""
    if not available(guest):
        return False
    guest.run(
        f"cd {TRACING} && echo 0 > tracing_max_latency && echo {TRACER} > current_tracer "
        "&& echo 1 > tracing_on",
        timeout=120,
    )
    return True


def stop(guest: Guest) -> str:
    """The trace of the longest section since :func:`start`; the tracer switched off."""
    trace = guest.run(f"cat {TRACING}/trace", timeout=300).stdout
    guest.run(f"echo nop > {TRACING}/current_tracer", timeout=120)
    return trace


def write_report(trace: str, during: str) -> Section:
    """Parse ``trace``, keep it under out/logs, write out/preempt-off.json; the section."""
    (log_dir() / "preempt-off.trace").write_text(trace)
    section = parse(trace)
    report = {"during": during, "tracer": TRACER, **asdict(section), "memlog": section.memlog}
    (out_dir() / "preempt-off.json").write_text(json.dumps(report, indent=1) + "\n")
    return section
