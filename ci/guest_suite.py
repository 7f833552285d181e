"""Run tests/functional inside a booted guest and hand each result back to the host.

One guest pytest session runs every selected functional test: the module is
built on the host against the guest kernel's headers, the VM is booted from the
cached image (through a throw-away overlay), the module, the memlog library and
the tests are copied in, and the guest's pytest writes a JSON result per node
id (``ci/pytest_guest_report.py``).  The guest's output is kept in
``out/logs/vm-functional.log``; its JUnit XML in ``out/vm-functional.xml``.
"""

from __future__ import annotations

import json
import shlex
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wintermute.errors import InfraError, WintermuteError
from wintermute.paths import REPO, log_dir, out_dir
from wintermute.run import say

GUEST_ROOT = "/opt/wintermute"  # readable by the test users
GUEST_TIMEOUT = 1200


@dataclass(frozen=True)
class GuestResult:
    outcome: str
    longrepr: str


def _stage(ko: Path | None, dest: Path) -> None:
    """What the guest needs: the library, the suite, the pytest config, the module (if built)."""
    shutil.copytree(
        REPO / "src" / "memlog",
        dest / "src" / "memlog",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copytree(
        REPO / "tests" / "functional",
        dest / "tests" / "functional",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copy2(REPO / "pyproject.toml", dest / "pyproject.toml")
    shutil.copy2(REPO / "ci" / "pytest_guest_report.py", dest / "pytest_guest_report.py")
    if ko is not None:
        shutil.copy2(ko, dest / "memlog.ko")


def run_guest_suite(nodeids: list[str]) -> dict[str, GuestResult]:
    """Build, boot, run ``nodeids`` in the guest; return their results by node id."""
    from ci import rootfs, vm
    from wintermute import module_build

    image = rootfs.ensure_image()
    build = module_build.build_for_host_headers(image.kernel_release)
    module_build.require_clean(build)
    with vm.boot(image) as guest:
        return run_on(guest, nodeids, ko=build.ko, name="vm-functional")


def run_on(
    guest: Any, nodeids: list[str], *, ko: Path | None, name: str, module: str | None = None
) -> dict[str, GuestResult]:
    """Run ``nodeids`` in the booted ``guest``; their results by node id.

    ``ko`` is copied in and loaded by the suite; without it, ``module`` names
    the module file already in the guest (an in-tree one).  The guest's output
    goes to ``out/logs/NAME.log``, its results to ``out/NAME.json`` and ``.xml``.
    """
    guest_log = log_dir() / f"{name}.log"
    results_local = out_dir() / f"{name}.json"
    junit_local = out_dir() / f"{name}.xml"
    results_local.unlink(missing_ok=True)
    module = f"{GUEST_ROOT}/memlog.ko" if ko is not None else module
    if module is None:
        raise InfraError("run_on needs the module: a ko to copy in, or its path in the guest")
    with tempfile.TemporaryDirectory(prefix="wintermute-guest-") as tmp:
        stage = Path(tmp) / "wintermute"
        _stage(ko, stage)
        guest.put(stage, GUEST_ROOT)
    args = " ".join(shlex.quote(n) for n in nodeids)
    cmd = (
        f"cd {GUEST_ROOT} && "
        f"MEMLOG_KO={shlex.quote(module)} "
        f"WINTERMUTE_GUEST_RESULTS={GUEST_ROOT}/results.json "
        f"PYTHONPATH={GUEST_ROOT}/src:{GUEST_ROOT} "
        "python3 -m pytest -p pytest_guest_report -p no:cacheprovider -v "
        f"--junitxml={GUEST_ROOT}/junit.xml {args}"
    )
    what = f"{len(nodeids)} functional tests" if any("::" in n for n in nodeids) else args
    say(f"running {what} in the guest (log: {guest_log})")
    proc = guest.run(cmd, check=False, timeout=GUEST_TIMEOUT, log=guest_log)
    crash = guest.crashes_since_boot()
    if crash is not None:
        raise InfraError(
            f"the guest kernel complained during the functional suite ({crash}); "
            f"console: {guest.console_log}"
        )
    try:
        guest.get(f"{GUEST_ROOT}/results.json", results_local)
        guest.get(f"{GUEST_ROOT}/junit.xml", junit_local)
    except WintermuteError as exc:
        raise InfraError(
            f"the guest pytest wrote no results (exit {proc.returncode}); see {guest_log}"
        ) from exc
    return parse_results(json.loads(results_local.read_text()), guest_log)


def parse_results(data: dict[str, Any], guest_log: Path) -> dict[str, GuestResult]:
    """The guest's per-test results; a test whose body never ran did not pass.

    The guest session must have ended as pytest ends a run (0: all passed, 1:
    some failed); anything else (interrupted, internal error, usage) fails
    every test with the guest's exit status.
    """
    status = data.get("exitstatus")
    if status not in (0, 1):
        raise InfraError(f"the guest pytest ended with status {status}; see {guest_log}")
    results = {}
    for nodeid, entry in data["tests"].items():
        outcome, longrepr = entry["outcome"], entry["longrepr"]
        if outcome == "passed" and not entry.get("called"):
            outcome, longrepr = "failed", "its setup passed but the test itself never ran"
        results[nodeid] = GuestResult(outcome, longrepr)
    return results


class GuestSuiteRun:
    """Runs the guest suite once, on first demand, and answers per node id."""

    def __init__(self, nodeids: list[str]) -> None:
        self._nodeids = nodeids
        self._results: dict[str, GuestResult] | None = None
        self._error: Exception | None = None

    def result(self, nodeid: str) -> GuestResult:
        if self._results is None and self._error is None:
            try:
                self._results = run_guest_suite(self._nodeids)
            except Exception as exc:  # every guest test reports the same cause
                self._error = exc
        if self._error is not None:
            raise self._error
        assert self._results is not None
        found = self._results.get(nodeid)
        if found is None:
            return GuestResult("failed", f"{nodeid} did not run in the guest; see the guest log")
        return found
