# SPDX-License-Identifier: MIT OR Apache-2.0
"""memlog for agent frameworks: each module imports its framework only when used.

- :mod:`memlog.agents.anthropic_sdk`: the Anthropic Python SDK's compaction
  (a response's ``compaction`` block; the tool runner's compaction).
- :mod:`memlog.agents.claude_agent_sdk`: a PreCompact hook callback for the
  Claude Agent SDK.

Both write what a compaction replaces as one event of the record format
(:mod:`memlog.compaction`), as ``memlog hook claude-code`` does for Claude Code.
"""
