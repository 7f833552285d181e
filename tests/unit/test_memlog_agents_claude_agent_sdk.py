# SPDX-License-Identifier: MIT OR Apache-2.0
"""The Claude Agent SDK's PreCompact callback, called as the SDK calls it.

The SDK registers hook callbacks from ClaudeAgentOptions and, when the CLI
sends a ``hook_callback`` control request, awaits the callback from
``Query._handle_control_request`` and sends its output back: the tests drive
that very method with a transport that records what would go to the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
from claude_agent_sdk import ClaudeAgentOptions, HookMatcher
from claude_agent_sdk._internal.query import Query
from claude_agent_sdk.types import _hooks_to_internal_format
from conftest import RingSyscalls
from test_memlog_claude_code import hook_json
from test_memlog_compaction import SESSION, transcript

from memlog import episodes
from memlog.agents.claude_agent_sdk import precompact_hook
from memlog.device import Device


class RecordingTransport:
    """What the SDK would write to the CLI's stdin."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def write(self, data: str) -> None:
        self.sent.append(json.loads(data))


def run_hook_as_the_sdk_does(callback: Any, hook_input: dict[str, Any]) -> dict[str, Any]:
    """Register ``callback`` for PreCompact as options do; deliver one hook_callback request."""
    options = ClaudeAgentOptions(hooks={"PreCompact": [HookMatcher(hooks=[callback])]})
    transport = RecordingTransport()
    query = Query(
        transport=transport,  # type: ignore[arg-type]
        is_streaming_mode=True,
        hooks=_hooks_to_internal_format(options.hooks),
    )
    [matcher] = query.hooks["PreCompact"]
    query.hook_callbacks["hook_0"] = matcher["hooks"][0]  # what initialize() registers
    request = {
        "type": "control_request",
        "request_id": "req_1",
        "request": {
            "subtype": "hook_callback",
            "callback_id": "hook_0",
            "input": hook_input,
            "tool_use_id": None,
        },
    }
    anyio.run(query._handle_control_request, request)
    [reply] = transport.sent
    return reply["response"]


def test_the_callback_stores_the_transcript_as_one_event(
    ring: RingSyscalls, tmp_path: Path
) -> None:
    path = tmp_path / "t.jsonl"
    data = transcript(1 << 20)
    path.write_bytes(data[: data.rfind(b"\n") + 1])  # whole lines: a partial one waits
    reply = run_hook_as_the_sdk_does(
        precompact_hook(opener=ring.opener()), json.loads(hook_json(path))
    )
    assert reply == {"subtype": "success", "request_id": "req_1", "response": {}}
    with Device("/dev/fake", "r", syscalls=ring) as dev:
        [event] = episodes.collect_events(dev)
    assert event.complete and event.payload() == path.read_bytes()
    assert (event.session, event.first.source) == (SESSION, "claude-agent-sdk")


def test_a_failing_callback_answers_success_and_logs(
    ring: RingSyscalls, tmp_path: Path, caplog: Any
) -> None:
    """No error and no systemMessage reaches the CLI: compaction goes on as if no hook ran."""
    reply = run_hook_as_the_sdk_does(
        precompact_hook(opener=ring.opener()),
        json.loads(hook_json(tmp_path / "missing.jsonl")),
    )
    assert reply["subtype"] == "success" and reply["response"] == {}
    assert "cannot open the transcript" in caplog.text
    assert ring.records == []
