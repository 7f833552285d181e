# SPDX-License-Identifier: MIT OR Apache-2.0
"""The Anthropic SDK helper, against the real SDK with its HTTP layer replaced (no network).

Responses are shaped as the API documents compaction (beta compact-2026-01-12
for server-side compaction, compact-2026-09-04 for the tool runner's).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anthropic
import httpx2
import pytest
from anthropic import beta_tool
from conftest import RingSyscalls

from memlog import episodes
from memlog.agents.anthropic_sdk import CompactionRecorder
from memlog.device import Device

SUMMARY = "<summary>The user is building a scraper; next: add retries.</summary>"


def usage(n: int) -> dict[str, int]:
    return {
        "input_tokens": n,
        "output_tokens": 50,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def message(i: int, content: list[dict[str, Any]], stop: str, tokens: int = 1000) -> dict:
    return {
        "id": f"msg_{i:02d}",
        "type": "message",
        "role": "assistant",
        "model": "claude-opus-4-6",
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage(tokens),
    }


def sse(msg: dict) -> bytes:
    """``msg`` as the streaming API sends it (text, tool_use and compaction blocks)."""
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": {**msg, "content": [], "stop_reason": None}}
    ]
    for i, block in enumerate(msg["content"]):
        if block["type"] == "text":
            start, delta = (
                {"type": "text", "text": ""},
                {"type": "text_delta", "text": block["text"]},
            )
        elif block["type"] == "tool_use":
            start = {**block, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        else:
            start = {"type": "compaction", "content": None}
            delta = {
                "type": "compaction_delta",
                "content": block["content"],
                "encrypted_content": None,
            }
        events += [
            {"type": "content_block_start", "index": i, "content_block": start},
            {"type": "content_block_delta", "index": i, "delta": delta},
            {"type": "content_block_stop", "index": i},
        ]
    events += [
        {
            "type": "message_delta",
            "delta": {"stop_reason": msg["stop_reason"], "stop_sequence": None},
            "usage": {"output_tokens": 50},
        },
        {"type": "message_stop"},
    ]
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()


def client_answering(answer: Callable[[dict], dict], sent: list[dict]) -> anthropic.Anthropic:
    def handler(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        sent.append({"beta": request.headers.get("anthropic-beta"), **body})
        if body.get("stream"):
            stream = sse(answer(body))
            return httpx2.Response(
                200, content=stream, headers={"content-type": "text/event-stream"}
            )
        return httpx2.Response(200, json=answer(body))

    transport = httpx2.MockTransport(handler)
    return anthropic.Anthropic(api_key="test", http_client=httpx2.Client(transport=transport))


def stored_messages(ring: RingSyscalls) -> list[list[dict]]:
    """Each event in the ring, as the list of messages its payload holds."""
    with Device("/dev/fake", "r", syscalls=ring) as dev:
        events = episodes.collect_events(dev)
    return [[json.loads(line) for line in e.payload().splitlines()] for e in events]


HISTORY = [
    {"role": "user", "content": "Help me build a scraper"},
    {"role": "assistant", "content": [{"type": "text", "text": "Sure, with requests."}]},
    {"role": "user", "content": "Add retries"},
]


def compacting(body: dict) -> dict:
    content = [
        {"type": "compaction", "content": SUMMARY},
        {"type": "text", "text": "Retries added."},
    ]
    return message(1, content, "end_turn", 23000)


def create(client: anthropic.Anthropic, messages: list) -> Any:
    return client.beta.messages.create(
        model="claude-opus-4-6",
        max_tokens=1024,
        messages=messages,
        betas=["compact-2026-01-12"],
        context_management={"edits": [{"type": "compact_20260112"}]},
    )


def test_a_server_side_compaction_stores_the_messages_it_replaces(ring: RingSyscalls) -> None:
    sent: list[dict] = []
    response = create(client_answering(compacting, sent), HISTORY)
    recorder = CompactionRecorder("chat-42", opener=ring.opener())
    stored = recorder.record(HISTORY, response)
    assert stored is not None and sent[0]["beta"] == "compact-2026-01-12"
    assert stored_messages(ring) == [HISTORY]


def test_the_event_names_the_sdk_session_and_trigger(ring: RingSyscalls) -> None:
    response = create(client_answering(compacting, []), HISTORY)
    CompactionRecorder("chat-42", opener=ring.opener()).record(HISTORY, response)
    with Device("/dev/fake", "r", syscalls=ring) as dev:
        [event] = episodes.collect_events(dev)
    assert (event.session, event.first.source, event.first.trigger) == (
        "chat-42",
        "anthropic-sdk",
        "auto",
    )


def test_a_response_without_compaction_stores_nothing(ring: RingSyscalls) -> None:
    plain = message(1, [{"type": "text", "text": "Hi"}], "end_turn")
    response = create(client_answering(lambda body: plain, []), HISTORY)
    assert CompactionRecorder(opener=ring.opener()).record(HISTORY, response) is None
    assert ring.records == []


def test_a_failed_compaction_without_summary_stores_nothing(ring: RingSyscalls) -> None:
    failed = message(1, [{"type": "compaction", "content": None}], "compaction")
    response = create(client_answering(lambda body: failed, []), HISTORY)
    assert CompactionRecorder(opener=ring.opener()).record(HISTORY, response) is None


def test_a_second_compaction_stores_only_what_came_after_the_first(ring: RingSyscalls) -> None:
    """The application keeps the old history; the API ignores what precedes a compaction."""
    client = client_answering(compacting, [])
    recorder = CompactionRecorder("chat-42", opener=ring.opener())
    messages = list(HISTORY)
    first = create(client, messages)
    recorder.record(messages, first)
    messages += [first.to_param(), {"role": "user", "content": "Now parse the pages"}]
    recorder.record(messages, create(client, messages))
    second = stored_messages(ring)[1]
    assert [m["role"] for m in second] == ["assistant", "user"]
    assert second[0]["content"][0] == {"type": "compaction", "content": SUMMARY}


@beta_tool
def get_weather(city: str) -> str:
    """Get the weather for a city."""
    return f"sunny in {city}"


def runner_answer(body: dict) -> dict:
    """A tool call, the summary when asked to compact, then the final answer."""
    if "compaction" in body:
        summary = [{"type": "compaction", "content": SUMMARY, "signature": "sig"}]
        return message(2, summary, "compaction", 900)
    if len(body["messages"]) == 1 and body["messages"][0]["role"] == "user":
        call = {
            "type": "tool_use",
            "id": "toolu_1",
            "name": "get_weather",
            "input": {"city": "Paris"},
        }
        return message(1, [{"type": "text", "text": "Checking."}, call], "tool_use", 190_000)
    return message(3, [{"type": "text", "text": "It is sunny in Paris."}], "end_turn")


def weather_runner(client: anthropic.Anthropic, **options: Any) -> Any:
    """A tool runner sending the whole history each turn (thread=False: no server threads);
    ``options`` add to or replace its arguments."""
    arguments: dict[str, Any] = {
        "model": "claude-opus-4-6",
        "max_tokens": 1024,
        "tools": [get_weather],
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "betas": ["compact-2026-09-04"],
        "thread": False,
    }
    return client.beta.messages.tool_runner(**{**arguments, **options})


def test_the_tool_runner_history_is_stored_before_its_compaction_replaces_it(
    ring: RingSyscalls,
) -> None:
    sent: list[dict] = []
    client = client_answering(runner_answer, sent)
    runner = weather_runner(client)
    recorder = CompactionRecorder("run-1", opener=ring.opener())
    for reply in recorder.follow(runner):
        if reply.stop_reason == "tool_use":
            runner.compact_before_next_turn()
    assert ["compaction" in body for body in sent] == [False, True, False]
    [stored] = stored_messages(ring)
    assert [m["role"] for m in stored] == ["user", "assistant", "user"]
    assert stored[2]["content"][0]["content"] == "sunny in Paris"
    assert sent[2]["messages"][0]["content"][0]["type"] == "compaction"  # history replaced


def test_a_runner_that_cannot_write_keeps_running(caplog: Any) -> None:
    ring = RingSyscalls(capacity=64 << 10, stats_capacity=0)  # STATS: no room at all
    client = client_answering(runner_answer, [])
    runner = weather_runner(client)
    replies = []
    for reply in CompactionRecorder(opener=ring.opener()).follow(runner):
        replies.append(reply.stop_reason)
        if reply.stop_reason == "tool_use":
            runner.compact_before_next_turn()
    assert replies == ["tool_use", "compaction", "end_turn"]
    assert "the compacted messages were not kept" in caplog.text


def test_strict_following_raises_when_the_event_cannot_be_written() -> None:
    ring = RingSyscalls(capacity=64 << 10, stats_capacity=0)
    client = client_answering(runner_answer, [])
    runner = weather_runner(client)
    with pytest.raises(episodes.MemlogError, match="ring holds at most 0"):
        for reply in CompactionRecorder(opener=ring.opener()).follow(runner, strict=True):
            if reply.stop_reason == "tool_use":
                runner.compact_before_next_turn()


# -- what anthropic 2.14 to 2.17 do that follow() once got wrong

CALL = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}


def server_side_answer(body: dict) -> dict:
    """A tool call, then a reply the API compacted (compact_20260112) before answering."""
    if len(body["messages"]) == 1:
        return message(1, [{"type": "text", "text": "Checking."}, CALL], "tool_use")
    content = [{"type": "compaction", "content": SUMMARY}, {"type": "text", "text": "It is sunny."}]
    return message(2, content, "end_turn")


def test_server_side_compaction_in_a_tool_runner_stores_the_history_it_replaced(
    ring: RingSyscalls,
) -> None:
    """The thread records the reply before the runner yields it: it is no part of what the
    compaction replaced."""
    runner = weather_runner(
        client_answering(server_side_answer, []),
        betas=["compact-2026-01-12"],
        context_management={"edits": [{"type": "compact_20260112"}]},
    )
    recorder = CompactionRecorder("run-1", opener=ring.opener())
    assert [reply.stop_reason for reply in recorder.follow(runner)] == ["tool_use", "end_turn"]
    [stored] = stored_messages(ring)
    assert [m["role"] for m in stored] == ["user", "assistant", "user"]
    assert stored[2]["content"][0]["type"] == "tool_result"


def test_a_failed_compaction_earlier_in_the_history_is_no_boundary(ring: RingSyscalls) -> None:
    failed = {
        "role": "assistant",
        "content": [
            {"type": "compaction", "content": None},
            {"type": "text", "text": "Sure, with requests."},
        ],
    }
    history = [HISTORY[0], failed, HISTORY[2]]
    reply = message(
        3,
        [{"type": "compaction", "content": SUMMARY}, {"type": "text", "text": "Done."}],
        "end_turn",
    )
    response = create(client_answering(lambda body: reply, []), history)
    CompactionRecorder("chat-42", opener=ring.opener()).record(history, response)
    assert stored_messages(ring) == [history]


def test_a_streaming_runner_stores_the_history_its_compaction_replaces(ring: RingSyscalls) -> None:
    sent: list[dict] = []
    runner = weather_runner(client_answering(runner_answer, sent), stream=True)
    stops = []
    for stream in CompactionRecorder("run-1", opener=ring.opener()).follow(runner):
        for _event in stream:
            pass
        stops.append(stream.get_final_message().stop_reason)
        if stops[-1] == "tool_use":
            runner.compact_before_next_turn()
    assert stops == ["tool_use", "compaction", "end_turn"]
    assert ["compaction" in body for body in sent] == [False, True, False]
    [stored] = stored_messages(ring)
    assert [m["role"] for m in stored] == ["user", "assistant", "user"]


def test_follow_reads_the_public_thread_it_is_given(ring: RingSyscalls) -> None:
    client = client_answering(runner_answer, [])
    thread = client.beta.messages.thread(
        model="claude-opus-4-6",
        max_tokens=1024,
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[get_weather],
    )
    runner = thread.tool_runner()
    recorder = CompactionRecorder("run-2", opener=ring.opener())
    for reply in recorder.follow(runner, thread=thread):
        if reply.stop_reason == "tool_use":
            runner.compact_before_next_turn()
    [stored] = stored_messages(ring)
    assert [m["role"] for m in stored] == ["user", "assistant", "user"]
