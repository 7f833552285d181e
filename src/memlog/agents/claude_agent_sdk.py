# SPDX-License-Identifier: MIT OR Apache-2.0
"""A PreCompact hook for the Claude Agent SDK: what ``memlog hook claude-code`` does.

Register it with the SDK's options::

    from claude_agent_sdk import ClaudeAgentOptions, HookMatcher
    from memlog.agents.claude_agent_sdk import precompact_hook

    options = ClaudeAgentOptions(
        hooks={"PreCompact": [HookMatcher(hooks=[precompact_hook()])]}
    )

The callback never breaks the agent: a failure is logged (logger
``memlog.agents.claude_agent_sdk``) and the callback returns ``{}``, the
SDK's "no opinion"; it never returns a ``systemMessage``, which Claude Code
would pass to the summary as instructions.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio.to_thread

from memlog import claude_code, uapi
from memlog.device import Device

log = logging.getLogger(__name__)

SOURCE = "claude-agent-sdk"

HookCallback = Callable[[Any, "str | None", Any], Awaitable[dict[str, Any]]]
"""The SDK's ``HookCallback``: (input, tool_use_id, context) -> awaitable output."""


def precompact_hook(
    *,
    device: str = uapi.DEVICE_PATH,
    source: str = SOURCE,
    opener: Callable[[str, str], Device] = Device,
) -> HookCallback:
    """A PreCompact callback writing the transcript about to be compacted as one event."""

    async def memlog_precompact(
        input_data: Any, tool_use_id: str | None, context: Any
    ) -> dict[str, Any]:
        try:
            hook = claude_code.HookInput.from_mapping(input_data)
            capture = functools.partial(
                claude_code.capture, hook, device=device, source=source, opener=opener
            )
            await anyio.to_thread.run_sync(capture)  # the SDK runs on anyio (asyncio or trio)
        except Exception as exc:  # the agent goes on whatever happened here
            log.warning("memlog: the transcript was not kept: %s", exc)
        return {}

    return memlog_precompact
