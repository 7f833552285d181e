# SPDX-License-Identifier: MIT OR Apache-2.0
"""Keep what the Anthropic API's compaction replaces in /dev/memlog.

With the ``compact-2026-01-12`` beta, a response may carry a ``compaction``
block; the API then ignores every message block before it, and an
application typically drops them.  :meth:`CompactionRecorder.record` writes
those messages as one event first::

    recorder = CompactionRecorder(session="chat-42")
    response = client.beta.messages.create(..., betas=["compact-2026-01-12"],
        context_management={"edits": [{"type": "compact_20260112"}]})
    recorder.record(messages, response)          # None when nothing was compacted
    messages.append({"role": "assistant", "content": response.content})

The SDK's tool runner compacts on request (``runner.compact_before_next_turn()``)
and replaces its history with the summary; :meth:`CompactionRecorder.follow`
wraps the runner's iteration and writes the history before it is replaced::

    for message in recorder.follow(client.beta.messages.tool_runner(...)):
        ...

The payload is JSON lines: one message per line, as the application sent
them (SDK objects as their ``to_dict()``).  Nothing here imports ``anthropic``.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Sequence
from typing import Any

from memlog import compaction, episodes, uapi
from memlog.device import Device
from memlog.errors import MemlogError

log = logging.getLogger(__name__)

SOURCE = "anthropic-sdk"


def _field(obj: Any, name: str) -> Any:
    """``obj.name`` for SDK objects, ``obj[name]`` for the dicts applications build."""
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _blocks(message: Any) -> list[Any]:
    content = _field(message, "content")
    return list(content) if isinstance(content, list | tuple) else []


def _is_compaction(block: Any) -> bool:
    return _field(block, "type") == "compaction"


def compaction_index(message: Any) -> int | None:
    """The index of the first ``compaction`` block with a summary in ``message``, or None.

    A compaction block whose content is None (the compaction failed) is no compaction.
    """
    for index, block in enumerate(_blocks(message)):
        if _is_compaction(block) and _field(block, "content") is not None:
            return index
    return None


def replaced_messages(messages: Sequence[Any], response: Any) -> list[Any]:
    """The messages ``response``'s compaction replaces.

    Everything since the last earlier compaction that has a summary (its message
    included); a failed one (content None) is no boundary.  Plus the response's
    own blocks before its compaction block, if any.
    """
    start = 0
    for index, message in enumerate(messages):
        if compaction_index(message) is not None:
            start = index
    replaced = list(messages[start:])
    cut = compaction_index(response)
    if cut:
        replaced.append({"role": "assistant", "content": _blocks(response)[:cut]})
    return replaced


def _same_compaction(a: Any, b: Any) -> bool:
    return a is b or all(
        _field(a, name) == _field(b, name)
        for name in ("type", "content", "encrypted_content", "signature")
    )


def _before_reply(history: Sequence[Any], reply: Any) -> list[Any]:
    """``history`` up to the message that is ``reply`` itself, if the SDK has recorded it there.

    A thread records a reply as soon as it has it (anthropic 2.14-2.17: _thread_state.record_reply),
    so a server-side compaction's reply is already in the history the runner yields it with.
    """
    block = _blocks(reply)[compaction_index(reply)]
    for index in range(len(history) - 1, -1, -1):
        if _field(history[index], "role") == "assistant" and any(
            _is_compaction(b) and _same_compaction(b, block) for b in _blocks(history[index])
        ):
            return list(history[:index])
    return list(history)


def _jsonable(obj: Any) -> Any:
    for method in ("to_dict", "model_dump"):
        if callable(getattr(obj, method, None)):
            return getattr(obj, method)()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def to_jsonl(messages: Iterable[Any]) -> bytes:
    """One compact JSON object per message and line."""
    try:
        lines = [
            json.dumps(m, default=_jsonable, ensure_ascii=False, separators=(",", ":"))
            for m in messages
        ]
    except (TypeError, ValueError) as exc:
        raise MemlogError(f"the messages cannot be written as JSON: {exc}") from None
    return "".join(line + "\n" for line in lines).encode()


class CompactionRecorder:
    """Writes the messages each compaction replaces as one memlog event.

    ``session`` names the conversation (a UUID gives the records' header its
    16 bytes; default: a new random UUID).  ``opener`` opens the device
    (tests pass one on fake system calls).
    """

    def __init__(
        self,
        session: str | None = None,
        *,
        device: str = uapi.DEVICE_PATH,
        source: str = SOURCE,
        opener: Callable[[str, str], Device] = Device,
    ) -> None:
        self.session = session or str(uuid.uuid4())
        self.device = device
        self.source = source
        self.opener = opener

    def record(
        self, messages: Sequence[Any], response: Any, *, trigger: str = "auto"
    ) -> episodes.Stored | None:
        """Write what ``response``'s compaction replaces; None if it compacted nothing.

        Raises MemlogError if the event could not be written whole.
        """
        if compaction_index(response) is None:
            return None
        return episodes.store_event(
            to_jsonl(replaced_messages(messages, response)),
            source=self.source,
            session=self.session,
            trigger=trigger,
            media_type=compaction.MEDIA_MESSAGES,
            device=self.device,
            opener=self.opener,
        )

    def _record_turn(
        self, history: Callable[[], Sequence[Any]], reply: Any, trigger: str, strict: bool
    ) -> None:
        if compaction_index(reply) is None:
            return
        try:
            self.record(_before_reply(history(), reply), reply, trigger=trigger)
        except MemlogError as exc:
            if strict:
                raise
            log.warning("memlog: the compacted messages were not kept: %s", exc)

    def follow(
        self,
        runner: Iterable[Any],
        *,
        thread: Any = None,
        trigger: str = "manual",
        strict: bool = False,
    ) -> Iterator[Any]:
        """Yield ``runner``'s items, writing what each compaction replaces.

        ``thread``: the thread the runner was made from
        (``client.beta.messages.thread(...).tool_runner()``); default: the
        runner's own.  A streaming runner's reply is read once the loop body
        is done with its stream.  A failure to write is logged (``strict``:
        raised), never a reason to stop the run.
        """
        history = _history_of(runner, thread)
        for item in runner:
            streaming = callable(getattr(item, "get_final_message", None))
            if not streaming:
                self._record_turn(history, item, trigger, strict)
            yield item
            if streaming:
                self._record_turn(history, item.get_final_message(), trigger, strict)

    async def follow_async(
        self,
        runner: AsyncIterable[Any],
        *,
        thread: Any = None,
        trigger: str = "manual",
        strict: bool = False,
    ) -> AsyncIterator[Any]:
        """:meth:`follow` for the SDK's async tool runner (``AsyncAnthropic``)."""
        import anyio.to_thread  # the SDK's own dependency: imported only when used

        history = _history_of(runner, thread)
        async for item in runner:
            streaming = callable(getattr(item, "get_final_message", None))
            if not streaming:
                await anyio.to_thread.run_sync(self._record_turn, history, item, trigger, strict)
            yield item
            if streaming:
                reply = await item.get_final_message()
                await anyio.to_thread.run_sync(self._record_turn, history, reply, trigger, strict)


def _history_of(runner: Any, thread: Any) -> Callable[[], Sequence[Any]]:
    """A reader of the conversation's history: ``thread.messages`` (public), else the
    runner's own thread (anthropic 2.14 to 2.17 keep it as ``runner._thread``)."""
    source = thread if thread is not None else getattr(runner, "_thread", None)
    if not isinstance(getattr(source, "messages", None), Sequence):
        raise MemlogError(
            f"{type(runner).__name__} has no message thread whose history memlog can read: "
            "pass the thread it was made from (follow(runner, thread=thread)); anthropic "
            "2.14 to 2.17's runners keep it as runner._thread"
        )
    return lambda: source.messages
