"""Facts about an agent's compaction kept in the ring, with the packages apt-get installed.

A member of the memlog group runs `memlog hook claude-code` as Claude Code
runs a PreCompact hook (JSON on stdin naming a 1 MB transcript), from an
"agent" process that stays alive; `memlog episode` lists and promotes the
event.  Then the agent is killed with SIGKILL and every file it and the hook
had is removed: the episode still comes back out, from the ring alone.  A
ring shrunk until it evicted some parts gives the "missing parts" error.
Runs once, on the second kernel, before the upgrade and removal scenarios.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import time
import uuid
from typing import Any

import pytest

AGENT = "agent-carol"
SESSION = str(uuid.UUID(int=0x3F1C2A4E9B7D4C1E8F00123456789ABC))
HOME = f"/home/{AGENT}"
TRANSCRIPT = f"{HOME}/.claude/projects/-home-{AGENT}-project/{SESSION}.jsonl"
HOOK_INPUT = f"{HOME}/hook-input.json"
EPISODES = f"{HOME}/.local/share/memlog/episodes/{SESSION}"
MARKER = "/run/wintermute-episodes-marker"

# A transcript shaped like Claude Code's (JSON lines), about SIZE bytes, from
# a fixed seed: some entropy, so that it compresses to several parts.
MAKE_TRANSCRIPT = """
import json, random, sys
path, size, session = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rng = random.Random(size)
words = ["w%x" % rng.getrandbits(20) for _ in range(4000)]
out, total = [], 0
while total < size:
    text = " ".join(rng.choice(words) for _ in range(rng.randint(5, 80)))
    line = json.dumps({"type": "user", "sessionId": session,
                       "message": {"role": "user", "content": text}}) + "\\n"
    out.append(line)
    total += len(line)
text = "".join(out)[:size]
open(path, "w").write(text[: text.rfind("\\n") + 1])  # whole lines, as Claude Code writes
"""


def _as_agent(host: Any, command: str) -> Any:
    return host.run(f"runuser -u {AGENT} -- sh -c {shlex.quote(command)}")


def _make_transcript(host: Any, path: str, size: int) -> str:
    """Write a transcript of ``size`` bytes as the agent; return its SHA-256."""
    host.check_output(f"runuser -u {AGENT} -- mkdir -p {shlex.quote(path.rsplit('/', 1)[0])}")
    program = shlex.quote(MAKE_TRANSCRIPT)
    host.check_output(f"runuser -u {AGENT} -- python3 -c {program} {path} {size} {SESSION}")
    return host.check_output(f"sha256sum {path}").split()[0]


def _hook_input(host: Any, transcript: str, trigger: str = "auto") -> None:
    fields = {
        "session_id": SESSION,
        "transcript_path": transcript,
        "cwd": f"{HOME}/project",
        "hook_event_name": "PreCompact",
        "trigger": trigger,
        "custom_instructions": None,
    }
    _write_as_agent(host, HOOK_INPUT, json.dumps(fields))


def _write_as_agent(host: Any, path: str, text: str) -> None:
    quoted = shlex.quote(text)
    host.check_output(f"printf '%s' {quoted} | runuser -u {AGENT} -- sh -c 'cat > {path}'")


def _events(host: Any) -> list[dict[str, Any]]:
    result = _as_agent(host, "memlog episode list --format json")
    assert result.rc == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture(scope="module")
def agent(final_host: Any, cfg: Any) -> Any:
    """A member of the memlog group with an empty ring and a 1 MB transcript to keep."""
    host = final_host
    if not host.user(AGENT).exists:
        host.check_output(f"useradd --create-home --shell /bin/sh {AGENT}")
    host.check_output(f"usermod -aG {cfg.memlog.system.group} {AGENT}")
    host.check_output(f"memlog clear --uid {host.user(AGENT).uid}")
    host.check_output(f"sysctl -q -w kernel.memlog.ring_size={cfg.memlog.system.ring_size}")
    return host


@pytest.fixture(scope="module")
def hooked(agent: Any) -> dict[str, Any]:
    """An "agent" process ran the hook as Claude Code does and is still alive."""
    host = agent
    digest = _make_transcript(host, TRANSCRIPT, 1 << 20)
    _hook_input(host, TRANSCRIPT)
    host.check_output(f"touch {MARKER}")
    time.sleep(1.1)  # files the hook might create are then newer than the marker
    # The agent: runs the hook (stdin the JSON, as Claude Code pipes it), then waits.
    script = (
        f"memlog hook claude-code < {HOOK_INPUT} > {HOME}/hook.out 2> {HOME}/hook.err; "
        f"echo $? > {HOME}/hook.rc; exec sleep 3600"
    )
    host.check_output(
        f"runuser -u {AGENT} -- setsid sh -c {shlex.quote(script)} > /dev/null 2>&1 &"
    )
    for _ in range(120):
        if host.file(f"{HOME}/hook.rc").exists:
            break
        time.sleep(0.5)
    return {
        "digest": digest,
        "size": host.file(TRANSCRIPT).size,
        "rc": host.check_output(f"cat {HOME}/hook.rc"),
        "out": host.check_output(f"cat {HOME}/hook.out"),
        "err": host.check_output(f"cat {HOME}/hook.err"),
        "agent": host.check_output(f"pgrep -u {AGENT} -f 'sleep 3600'"),
    }


def test_a_member_s_precompact_hook_exits_0_and_prints_nothing(hooked: dict[str, Any]) -> None:
    """`memlog hook claude-code` with a PreCompact JSON naming a 1 MB transcript: status 0,
    no output (Claude Code would hand stdout to the summary)."""
    assert (hooked["rc"], hooked["out"], hooked["err"]) == ("0", "", "")


def test_episode_list_shows_the_event_complete(agent: Any, hooked: dict[str, Any]) -> None:
    """`memlog episode list` shows one event of the session, every part present."""
    [event] = _events(agent)
    assert event["session"] == SESSION and event["complete"]
    assert event["parts_present"] == event["parts_expected"] > 1
    assert (event["source"], event["trigger"]) == ("claude-code", "auto")
    assert event["size"] == hooked["size"] > (1 << 20) - 1000  # whole lines of about 1 MB
    assert (event["hook"], event["status"], event["offset"]) == ("PreCompact", "unconfirmed", 0)


def test_episode_promote_writes_the_transcript_byte_for_byte(
    agent: Any, hooked: dict[str, Any]
) -> None:
    """`memlog episode promote --session S` writes <event>.jsonl identical to the transcript."""
    [event] = _events(agent)
    result = _as_agent(agent, f"memlog episode promote --session {SESSION}")
    assert result.rc == 0, result.stderr
    promoted = f"{EPISODES}/{event['event']}.jsonl"
    assert result.stdout.strip() == promoted
    assert agent.check_output(f"sha256sum {promoted}").split()[0] == hooked["digest"]
    meta = json.loads(agent.file(f"{EPISODES}/{event['event']}.json").content_string)
    assert meta["sha256"] == hooked["digest"] and meta["cwd"] == f"{HOME}/project"


def test_the_hook_leaves_no_file_behind(agent: Any, hooked: dict[str, Any]) -> None:
    """Nothing under /home, /tmp, /var/tmp, /dev/shm or /run/user is newer than the hook's
    start but the test's own files (the agent's hook.out/.err/.rc) and the promoted episode."""
    found = agent.check_output(
        f"find /home /tmp /var/tmp /dev/shm /run/user -newer {MARKER} -type f 2>/dev/null; true"
    ).split()
    ours = {f"{HOME}/hook.out", f"{HOME}/hook.err", f"{HOME}/hook.rc"}
    assert [f for f in found if f not in ours and not f.startswith(EPISODES)] == []


def test_the_episode_survives_the_agent_killed_and_its_files_removed(
    agent: Any, hooked: dict[str, Any]
) -> None:
    """kill -9 of the agent, its transcript and promoted files removed: promoting again from
    the ring alone gives the same bytes."""
    agent.check_output(f"kill -9 {hooked['agent']}")
    agent.check_output(f"rm -rf {HOME}/.claude {HOME}/.local {HOOK_INPUT}")
    assert not agent.file(TRANSCRIPT).exists
    [event] = _events(agent)
    assert event["complete"]
    promote = f"memlog episode promote --session {SESSION} --event {event['event']}"
    result = _as_agent(agent, promote)
    assert result.rc == 0, result.stderr
    promoted = f"{EPISODES}/{event['event']}.jsonl"
    assert agent.check_output(f"sha256sum {promoted}").split()[0] == hooked["digest"]


def test_the_user_unit_promotes_the_members_episodes(agent: Any, hooked: dict[str, Any]) -> None:
    """memlog-promote.service (shipped, not enabled), started in the member's own service
    manager (lingering: logind starts user@UID.service), writes the complete event again (its
    files were removed above); the timer is installed, disabled."""
    uid = agent.user(AGENT).uid
    runtime = f"/run/user/{uid}"
    systemctl = f"runuser -u {AGENT} -- env XDG_RUNTIME_DIR={runtime} systemctl --user"
    agent.check_output(f"loginctl enable-linger {AGENT}")
    try:
        for _ in range(120):
            if agent.file(f"{runtime}/systemd/private").exists:
                break
            time.sleep(0.5)
        enabled = agent.run(f"{systemctl} is-enabled memlog-promote.timer")
        assert enabled.stdout.strip() == "disabled", enabled.stderr
        started = agent.run(f"{systemctl} start memlog-promote.service")
        assert started.rc == 0, started.stderr
        [event] = [e for e in _events(agent) if e["trigger"] == "auto"]
        promoted = f"{EPISODES}/{event['event']}.jsonl"
        assert agent.check_output(f"sha256sum {promoted}").split()[0] == hooked["digest"]
    finally:
        agent.run(f"loginctl disable-linger {AGENT}; systemctl stop user@{uid}.service")


def test_a_10_mb_transcript_is_kept_within_the_hook_s_own_time_limit(
    agent: Any, record_testsuite_property: Any
) -> None:
    """A 10 MB transcript: the hook exits 0 (it gives up after 30 s), the event is complete;
    the time it took is in the JUnit report (suite property hook_seconds_10mb)."""
    transcript = f"{HOME}/big.jsonl"
    digest = _make_transcript(agent, transcript, 10 << 20)
    _hook_input(agent, transcript, trigger="manual")
    start = time.monotonic()
    result = _as_agent(agent, f"memlog hook claude-code < {HOOK_INPUT}")
    seconds = round(time.monotonic() - start, 2)  # ssh included
    record_testsuite_property("hook_seconds_10mb", seconds)
    assert result.rc == 0, result.stderr
    big = [e for e in _events(agent) if e["trigger"] == "manual"]
    assert len(big) == 1 and big[0]["complete"] and big[0]["size"] == agent.file(transcript).size
    out = f"{HOME}/big-out"
    promoted = _as_agent(agent, f"memlog episode promote --session {SESSION} "
                         f"--event {big[0]['event']} --out {out}")  # fmt: skip
    assert promoted.rc == 0, promoted.stderr
    assert agent.check_output(f"sha256sum {promoted.stdout.strip()}").split()[0] == digest


def test_a_shrunk_ring_that_evicted_parts_gives_the_missing_parts_error(
    agent: Any, cfg: Any
) -> None:
    """After kernel.memlog.ring_size shrinks to 64 KiB (evicting the oldest parts), the event
    is listed incomplete, and promoting it exits 1 naming the missing parts, writing nothing."""
    try:
        agent.check_output("sysctl -q -w kernel.memlog.ring_size=65536")
        incomplete = [e for e in _events(agent) if not e["complete"]]
        assert incomplete, "the shrink evicted no part"
        event = incomplete[-1]
        assert 0 < event["parts_present"] < event["parts_expected"]
        out = f"{HOME}/shrunk-out"
        result = _as_agent(
            agent,
            f"memlog episode promote --session {SESSION} --event {event['event']} --out {out}",
        )
        assert result.rc == 1
        assert "missing parts 1-" in result.stderr and "nothing written" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert not agent.file(out).exists
    finally:
        agent.check_output(f"sysctl -q -w kernel.memlog.ring_size={cfg.memlog.system.ring_size}")


OTHER_SETTINGS = {
    "model": "opus",
    "hooks": {
        "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "audit"}]}],
        "PreCompact": [{"matcher": "manual", "hooks": [{"type": "command", "command": "notify"}]}],
    },
}


def test_hook_install_keeps_other_hooks_and_a_second_run_changes_nothing(agent: Any) -> None:
    """`memlog hook install` on a settings.json with other hooks: they survive, the hook is
    added once, a backup is kept; the second run changes no file."""
    settings = f"{HOME}/.claude/settings.json"
    agent.check_output(f"runuser -u {AGENT} -- mkdir -p {HOME}/.claude")
    _write_as_agent(agent, settings, json.dumps(OTHER_SETTINGS))
    first = _as_agent(agent, "memlog hook install")
    assert first.rc == 0, first.stderr
    after = json.loads(agent.file(settings).content_string)
    assert after["hooks"]["PreToolUse"] == OTHER_SETTINGS["hooks"]["PreToolUse"]
    commands = [h["command"] for e in after["hooks"]["PreCompact"] for h in e["hooks"]]
    # the packaged memlog, by its absolute path: Claude Code may run without PATH
    assert commands == ["notify", "/usr/bin/memlog hook claude-code"] and after["model"] == "opus"
    for event in ("PostCompact", "SessionEnd"):
        assert [h["command"] for e in after["hooks"][event] for h in e["hooks"]] == commands[1:]
    listing = f"cd {HOME}/.claude && ls -l --time-style=+%s.%N && sha256sum *"
    before_second = agent.check_output(listing)
    second = _as_agent(agent, "memlog hook install")
    assert second.rc == 0 and "nothing changed" in second.stdout
    assert agent.check_output(listing) == before_second
    assert hashlib.sha256(json.dumps(OTHER_SETTINGS).encode()).hexdigest() in before_second
