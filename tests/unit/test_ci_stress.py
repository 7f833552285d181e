"""ci/stress.py: the kernel log patterns, the summary parsing, the verdict, the guest runs."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ci import stress
from ci.stress import (
    KERNEL_LOG_PATTERNS,
    judge,
    kernel_log_problems,
    kmemleak_scan,
    log_since,
    parse_summary,
    run_fuzz,
    run_stress,
)
from wintermute.errors import InfraError, UserError

# One real-looking line per pattern, matching that pattern and no other: drop
# a pattern from KERNEL_LOG_PATTERNS and its line goes unnoticed here.
SAMPLES = {
    "warning": "[  123.456789] WARNING: CPU: 1 PID: 4242 at drivers/char/memlog/memlog_main.c:312 "
    "memlog_write+0x2f1/0x4a0 [memlog]",
    "bug": "[  130.000001] BUG: sleeping function called from invalid context at "
    "kernel/locking/mutex.c:580",
    "kasan": "[   88.123456] KASAN: null-ptr-deref in range "
    "[0x0000000000000010-0x0000000000000017]",
    "lock cycle": "[   77.000100] [ INFO: possible circular locking dependency detected ]",
    "lockdep": "[  201.500000] INFO: lockdep is turned off.",
    "hung task": "[  245.678901] INFO: task memlog_stress:517 blocked for more than 120 seconds.",
    "kmemleak object": "unreferenced object 0xffff888003f1a400 (size 64):",
    "kmemleak summary": "[  612.000000] kmemleak: 3 new suspected memory leaks "
    "(see /sys/kernel/debug/kmemleak)",
    "oops": "[  300.100000] Oops: 0002 [#1] PREEMPT SMP NOPTI",
    "general protection": "[  301.200000] general protection fault, probably for non-canonical "
    "address 0xdffffc0000000002: 0000 [#1] PREEMPT SMP NOPTI",
    "ubsan": "[   55.500000] UBSAN: shift-out-of-bounds in drivers/char/memlog/memlog_ring.c:97:24",
    "panic": "[  400.000000] Kernel panic - not syncing: Fatal exception",
}

# What a debug kernel prints when all is well
BENIGN_LOG = """\
[    0.000000] Linux version 6.1.0-wintermute (wintermute@wintermute.invalid)
[    0.052000] kasan: KernelAddressSanitizer initialized (generic)
[    0.061000] Lock dependency validator: Copyright (c) 2006 Red Hat, Inc., Ingo Molnar
[    0.061100] ... MAX_LOCKDEP_SUBCLASSES:  8
[    0.061200] ... MAX_LOCKDEP_KEYS:        8192
[    0.310000] kmemleak: Kernel memory leak detector initialized (mem pool available: 15588)
[    0.311000] kmemleak: Automatic memory scanning thread started
[    9.870000] memlog: driver version 0.2.0, ring size 4194304 bytes per uid
[   10.100000] audit: type=1400 audit(1700000000.000:2): apparmor="STATUS" operation="profile_load"
"""

KASAN_REPORT = """\
[  150.000000] ==================================================================
[  150.000001] BUG: KASAN: slab-use-after-free in memlog_read+0x1b2/0x3c0 [memlog]
[  150.000002] Read of size 8 at addr ffff888012345678 by task memlog_stress/411
[  150.000003] CPU: 0 PID: 411 Comm: memlog_stress Not tainted 6.1.0-wintermute #1
[  150.000004] ==================================================================
"""


def test_every_pattern_has_its_sample_line() -> None:
    """The samples cover exactly the patterns (a new pattern needs its line here)."""
    assert {name for name, _ in KERNEL_LOG_PATTERNS} == set(SAMPLES)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_each_kind_of_kernel_trouble_is_found(name: str) -> None:
    """Each sample is caught, by its own pattern alone: without it, nothing would catch it."""
    line = SAMPLES[name]
    matching = [n for n, pattern in KERNEL_LOG_PATTERNS if pattern.search(line)]
    assert matching == [name]
    assert kernel_log_problems(f"[    1.0] ok\n{line}\n[    2.0] ok\n") == [line.strip()]


def test_the_brief_patterns_are_all_there() -> None:
    """WARNING:, BUG:, KASAN, lock cycles, lockdep, hung tasks, kmemleak, Oops, GPF, UBSAN."""
    texts = {pattern.pattern for _, pattern in KERNEL_LOG_PATTERNS}
    for needed in (
        "WARNING:",
        "BUG:",
        "KASAN",
        "possible circular locking",
        "lockdep",
        "unreferenced object",
        "general protection",
        "UBSAN",
    ):
        assert needed in texts
    hung = "INFO: task kworker/0:1:12 blocked for more than 5 seconds."
    assert any(re.search(t, hung) for t in texts)
    assert any(re.search(t, "Oops: 0000 [#1] SMP") for t in texts)


def test_a_healthy_debug_kernel_log_has_no_problems() -> None:
    """Boot lines of KASAN, lockdep and kmemleak, and memlog's own, are no problem."""
    assert kernel_log_problems(BENIGN_LOG) == []


def test_a_kasan_report_is_named_once_by_its_first_line() -> None:
    """A line matching several patterns is listed once; the report's other lines are not."""
    assert kernel_log_problems(BENIGN_LOG + KASAN_REPORT + KASAN_REPORT) == [
        "[  150.000001] BUG: KASAN: slab-use-after-free in memlog_read+0x1b2/0x3c0 [memlog]"
    ]


def test_problems_come_in_log_order() -> None:
    log = "\n".join([SAMPLES["ubsan"], SAMPLES["warning"], SAMPLES["hung task"]])
    assert kernel_log_problems(log) == [SAMPLES["ubsan"], SAMPLES["warning"], SAMPLES["hung task"]]


def test_the_kernel_log_is_read_from_the_runs_marker_on() -> None:
    """What came before the marker (boot, an earlier run) is not this run's."""
    log = f"{SAMPLES['warning']}\nM-1\n{SAMPLES['bug']}\nM-1\nafter\n"
    assert log_since(log, "M-1") == "after"
    assert log_since(log, "absent") == log


# ---- summaries ----------------------------------------------------------------

SUMMARY = {"program": "memlog_stress", "ok": True, "seed": 42, "violations": {}}


def test_the_summary_is_the_last_json_line() -> None:
    """Noise, an earlier summary-like line and a broken one are skipped."""
    stdout = "\n".join(
        [
            "memlog_stress seed=42",
            json.dumps({"program": "memlog_stress", "ok": False}),
            "{not json",
            json.dumps(SUMMARY),
            "trailing noise",
            json.dumps({"no": "program key"}),
        ]
    )
    assert parse_summary(stdout) == SUMMARY


def test_output_without_a_summary_is_an_error() -> None:
    with pytest.raises(ValueError, match="no JSON summary"):
        parse_summary("memlog_fuzz seed=1\nSegmentation fault\n")


def test_a_passing_run_passes() -> None:
    judge("memlog_stress", 42, 0, SUMMARY, [])


def test_a_failed_run_names_its_seed_reason_and_violations() -> None:
    summary = {
        **SUMMARY,
        "ok": False,
        "reason": "latency: writer 0 (uid 30000): write still in flight after 5.0 s",
        "violations": {"latency": 3},
    }
    with pytest.raises(AssertionError) as info:
        judge("memlog_stress", 42, 1, summary, [])
    text = str(info.value)
    assert "seed 42" in text and "--seed 42" in text
    assert "write still in flight" in text and "'latency': 3" in text


def test_a_nonzero_exit_fails_even_if_the_summary_says_ok() -> None:
    with pytest.raises(AssertionError, match="exit 3"):
        judge("memlog_fuzz", 7, 3, {**SUMMARY, "program": "memlog_fuzz"}, [])


def test_kernel_log_problems_fail_a_run_that_passed() -> None:
    with pytest.raises(AssertionError, match=r"seed 9 left 1 kernel log problem.*WARNING: CPU"):
        judge("memlog_fuzz", 9, 0, SUMMARY, [SAMPLES["warning"]])


# ---- runs in a (fake) guest ---------------------------------------------------


class FakeGuest:
    """Answers the runner's commands: the program's output, then the kernel log."""

    def __init__(
        self,
        stdout: str,
        *,
        returncode: int = 0,
        stderr: str = "",
        before: str = "",
        after: str = "",
        kmemleak: bool = False,
        raise_on_run: Exception | None = None,
        crash: str | None = None,
    ) -> None:
        self.stdout, self.returncode, self.stderr = stdout, returncode, stderr
        self.before, self.after = before, after
        self.kmemleak = kmemleak
        self.raise_on_run = raise_on_run
        self.crash = crash
        self.marker = ""
        self.puts: list[tuple[Path, str]] = []
        self.commands: list[tuple[str, float]] = []

    def put(self, local: Path, remote: str) -> None:
        self.puts.append((local, remote))

    def run(
        self,
        cmd: str | list[str],
        *,
        check: bool = True,
        timeout: float = 600,
        log: Path | None = None,
        user: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        text = cmd if isinstance(cmd, str) else " ".join(cmd)
        self.commands.append((text, timeout))
        out, err, rc = "", "", 0
        if "/dev/kmsg" in text:
            self.marker = text.split("echo ")[1].split(" >")[0]
        elif text.startswith("timeout "):
            if self.raise_on_run:
                raise self.raise_on_run
            out, err, rc = self.stdout, self.stderr, self.returncode
        elif text == "dmesg":
            out = f"{self.before}\n[   5.0] {self.marker}\n{self.after}\n"
        elif text.startswith("test -w"):
            rc = 0 if self.kmemleak else 1
        elif text.startswith("cat /sys/kernel/debug/kmemleak"):
            out = SAMPLES["kmemleak object"] + "\n"
        return subprocess.CompletedProcess(text, rc, out, err)

    def crashes_since_boot(self) -> str | None:
        return self.crash

    def program_command(self) -> tuple[str, float]:
        return next(c for c in self.commands if c[0].startswith("timeout "))


@pytest.fixture(autouse=True)
def _out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WINTERMUTE_OUT", str(tmp_path / "out"))


def _stdout(**fields: Any) -> str:
    return "memlog_stress seed=42\n" + json.dumps({**SUMMARY, **fields}) + "\n"


def test_run_stress_copies_runs_and_returns_the_summary(tmp_path: Path) -> None:
    """The binary goes to the guest, runs with the seed and seconds, under a timeout."""
    guest = FakeGuest(_stdout(), before=SAMPLES["warning"])
    summary = run_stress(guest, tmp_path / "memlog_stress", 20, 42)
    assert summary["ok"] is True and summary["exit_status"] == 0
    assert summary["kernel_log_problems"] == []  # the warning came before the run
    assert guest.puts == [(tmp_path / "memlog_stress", f"{stress.GUEST_DIR}/memlog_stress")]
    command, timeout = guest.program_command()
    assert "--seconds 20 --seed 42 --ns-uids 16 --max-bytes 8388608" in command
    limit = int(command.split()[3])
    assert limit > 2 * 20 + 240  # beyond the program's own watchdog
    assert timeout > limit  # and ssh waits beyond timeout(1)
    assert json.loads((tmp_path / "out" / "memlog_stress.json").read_text())["seed"] == 42


def test_run_fuzz_bounds_the_run_by_seconds(tmp_path: Path) -> None:
    guest = FakeGuest(_stdout(program="memlog_fuzz"))
    run_fuzz(guest, tmp_path / "memlog_fuzz", 30, 5)
    command, _ = guest.program_command()
    assert "--seconds 30 --seed 5 --iterations" in command


def test_a_violation_fails_the_run_with_its_seed(tmp_path: Path) -> None:
    guest = FakeGuest(
        _stdout(ok=False, reason="uid: record seq 5 of uid 30001 in the view of uid 30000"),
        returncode=1,
    )
    with pytest.raises(AssertionError, match=r"seed 42.*view of uid 30000.*--seed 42"):
        run_stress(guest, tmp_path / "memlog_stress", 20, 42)


def test_a_kernel_warning_during_the_run_fails_it(tmp_path: Path) -> None:
    guest = FakeGuest(_stdout(), after=SAMPLES["warning"])
    with pytest.raises(AssertionError, match="seed 42 left 1 kernel log problem"):
        run_stress(guest, tmp_path / "memlog_stress", 20, 42)


def test_a_program_that_died_without_a_summary_fails_with_its_stderr(tmp_path: Path) -> None:
    guest = FakeGuest("memlog_stress seed=42\n", returncode=139, stderr="Segmentation fault")
    with pytest.raises(AssertionError, match=r"seed 42 printed no summary \(exit 139\)"):
        run_stress(guest, tmp_path / "memlog_stress", 20, 42)


def test_a_guest_kernel_crash_is_the_runs_failure(tmp_path: Path) -> None:
    """ci/vm stops a command when the guest kernel crashes: the seed is still named."""
    guest = FakeGuest(
        "",
        raise_on_run=InfraError("the guest kernel crashed (BUG: KASAN)"),
        crash="BUG: KASAN: use-after-free in memlog_read",
    )
    with pytest.raises(AssertionError, match="seed 42 crashed the guest kernel"):
        run_stress(guest, tmp_path / "memlog_stress", 20, 42)


def test_other_infrastructure_errors_stay_infrastructure_errors(tmp_path: Path) -> None:
    guest = FakeGuest("", raise_on_run=InfraError("QEMU exited with 1"))
    with pytest.raises(InfraError, match="QEMU exited"):
        run_fuzz(guest, tmp_path / "memlog_fuzz", 20, 42)


def test_kmemleak_scan_without_kmemleak_is_empty() -> None:
    guest = FakeGuest("")
    assert kmemleak_scan(guest) == ""
    assert not any("echo scan" in c for c, _ in guest.commands)


def test_kmemleak_scan_mounts_debugfs_scans_twice_and_reads_the_report() -> None:
    guest = FakeGuest("", kmemleak=True)
    report = kmemleak_scan(guest)
    assert kernel_log_problems(report) == [SAMPLES["kmemleak object"]]
    commands = [c for c, _ in guest.commands]
    assert any("mount -t debugfs" in c for c in commands)
    scan = next(c for c in commands if "echo scan" in c)
    assert scan.count("echo scan > /sys/kernel/debug/kmemleak") == 2


# ---- building -----------------------------------------------------------------


def test_a_compile_error_is_one_line_naming_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in stress.PROGRAMS:
        (src / f"{name}.c").write_text("int main(void) { return undeclared; }\n")
    monkeypatch.setattr(stress, "SOURCE_DIR", src)
    with pytest.raises(InfraError) as info:
        stress.build_programs(tmp_path / "bin")
    message = str(info.value)
    assert "\n" not in message
    assert "memlog_stress" in message and "stress-build.log" in message
    assert "undeclared" in (tmp_path / "out" / "logs" / "stress-build.log").read_text()


def test_no_compiler_is_the_users_to_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stress.shutil, "which", lambda name: None)
    with pytest.raises(UserError, match="apt-get install gcc"):
        stress.build_programs(tmp_path)
