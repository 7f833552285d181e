"""ci/preempt_trace.py: the latency tracer's trace parsed, attributed, switched on and off."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ci import preempt_trace

# The trace file of the preemptoff tracer, as kernel/trace/trace.c prints its
# latency header and trace_output.c a stack trace ("<stack trace>", " => sym").
MEMLOG_TRACE = """\
# tracer: preemptoff
#
# preemptoff latency trace v1.1.5 on 7.2.13-20261207-wintermute-debug
# --------------------------------------------------------------------
# latency: 1843 us, #4/4, CPU#1 | (M:lazy VP:0, KP:0, SP:0 HP:0 #P:2)
#    -----------------
#    | task: memlog_stress-612 (uid:0 nice:0 policy:0 rt_prio:0)
#    -----------------
#  => started at: memlog_all_sync [memlog]
#  => ended at:   memlog_all_sync [memlog]
#
#
#                    _------=> CPU#
#  cmd     pid     |||||| time  |   caller
#     \\   /        ||||||  \\    |    /
memlog_s-612       1...1.    0us : memlog_all_sync <-memlog_read_iter
memlog_s-612       1...1. 1843us : memlog_all_sync <-memlog_read_iter
memlog_s-612       1...1. 1845us : <stack trace>
 => memlog_read_iter [memlog]
 => vfs_read
 => ksys_read
 => do_syscall_64
"""

OTHER_TRACE = """\
# tracer: preemptoff
#
# latency: 95 us, #4/4, CPU#0 | (M:lazy VP:0, KP:0, SP:0 HP:0 #P:2)
#    -----------------
#    | task: kworker/0:1-31 (uid:0 nice:0 policy:0 rt_prio:0)
#    -----------------
#  => started at: __schedule
#  => ended at:   finish_task_switch
#
kworker/-31        0...1.   95us : <stack trace>
 => schedule
 => worker_thread
"""


def test_the_longest_section_is_read_from_the_latency_header_and_its_stack() -> None:
    section = preempt_trace.parse(MEMLOG_TRACE)
    assert section.latency_us == 1843
    assert section.started_at == section.ended_at == "memlog_all_sync [memlog]"
    assert section.task == "memlog_stress-612"
    assert section.stack == (
        "memlog_read_iter [memlog]",
        "vfs_read",
        "ksys_read",
        "do_syscall_64",
    )
    assert section.memlog
    assert "1843 us" in section.summary() and "memlog's" in section.summary()


def test_a_section_without_memlog_s_functions_is_not_attributed_to_memlog() -> None:
    section = preempt_trace.parse(OTHER_TRACE)
    assert (section.latency_us, section.started_at, section.ended_at) == (
        95,
        "__schedule",
        "finish_task_switch",
    )
    assert not section.memlog
    assert "memlog's were all shorter" in section.summary()


def test_a_trace_without_a_latency_header_is_refused() -> None:
    with pytest.raises(ValueError, match="no latency header"):
        preempt_trace.parse("# tracer: nop\n#\n")


class FakeGuest:
    """Answers the tracer's commands; ``tracers`` is available_tracers."""

    def __init__(self, tracers: str) -> None:
        self.tracers = tracers
        self.commands: list[str] = []

    def run(
        self, cmd: str, *, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        self.commands.append(cmd)
        rc, out = 0, ""
        if "available_tracers" in cmd:
            rc = 0 if preempt_trace.TRACER in self.tracers.split() else 1
        elif cmd.startswith("cat "):
            out = MEMLOG_TRACE
        return subprocess.CompletedProcess(cmd, rc, out, "")


def test_start_resets_the_maximum_and_switches_the_tracer_on() -> None:
    guest = FakeGuest("preemptoff nop")
    assert preempt_trace.start(guest)
    switch = guest.commands[-1]
    assert switch.index("tracing_max_latency") < switch.index("current_tracer")
    assert "echo preemptoff > current_tracer" in switch


def test_start_on_a_kernel_without_the_tracer_changes_nothing() -> None:
    guest = FakeGuest("nop")
    assert not preempt_trace.start(guest)
    assert not any("current_tracer" in cmd for cmd in guest.commands)


def test_stop_returns_the_trace_and_switches_the_tracer_off() -> None:
    guest = FakeGuest("preemptoff nop")
    assert preempt_trace.stop(guest) == MEMLOG_TRACE
    assert guest.commands[-1] == f"echo nop > {preempt_trace.TRACING}/current_tracer"


def test_the_report_keeps_the_trace_and_says_whose_section_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WINTERMUTE_OUT", str(tmp_path))
    section = preempt_trace.write_report(MEMLOG_TRACE, "memlog_stress --seed 7")
    report = json.loads((tmp_path / "preempt-off.json").read_text())
    assert report["latency_us"] == section.latency_us == 1843
    assert report["memlog"] is True and report["during"] == "memlog_stress --seed 7"
    assert (tmp_path / "logs" / "preempt-off.trace").read_text() == MEMLOG_TRACE
