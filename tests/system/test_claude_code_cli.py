"""Facts about the real Claude Code CLI compacting with memlog's hooks, the ring in the guest.

The CLI bundled in claude-agent-sdk runs on the host, headless, against a
fake Messages API on loopback (``fake_messages_api.py``), in a throwaway
HOME.  ``memlog hook install`` writes its hooks there, with ``--command``
naming a forwarder called ``memlog``: each hook's JSON goes into the guest,
with the transcript it names copied to the same path, where a member of the
memlog group runs the packaged ``memlog hook claude-code``; its status and
output come back to the CLI.  So the CLI decides when and with what each hook
runs, and the guest's packages and module keep what it sends.

One session goes through: a first prompt, a manual ``/compact`` with
instructions, ``/compact`` with nothing to compact, a ``/compact`` that a
second PreCompact hook blocks (exit 2), an auto compaction (the fake
reports input tokens near the window), and a subagent (the Agent tool)
whose own context is compacted.  Then each capture is promoted in the
guest and compared with the transcript as the forwarder saw it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import zstandard
from fake_messages_api import FakeMessagesAPI, Reply

AGENT = "agent-dave"
REPO = Path(__file__).resolve().parents[2]

FORWARDER = """#!{python}
# memlog, as far as Claude Code can tell: forwards `memlog hook claude-code` into the guest.
import json, os, shlex, subprocess, sys
SSH = {ssh!r}
SNAPSHOTS = {snapshots!r}
AGENT = {agent!r}
if sys.argv[1:] != ["hook", "claude-code"]:
    sys.exit("the forwarder forwards `hook claude-code` only")
stdin = sys.stdin.buffer.read()
data = json.loads(stdin)
number = len(os.listdir(SNAPSHOTS))
event = data.get("hook_event_name", "?")
parent = data.get("transcript_path") or ""
captured = parent  # what memlog captures: a subagent's compaction, the subagent's own file
if parent and data.get("agent_id"):
    captured = os.path.join(parent[: -len(".jsonl")], "subagents",
                            "agent-%s.jsonl" % data["agent_id"])
for path in {{parent, captured}}:
    if not path or not os.path.isfile(path):
        continue
    content = open(path, "rb").read()
    if path == captured:
        with open(os.path.join(SNAPSHOTS, "%03d-%s.jsonl" % (number, event)), "wb") as out:
            out.write(content)
    copy = "mkdir -p %s && cat > %s" % (shlex.quote(os.path.dirname(path)), shlex.quote(path))
    subprocess.run(SSH + ["runuser", "-u", AGENT, "--", "sh", "-c", shlex.quote(copy)],
                   input=content, check=True)
result = subprocess.run(SSH + ["runuser", "-u", AGENT, "--", "memlog", "hook", "claude-code"],
                        input=stdin, capture_output=True)
with open(os.path.join(SNAPSHOTS, "%03d-%s.json" % (number, event)), "w") as out:
    json.dump({{"input": data, "rc": result.returncode, "stdout": result.stdout.decode(),
               "stderr": result.stderr.decode()}}, out)
sys.stdout.buffer.write(result.stdout)
sys.stderr.buffer.write(result.stderr)
sys.exit(result.returncode)
"""


def _claude() -> Path:
    import claude_agent_sdk

    return Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"


class Session:
    """The CLI in a throwaway HOME, one conversation resumed run after run."""

    def __init__(self, home: Path, project: Path, api: FakeMessagesAPI) -> None:
        self.home, self.project, self.api = home, project, api
        self.id: str | None = None

    def env(self) -> dict[str, str]:
        return {
            "PATH": "/usr/bin:/bin",
            "HOME": str(self.home),
            "TMPDIR": str(self.home / "tmp"),
            "ANTHROPIC_BASE_URL": self.api.url,
            "ANTHROPIC_API_KEY": "dummy",
            "DISABLE_TELEMETRY": "1",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
        }

    def run(self, prompt: str, *options: str) -> dict[str, Any]:
        resume = ["--resume", self.id] if self.id else []
        result = subprocess.run(
            [str(_claude()), "-p", prompt, *resume, "--output-format", "json", *options],
            cwd=self.project,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        reply = json.loads(result.stdout)
        self.id = reply["session_id"]
        return dict(reply)


@pytest.fixture(scope="module")
def dave(final_host: Any, cfg: Any) -> Any:
    """A member of the memlog group with an empty ring."""
    host = final_host
    if not host.user(AGENT).exists:
        host.check_output(f"useradd --create-home --shell /bin/sh {AGENT}")
    host.check_output(f"usermod -aG {cfg.memlog.system.group} {AGENT}")
    host.check_output(f"memlog clear --uid {host.user(AGENT).uid}")
    return host


@pytest.fixture(scope="module")
def session(dave: Any, guest: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The hooks installed in the throwaway HOME; the fake API running."""
    base = tmp_path_factory.mktemp("claude-code")
    home, project, snapshots, bin_dir = (base / n for n in ("home", "proj", "snap", "bin"))
    for directory in (home / "tmp", project, snapshots, bin_dir):
        directory.mkdir(parents=True)
    forwarder = bin_dir / "memlog"
    ssh = ["ssh", "-F", str(guest.vm.ssh_config), "wintermute-vm"]
    forwarder.write_text(
        FORWARDER.format(python=sys.executable, ssh=ssh, snapshots=str(snapshots), agent=AGENT)
    )
    forwarder.chmod(0o755)
    installed = subprocess.run(
        [sys.executable, "-m", "memlog", "hook", "install", "--command", str(forwarder)],
        env={**os.environ, "HOME": str(home), "PYTHONPATH": str(REPO / "src")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    with FakeMessagesAPI() as api:
        yield {"session": Session(home, project, api), "snapshots": snapshots, "host": dave}


def _events(host: Any) -> list[dict[str, Any]]:
    result = host.run(f"runuser -u {AGENT} -- memlog episode list --format json")
    assert result.rc == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def _hooks_run(snapshots: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(snapshots.glob("*.json"))]


def _precompacts(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e.get("hook") == "PreCompact" and e["kind"] == "compaction"]


@pytest.fixture(scope="module")
def compacted(session: dict[str, Any]) -> dict[str, Any]:
    """The session's runs, in order; what each returned."""
    cli, api = session["session"], session["session"].api
    runs = {"hello": cli.run("hello"), "manual": cli.run("/compact keep the names")}
    runs["nothing"] = cli.run("/compact")  # straight after one: nothing to compact
    cli.run("second prompt")
    settings = cli.home / ".claude/settings.json"
    installed = settings.read_text()
    blocking = json.loads(installed)
    blocker = {"type": "command", "command": "echo 'no compaction today' >&2; exit 2"}
    blocking["hooks"]["PreCompact"].append({"hooks": [blocker]})
    settings.write_text(json.dumps(blocking))
    try:
        runs["blocked"] = cli.run("/compact")
    finally:
        settings.write_text(installed)
    api.replies.append(Reply("a long answer", input_tokens=995_000))
    cli.run("third prompt")
    runs["auto"] = cli.run("fourth prompt")  # compacts before it is sent
    (cli.project / "notes.txt").write_text("the notes\n")
    api.responder = _subagent_compacting(cli.project / "notes.txt")
    try:
        runs["subagent"] = cli.run("delegate", "--allowedTools", "Read,Agent")
    finally:
        api.responder = None
    return runs


def _subagent_compacting(notes: Path) -> Any:
    """The main agent starts a subagent, whose first turn reports a context near the window
    (a Read call): its next turn compacts it."""
    turns = {"subagent": 0}

    def respond(body: dict[str, Any]) -> Reply | None:
        first = json.dumps(body["messages"][0])
        if "SUBTASK" in first:
            turns["subagent"] += 1
            if turns["subagent"] == 1:
                read = {"id": "toolu_r1", "name": "Read", "input": {"file_path": str(notes)}}
                return Reply("reading", input_tokens=995_000, tool_uses=[read])
            return None  # the compaction's summary, then the default
        if "toolu_a1" not in json.dumps(body["messages"]):
            task = {"description": "notes", "prompt": "SUBTASK read the notes",
                    "subagent_type": "general-purpose"}  # fmt: skip
            return Reply(
                "delegating", tool_uses=[{"id": "toolu_a1", "name": "Agent", "input": task}]
            )
        return Reply("all done")

    return respond


def test_every_hook_the_cli_ran_exited_0_and_printed_nothing(
    session: dict[str, Any], compacted: dict[str, Any]
) -> None:
    """PreCompact, PostCompact and SessionEnd each ran memlog in the guest: status 0, no
    output (Claude Code would hand PreCompact's stdout to the summary)."""
    runs = _hooks_run(session["snapshots"])
    assert {r["input"]["hook_event_name"] for r in runs} == {
        "PreCompact",
        "PostCompact",
        "SessionEnd",
    }
    assert [(r["rc"], r["stdout"], r["stderr"]) for r in runs] == [(0, "", "")] * len(runs)


def test_a_manual_compaction_is_confirmed_with_its_summary_and_instructions(
    session: dict[str, Any], compacted: dict[str, Any]
) -> None:
    [manual] = [
        e
        for e in _precompacts(_events(session["host"]))
        if e.get("custom_instructions") == "keep the names"
    ]
    assert (manual["trigger"], manual["status"]) == ("manual", "confirmed")
    assert "Fake summary" in manual["summary"] and manual.get("prompt_id")


def test_nothing_to_compact_and_a_blocked_compaction_stay_unconfirmed(
    session: dict[str, Any], compacted: dict[str, Any]
) -> None:
    """Claude Code runs PreCompact before it knows: "Not enough messages to compact", or a
    second hook exiting 2, and no PostCompact follows."""
    assert "Not enough messages" in compacted["nothing"]["result"]
    assert "Compaction blocked by PreCompact hook" in compacted["blocked"]["result"]
    statuses = [(e["trigger"], e["status"]) for e in _precompacts(_events(session["host"]))]
    assert statuses == [
        ("manual", "confirmed"),
        ("manual", "unconfirmed"),  # nothing to compact
        ("manual", "unconfirmed"),  # blocked
        ("auto", "confirmed"),
        ("auto", "confirmed"),  # the subagent's
    ]


def test_a_subagents_compaction_keeps_its_own_transcript_under_its_own_id(
    session: dict[str, Any], compacted: dict[str, Any]
) -> None:
    [sub] = [e for e in _precompacts(_events(session["host"])) if e.get("agent_id")]
    parent = compacted["hello"]["session_id"]
    assert sub["session"] == f"{parent}.agent-{sub['agent_id']}"
    assert (sub["parent_session"], sub["agent_type"]) == (parent, "general-purpose")


def test_session_end_keeps_each_runs_tail(
    session: dict[str, Any], compacted: dict[str, Any]
) -> None:
    ends = [e for e in _events(session["host"]) if e.get("hook") == "SessionEnd"]
    assert len(ends) == 8 and {e["status"] for e in ends} == {"session-end"}
    assert {e["reason"] for e in ends} == {"other"}  # what `claude -p` says


def test_each_capture_after_the_first_stores_only_what_the_transcript_gained(
    session: dict[str, Any], compacted: dict[str, Any]
) -> None:
    """The main transcript's captures take less than a third of the room whole copies at each
    capture would (each compressed as memlog compresses), and less than one uncompressed copy.

    (Measured at 285e8a3: 86 KB against 306 KB for 12 captures of a transcript that grew to
    473 KB; it compresses to 30 KB whole, its deltas each on their own compress less.)"""
    captures = [
        e for e in _events(session["host"]) if e["kind"] == "compaction" and not e.get("agent_id")
    ]
    assert captures[0]["offset"] == 0
    assert all(e["offset"] > 0 and e["base"] for e in captures[1:])
    compress = zstandard.ZstdCompressor(level=3).compress
    main = [
        p.read_bytes()
        for p in sorted(session["snapshots"].glob("*.jsonl"))
        if "PostCompact" not in p.name
        and "agent_id" not in json.loads(p.with_suffix(".json").read_text())["input"]
    ]
    whole_copies = sum(len(compress(s[: s.rfind(b"\n") + 1])) for s in main)
    stored = sum(e["stored_bytes"] for e in captures)
    assert len(main) == len(captures) >= 10
    assert 3 * stored < whole_copies and stored < len(main[-1])


def test_episode_show_reads_the_session_as_a_conversation(
    session: dict[str, Any], compacted: dict[str, Any]
) -> None:
    host, sid = session["host"], compacted["hello"]["session_id"]
    shown = host.run(f"runuser -u {AGENT} -- memlog episode show --session {sid}")
    assert shown.rc == 0, shown.stderr
    text = shown.stdout
    assert "**user**: hello" in text and "**user**: fourth prompt" in text
    assert text.count("*Compacted here") == 2 and "Not enough messages to compact" in text


def test_every_capture_promotes_to_the_transcript_the_hook_saw(
    session: dict[str, Any], compacted: dict[str, Any]
) -> None:
    """Promoted in the guest from the ring's chain of deltas: byte for byte the transcript
    each hook was given (to its last complete line)."""
    host = session["host"]
    snapshots = sorted(
        p for p in session["snapshots"].glob("*.jsonl") if "PostCompact" not in p.name
    )
    captures = [e for e in _events(host) if e["kind"] == "compaction"]
    assert len(captures) == len(snapshots) >= 11
    out = f"/home/{AGENT}/promoted"
    for event, snapshot in zip(captures, snapshots, strict=True):
        promote = (
            f"memlog episode promote --session {event['session']} --event {event['event']} "
            f"--out {out}"
        )
        result = host.run(f"runuser -u {AGENT} -- {promote}")
        assert result.rc == 0, result.stderr
        seen = snapshot.read_bytes()
        seen = seen[: seen.rfind(b"\n") + 1]
        promoted = host.check_output(f"sha256sum {shlex.quote(result.stdout.strip())}")
        assert promoted.split()[0] == hashlib.sha256(seen).hexdigest(), snapshot.name
