"""memlog's stress and fuzz programs: build on the host, run in a booted guest, judge.

``tests/stress/memlog_stress.c`` and ``tests/stress/memlog_fuzz.c`` are built
as static binaries (:func:`build_programs`: the guest needs no compiler and no
matching C library), copied into a guest that has memlog loaded, and run as
root there (:func:`run_stress`, :func:`run_fuzz`).  Each prints a JSON summary
as its last stdout line; a run passes when the program says ``"ok": true``,
exits 0, and the kernel log since its start has none of
:func:`kernel_log_problems`.  A failure is an ``AssertionError`` naming the
seed, so the run can be replayed (``--seed``; see ``tests/stress/README.md``).

The guest is any :class:`ci.vm.Vm`: the debug-kernel guest of the built-kernel
tier (KASAN, lockdep, kmemleak: :func:`kmemleak_scan`) or the stock-kernel
guest of ``ci/guest_suite.py``.  Outputs: ``out/logs/stress-build.log`` (the
compiler's), ``out/logs/memlog_stress.log`` and ``out/logs/memlog_fuzz.log``
(each run's command, output and kernel log), and the summaries as
``out/memlog_stress.json`` / ``out/memlog_fuzz.json``.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any, Protocol

from wintermute.errors import InfraError, UserError
from wintermute.paths import REPO, log_dir, out_dir
from wintermute.run import say

SOURCE_DIR = REPO / "tests" / "stress"
UAPI_INCLUDE = REPO / "include" / "uapi"
PROGRAMS = ("memlog_stress", "memlog_fuzz")
CFLAGS = ("-O2", "-Wall", "-Wextra", "-Werror", "-static")
GUEST_DIR = "/opt/wintermute-stress"
KMEMLEAK = "/sys/kernel/debug/kmemleak"
# kmemleak reports no object younger than 5 s; a second scan after that sees
# what the first one only started to suspect.
KMEMLEAK_PAUSE_SECONDS = 6
TAIL_CHARS = 2000

# What a kernel in trouble prints; each pattern is tested on its own line in
# tests/unit/test_ci_stress.py.  Case matters: "kasan: KernelAddressSanitizer
# initialized" and lockdep's "MAX_LOCKDEP_KEYS" boot lines are no problem.
KERNEL_LOG_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("warning", re.compile(r"WARNING:")),
    ("bug", re.compile(r"BUG:")),
    ("kasan", re.compile(r"KASAN")),
    ("lock cycle", re.compile(r"possible circular locking")),
    ("lockdep", re.compile(r"lockdep")),
    ("hung task", re.compile(r"INFO: task .* blocked")),
    ("kmemleak object", re.compile(r"unreferenced object")),
    ("kmemleak summary", re.compile(r"suspected memory leak")),
    ("oops", re.compile(r"\bOops\b")),
    ("general protection", re.compile(r"general protection")),
    ("ubsan", re.compile(r"UBSAN")),
    ("panic", re.compile(r"Kernel panic")),
)


class Guest(Protocol):
    """What the runs need of a booted guest (``ci.vm.Vm`` has it)."""

    def put(self, local: Path, remote: str) -> None: ...

    def run(
        self,
        cmd: str | list[str],
        *,
        check: bool = True,
        timeout: float = ...,
        log: Path | None = None,
        user: str | None = None,
    ) -> subprocess.CompletedProcess[str]: ...

    def crashes_since_boot(self) -> str | None: ...


# ---- building -----------------------------------------------------------------


def build_programs(dest: Path) -> dict[str, Path]:
    """Compile both programs statically into ``dest``; their paths by name.

    Warnings are errors.  The compiler's output goes to ``out/logs/stress-build.log``.
    """
    gcc = shutil.which("gcc")
    if gcc is None:
        raise UserError("gcc is not installed: apt-get install gcc libc6-dev")
    dest.mkdir(parents=True, exist_ok=True)
    log = log_dir() / "stress-build.log"
    log.unlink(missing_ok=True)
    built = {}
    for name in PROGRAMS:
        source = SOURCE_DIR / f"{name}.c"
        binary = dest / name
        cmd = [gcc, *CFLAGS, "-I", str(UAPI_INCLUDE), "-o", str(binary), str(source)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        with log.open("a") as fh:
            fh.write(f"$ {shlex.join(cmd)}\n{proc.stdout}{proc.stderr}# exit {proc.returncode}\n")
        if proc.returncode != 0:
            if "cannot find -lc" in proc.stderr:
                raise UserError(f"no static C library to link {name}: apt-get install libc6-dev")
            first = next((ln for ln in proc.stderr.splitlines() if "error" in ln), "")
            raise InfraError(f"gcc could not build {name} ({first.strip()}); see {log}")
        built[name] = binary
    return built


# ---- judging ------------------------------------------------------------------


def kernel_log_problems(dmesg: str) -> list[str]:
    """The lines of ``dmesg`` that show the kernel in trouble, in order, each once."""
    found = [
        line.strip()
        for line in dmesg.splitlines()
        if any(pattern.search(line) for _, pattern in KERNEL_LOG_PATTERNS)
    ]
    return list(dict.fromkeys(found))


def parse_summary(stdout: str) -> dict[str, Any]:
    """The program's JSON summary: its last stdout line that is a JSON object.

    Raises ValueError when there is none (the program died before printing it).
    """
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and "program" in data:
            return data
    raise ValueError("no JSON summary line in the program's output")


def log_since(dmesg: str, marker: str) -> str:
    """The kernel log after the last line holding ``marker`` (all of it without one)."""
    lines = dmesg.splitlines()
    for index in range(len(lines) - 1, -1, -1):
        if marker in lines[index]:
            return "\n".join(lines[index + 1 :])
    return dmesg


def judge(
    name: str, seed: int, returncode: int, summary: dict[str, Any], problems: list[str]
) -> None:
    """Raise AssertionError, naming the seed, unless the run passed."""
    replay = f"replay: {name} --seed {seed}"
    if summary.get("ok") is not True or returncode != 0:
        reason = summary.get("reason") or "no reason given"
        counts = summary.get("violations")
        detail = f" (violations: {counts})" if isinstance(counts, dict) and counts else ""
        raise AssertionError(
            f"{name} failed with seed {seed}, exit {returncode}: {reason}{detail}; {replay}"
        )
    if problems:
        shown = "; ".join(problems[:5])
        more = f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
        raise AssertionError(
            f"{name} with seed {seed} left {len(problems)} kernel log problem(s): "
            f"{shown}{more}; {replay}"
        )


# ---- running ------------------------------------------------------------------


def _run_program(
    guest: Guest, binary: Path, args: list[str], seed: int, timeout: float
) -> dict[str, Any]:
    """Copy ``binary`` in, run it as root with ``args``, and judge it; its summary."""
    name = binary.name
    remote = f"{GUEST_DIR}/{name}"
    log = log_dir() / f"{name}.log"
    marker = f"wintermute-{name}-seed-{seed}-{uuid.uuid4().hex[:8]}"
    out, err = f"{GUEST_DIR}/{name}.out", f"{GUEST_DIR}/{name}.err"
    guest.put(binary, remote)
    guest.run(f"chmod 0755 {remote} && echo {marker} > /dev/kmsg", timeout=60, log=log)
    # timeout(1) ends a run that outlives its own watchdog; the output goes to
    # files first, so a worker stuck in the kernel cannot hold ssh open.
    limit = int(timeout)
    cmd = (
        f"timeout -k 10 {limit} {shlex.join([remote, *args])} >{out} 2>{err}; rc=$?; "
        f"cat {out}; cat {err} >&2; exit $rc"
    )
    say(f"running {name} --seed {seed} in the guest (log: {log})")
    try:
        proc = guest.run(cmd, check=False, timeout=limit + 60, log=log)
    except InfraError as exc:
        crash = guest.crashes_since_boot()
        if crash is None:
            raise
        raise AssertionError(
            f"{name} with seed {seed} crashed the guest kernel ({crash}); "
            f"replay: {name} --seed {seed}"
        ) from exc
    dmesg = guest.run("dmesg", check=False, timeout=120, log=log).stdout
    problems = kernel_log_problems(log_since(dmesg, marker))
    try:
        summary = parse_summary(proc.stdout)
    except ValueError:
        raise AssertionError(
            f"{name} with seed {seed} printed no summary (exit {proc.returncode}): "
            f"{proc.stderr[-TAIL_CHARS:].strip() or '(no stderr)'}; see {log}"
        ) from None
    summary["exit_status"] = proc.returncode
    summary["kernel_log_problems"] = problems
    (out_dir() / f"{name}.json").write_text(json.dumps(summary, indent=1) + "\n")
    judge(name, seed, proc.returncode, summary, problems)
    return summary


# The flood and fairness mix: 16 uids, each the root of a user namespace of one
# user's, writing beside the others into a max_bytes they use up (the fair share
# decides who gives room; the quiet uid, far below its share, must lose nothing).
NAMESPACE_UIDS = 16
MAX_BYTES = 8 << 20


def run_stress(guest: Guest, binary: Path, seconds: int, seed: int) -> dict[str, Any]:
    """Run memlog_stress for ``seconds`` with ``seed``, the namespace flood in the mix
    over a small max_bytes; its summary, or AssertionError."""
    args = ["--seconds", str(seconds), "--seed", str(seed),
            "--ns-uids", str(NAMESPACE_UIDS), "--max-bytes", str(MAX_BYTES)]  # fmt: skip
    # the program's own watchdog fires at 2 * seconds + 240
    return _run_program(guest, binary, args, seed, 2 * seconds + 300)


def run_fuzz(guest: Guest, binary: Path, seconds: int, seed: int) -> dict[str, Any]:
    """Run memlog_fuzz for at most ``seconds`` with ``seed``; its summary, or AssertionError."""
    # iterations: as many as fit; the program's own watchdog fires at seconds + 300
    args = ["--seconds", str(seconds), "--seed", str(seed), "--iterations", "100000000"]
    return _run_program(guest, binary, args, seed, seconds + 360)


# ---- kmemleak -----------------------------------------------------------------


def _kmemleak_ready(guest: Guest) -> bool:
    """Mount debugfs if needed; whether the guest kernel has kmemleak."""
    guest.run(
        "mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug",
        check=False,
        timeout=60,
    )
    return guest.run(f"test -w {KMEMLEAK}", check=False, timeout=60).returncode == 0


def kmemleak_clear(guest: Guest) -> bool:
    """Forget the leaks suspected so far (boot's); False if the kernel has no kmemleak."""
    if not _kmemleak_ready(guest):
        return False
    guest.run(f"echo clear > {KMEMLEAK}", timeout=120)
    return True


def kmemleak_off(guest: Guest) -> bool:
    """Switch kmemleak off for good (it cannot come back until a reboot); False without it.

    For when its last scan is done: it records a stack trace for every
    allocation, which made each fork and exec of the debug kernel under TCG
    about 40% slower (100 ms against 63 ms for ``/bin/true``).
    """
    if not _kmemleak_ready(guest):
        return False
    guest.run(f"echo off > {KMEMLEAK}", timeout=120)
    return True


def kmemleak_scan(guest: Guest) -> str:
    """Scan twice, as the kmemleak docs advise, and return the report ("" without kmemleak).

    Feed the report to :func:`kernel_log_problems` ("unreferenced object").
    """
    if not _kmemleak_ready(guest):
        return ""
    guest.run(
        f"echo scan > {KMEMLEAK} && sleep {KMEMLEAK_PAUSE_SECONDS} && echo scan > {KMEMLEAK}",
        timeout=900,
    )
    return guest.run(f"cat {KMEMLEAK}", timeout=120).stdout
