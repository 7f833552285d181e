"""How guest results become host results: nothing passes on the host that did not run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ci import guest_suite, pytest_guest_report
from ci.guest_suite import GuestResult, GuestSuiteRun, parse_results
from wintermute.errors import InfraError

LOG = Path("out/logs/vm-functional.log")


def _entry(outcome: str = "passed", called: bool = True, longrepr: str = "") -> dict[str, Any]:
    return {"outcome": outcome, "longrepr": longrepr, "called": called, "duration": 0.1}


def test_a_guest_test_that_passed_its_call_passes_on_the_host() -> None:
    """A test whose body ran and passed in the guest passes on the host."""
    results = parse_results({"exitstatus": 0, "tests": {"t::a": _entry()}}, LOG)
    assert results["t::a"] == GuestResult("passed", "")


def test_a_guest_test_whose_body_never_ran_fails_on_the_host() -> None:
    """Setup passed but no call report (the session died mid-test): failed, not passed."""
    results = parse_results({"exitstatus": 1, "tests": {"t::a": _entry(called=False)}}, LOG)
    assert results["t::a"].outcome == "failed"
    assert "never ran" in results["t::a"].longrepr


@pytest.mark.parametrize("status", [2, 3, 4, 5, None])
def test_a_guest_session_that_did_not_end_normally_fails_every_test(status: int | None) -> None:
    """Interrupted, internal error, usage error, no tests, or no status: an infrastructure error."""
    with pytest.raises(InfraError, match=f"status {status}"):
        parse_results({"exitstatus": status, "tests": {"t::a": _entry()}}, LOG)


def test_a_test_missing_from_the_guest_results_fails_on_the_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A node id the guest never reported is a failure naming it."""
    monkeypatch.setattr(
        guest_suite, "run_guest_suite", lambda ids: {"t::a": GuestResult("passed", "")}
    )
    run = GuestSuiteRun(["t::a", "t::b"])
    assert run.result("t::a").outcome == "passed"
    missing = run.result("t::b")
    assert missing.outcome == "failed" and "t::b did not run" in missing.longrepr


def test_a_failed_guest_run_is_every_tests_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the guest run fails (boot, crash, no results), every test raises that error."""

    def boom(ids: list[str]) -> dict[str, GuestResult]:
        raise InfraError("the guest kernel crashed (Oops: 0000)")

    monkeypatch.setattr(guest_suite, "run_guest_suite", boom)
    run = GuestSuiteRun(["t::a", "t::b"])
    for nodeid in ("t::a", "t::b"):
        with pytest.raises(InfraError, match="crashed"):
            run.result(nodeid)


@dataclass
class _Report:
    nodeid: str
    when: str
    outcome: str
    duration: float = 0.0
    longrepr: Any = None
    longreprtext: str = ""
    sections: list[tuple[str, str]] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.outcome == "failed"

    @property
    def skipped(self) -> bool:
        return self.outcome == "skipped"


def test_the_guest_plugin_records_whether_a_tests_body_ran(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The guest-side plugin marks a test called only once its call phase reported."""
    monkeypatch.setattr(pytest_guest_report, "_results", {})
    pytest_guest_report.pytest_runtest_logreport(_Report("t::a", "setup", "passed"))
    pytest_guest_report.pytest_runtest_logreport(_Report("t::b", "setup", "passed"))
    pytest_guest_report.pytest_runtest_logreport(_Report("t::b", "call", "passed"))
    out = tmp_path / "results.json"
    monkeypatch.setenv(pytest_guest_report.RESULTS_ENV, str(out))
    pytest_guest_report.pytest_sessionfinish(None, 1)
    results = parse_results(__import__("json").loads(out.read_text()), LOG)
    assert results["t::a"].outcome == "failed"
    assert results["t::b"].outcome == "passed"
