"""A fake Anthropic Messages API on loopback, for running the real Claude Code CLI offline.

The CLI (``claude -p ...`` with ``ANTHROPIC_BASE_URL`` pointing here) only calls
``POST /v1/messages?beta=true`` with ``"stream": true``; this server answers with the
documented server-sent events and records every request body.  Usage::

    with FakeMessagesAPI() as api:
        api.replies.append(Reply("big", input_tokens=995_000))  # the next reply only
        subprocess.run([claude, "-p", "hi"], env={..., "ANTHROPIC_BASE_URL": api.url})
        assert api.requests[0]["stream"] is True

A compaction (``/compact`` or an auto compaction) is a request whose last user message asks
for "a detailed summary of the conversation"; it is answered with :attr:`summary_text`.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

COMPACTION_MARKER = "create a detailed summary of the conversation"
"""Lower-case text of the CLI's compaction prompt (Claude Code 2.1.x)."""

DEFAULT_SUMMARY = "<analysis>fake</analysis>\n<summary>\n1. Fake summary.\n</summary>"


@dataclass
class Reply:
    """One answer of the fake: text and optional ``tool_use`` blocks, plus the usage reported."""

    text: str = "ok"
    input_tokens: int = 10
    output_tokens: int = 5
    tool_uses: list[dict[str, Any]] = field(default_factory=list)
    """``tool_use`` blocks after the text, each ``{"id": ..., "name": ..., "input": {...}}``."""
    delay: float = 0.0
    """Seconds to wait before answering."""

    @property
    def stop_reason(self) -> str:
        return "tool_use" if self.tool_uses else "end_turn"

    def content(self) -> list[dict[str, Any]]:
        """The content blocks of the complete message."""
        blocks: list[dict[str, Any]] = [{"type": "text", "text": self.text}] if self.text else []
        return blocks + [{"type": "tool_use", **tool} for tool in self.tool_uses]


Responder = Callable[[dict[str, Any]], "Reply | str | None"]


def message_text(message: dict[str, Any]) -> str:
    """The text blocks of one request message, joined."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    return "\n".join(b.get("text", "") for b in content or [] if isinstance(b, dict))


def is_compaction_request(body: dict[str, Any]) -> bool:
    """True if ``body`` is the CLI's request for a conversation summary."""
    users = [m for m in body.get("messages") or [] if m.get("role") == "user"]
    return bool(users) and COMPACTION_MARKER in message_text(users[-1]).lower()


class FakeMessagesAPI:
    """A ``ThreadingHTTPServer`` on 127.0.0.1 (free port) in a thread; a context manager.

    The reply to a request is, in order: ``responder(body)`` when that is not ``None`` (a
    :class:`Reply` or a plain text); ``Reply(summary_text)`` for a compaction request; the
    next item of the queue :attr:`replies`; else :attr:`default`.
    """

    def __init__(
        self,
        responder: Responder | None = None,
        default: Reply | None = None,
        summary_text: str = DEFAULT_SUMMARY,
    ) -> None:
        self.responder = responder
        self.default = default or Reply()
        self.summary_text = summary_text
        self.replies: deque[Reply | str] = deque()
        self.requests: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, for ``ANTHROPIC_BASE_URL``."""
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def compaction_requests(self) -> list[dict[str, Any]]:
        return [body for body in self.requests if is_compaction_request(body)]

    def choose(self, path: str, body: dict[str, Any]) -> tuple[int, Reply]:
        """Record the request and pick its reply; returns (request number, reply)."""
        with self._lock:
            self.paths.append(path)
            self.requests.append(body)
            number = len(self.requests)
            reply = self.responder(body) if self.responder else None
            if reply is None and is_compaction_request(body):
                reply = Reply(self.summary_text)
            if reply is None and self.replies:
                reply = self.replies.popleft()
            reply = self.default if reply is None else reply
        return number, Reply(reply) if isinstance(reply, str) else reply

    def start(self) -> FakeMessagesAPI:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeMessagesAPI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _message(body: dict[str, Any], reply: Reply, number: int, complete: bool) -> dict[str, Any]:
    return {
        "id": f"msg_fake{number:04d}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", "claude-fake"),
        "content": reply.content() if complete else [],
        "stop_reason": reply.stop_reason if complete else None,
        "stop_sequence": None,
        "usage": {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens},
    }


def _events(body: dict[str, Any], reply: Reply, number: int) -> list[dict[str, Any]]:
    """The server-sent events of a streamed reply (each has its event name as ``type``)."""
    events = [{"type": "message_start", "message": _message(body, reply, number, False)}]
    for index, block in enumerate(reply.content()):
        if block["type"] == "text":
            start = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": block["text"]}
        else:
            start = {**block, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        events += [
            {"type": "content_block_start", "index": index, "content_block": start},
            {"type": "content_block_delta", "index": index, "delta": delta},
            {"type": "content_block_stop", "index": index},
        ]
    usage = {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens}
    delta = {"stop_reason": reply.stop_reason, "stop_sequence": None}
    events.append({"type": "message_delta", "delta": delta, "usage": usage})
    return [*events, {"type": "message_stop"}]


def _handler_for(api: FakeMessagesAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Keep the test output quiet."""

        def _send(self, status: int, content_type: str, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _not_found(self) -> None:
            error = {"type": "error", "error": {"type": "not_found_error", "message": self.path}}
            self._send(404, "application/json", json.dumps(error).encode())

        do_GET = do_PUT = do_DELETE = _not_found

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.split("?", 1)[0] != "/v1/messages":
                self._not_found()
                return
            body = json.loads(raw or b"{}")
            number, reply = api.choose(self.path, body)
            time.sleep(reply.delay)
            if not body.get("stream"):
                message = json.dumps(_message(body, reply, number, True)).encode()
                self._send(200, "application/json", message)
                return
            sse = "".join(
                f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"
                for event in _events(body, reply, number)
            )
            self._send(200, "text/event-stream", sse.encode())

    return Handler
