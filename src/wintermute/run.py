"""Run external commands: every one checked, its output kept in a log file.

Long steps print one progress line when they start and say where their log
is, so a user can ``tail -f`` it; on failure the error names the command, the
log and its last lines.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from wintermute.errors import InfraError, UserError
from wintermute.paths import log_dir

TAIL_LINES = 20


def say(message: str) -> None:
    """One progress line for the user, on stderr so stdout stays machine-readable."""
    print(f"==> {message}", file=sys.stderr, flush=True)


def _tail(path: Path, lines: int = TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def run(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    log: str | Path,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    timeout: float | None = None,
    step: str | None = None,
    heartbeat: float | None = None,
) -> None:
    """Run ``cmd``, appending its stdout and stderr to ``log``; raise on failure.

    ``log`` is a file name under ``out/logs`` or a path.  ``step``, if given,
    is printed as a progress line first, and with ``heartbeat`` (seconds) again
    every so often with the time elapsed and the log's last line.  ``env``
    entries are added to the current environment.
    """
    argv = [os.fspath(a) for a in cmd]
    log_path = Path(log) if os.path.isabs(log) else log_dir() / log
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if step:
        say(f"{step} (log: {log_path})")
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    started = time.monotonic()
    with log_path.open("ab") as fh:
        fh.write(f"$ {shlex.join(argv)}\n".encode())
        fh.flush()
        try:
            if heartbeat:
                returncode = _run_with_heartbeat(
                    argv, cwd, full_env, fh, log_path, step or argv[0], heartbeat, timeout
                )
            else:
                returncode = subprocess.run(
                    argv,
                    cwd=cwd,
                    env=full_env,
                    input=input,
                    stdin=None if input is not None else subprocess.DEVNULL,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    timeout=timeout,
                    check=False,
                ).returncode
        except FileNotFoundError as exc:
            raise UserError(f"{argv[0]}: command not found; run scripts/setup-host first") from exc
        except subprocess.TimeoutExpired as exc:
            fh.write(f"# timed out after {timeout} s\n".encode())
            raise InfraError(f"{argv[0]} timed out after {timeout:.0f} s; see {log_path}") from exc
        fh.write(f"# exit {returncode} after {time.monotonic() - started:.1f} s\n".encode())
    if returncode != 0:
        raise InfraError(
            f"{shlex.join(argv)} failed with exit {returncode}; see {log_path}\n{_tail(log_path)}"
        )


def elapsed(seconds: float) -> str:
    """``75`` -> ``1 min 15 s``."""
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def _last_line(path: Path) -> str:
    with path.open("rb") as fh:
        fh.seek(max(0, fh.seek(0, os.SEEK_END) - 4096))
        lines = fh.read().decode(errors="replace").splitlines()
    return lines[-1].strip() if lines else ""


def _run_with_heartbeat(
    argv: list[str],
    cwd: str | os.PathLike[str] | None,
    env: dict[str, str],
    fh: IO[bytes],
    log_path: Path,
    step: str,
    heartbeat: float,
    timeout: float | None,
) -> int:
    """Run ``argv`` into ``fh``, saying every ``heartbeat`` s how long it has run; its exit code."""
    started = time.monotonic()
    with subprocess.Popen(
        argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT
    ) as proc:
        try:
            while True:
                try:
                    return proc.wait(timeout=heartbeat)
                except subprocess.TimeoutExpired:
                    running = time.monotonic() - started
                    if timeout is not None and running > timeout:
                        raise subprocess.TimeoutExpired(argv, timeout) from None
                    say(f"{step}: {elapsed(running)} so far ({_last_line(log_path)[:100]})")
        except BaseException:
            proc.kill()
            raise


def capture(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = 120,
) -> str:
    """Run a short query command and return its stdout; raise with its stderr on failure."""
    argv = [os.fspath(a) for a in cmd]
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    try:
        proc = subprocess.run(
            argv,
            cwd=cwd,
            env=full_env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise UserError(f"{argv[0]}: command not found; run scripts/setup-host first") from exc
    except subprocess.TimeoutExpired as exc:
        raise InfraError(f"{shlex.join(argv)} timed out after {timeout} s") from exc
    if proc.returncode != 0:
        raise InfraError(
            f"{shlex.join(argv)} failed with exit {proc.returncode}: {proc.stderr.strip()}"
        )
    return proc.stdout
