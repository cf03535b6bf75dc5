"""The agent's call-control tools, and pulling tool calls out of the streamed LLM text.

Tools are offered to the model in the OpenAI function format; a model whose chat template knows
tools (Qwen2.5 does) answers a request such as "let me talk to a person" with
``<tool_call>{"name": "transfer_to_human", "arguments": {}}</tool_call>``. The filter keeps such
blocks away from TTS and hands them to the call actor (which answers a name it does not know; see
``voxbus/actors/call/tool_flow.py``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

OPEN, CLOSE = "<tool_call>", "</tool_call>"
# the agent's own tools: carried out by the call actor, not served on the bus
CALL_CONTROL = {"transfer_to_human": "transfer", "hang_up": "hangup"}
_NAME = re.compile(r'"name"\s*:\s*"([^"]+)"')

CALL_TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "transfer_to_human",
            "description": "Transfer the caller to a human colleague, when they ask for a person or "
            "when you cannot help them.",
            "parameters": {"type": "object", "properties": {}},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "hang_up",
            "description": "End the call, after saying goodbye, when the caller is done.",
            "parameters": {"type": "object", "properties": {}},
        },
    },
]


@dataclass
class ToolCall:
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass
class ToolCallFilter:
    """Streaming: ``push`` returns (text to speak, tool calls completed so far)."""

    held: str = ""
    inside: bool = False
    errors: list[str] = field(default_factory=list)
    # the call being decoded: None outside one, "" until its name has come, then the name
    decoding: str | None = None

    def push(self, text: str) -> tuple[str, list[ToolCall]]:
        self.held += text
        spoken, calls = [], []
        while True:
            if self.inside:
                end = self.held.find(CLOSE)
                if end < 0:
                    if not self.decoding:
                        named = _NAME.search(self.held)
                        self.decoding = named.group(1) if named else ""
                    return "".join(spoken), calls
                call = self._parse(self.held[:end])
                if call is not None:
                    calls.append(call)
                self.held, self.inside, self.decoding = self.held[end + len(CLOSE) :], False, None
                continue
            start = self.held.find(OPEN)
            if start >= 0:
                spoken.append(self.held[:start])
                self.held, self.inside = self.held[start + len(OPEN) :], True
                continue
            # keep a possible beginning of "<tool_call>" until the next piece shows what it is
            keep = next(
                (
                    n
                    for n in range(min(len(OPEN) - 1, len(self.held)), 0, -1)
                    if OPEN.startswith(self.held[-n:])
                ),
                0,
            )
            spoken.append(self.held[: len(self.held) - keep])
            self.held = self.held[len(self.held) - keep :]
            return "".join(spoken), calls

    def flush(self) -> str:
        rest, self.held = ("" if self.inside else self.held), ""
        return rest

    def _parse(self, body: str) -> ToolCall | None:
        try:
            data = json.loads(body.strip())
            name = data["name"]
            arguments = data.get("arguments") or {}
        except (ValueError, KeyError, TypeError) as exc:
            self.errors.append(f"unreadable tool call {body.strip()[:80]!r}: {exc}")
            return None
        if not isinstance(name, str):
            self.errors.append(f"unreadable tool call {body.strip()[:80]!r}: name is not a string")
            return None
        return ToolCall(name=name, arguments=arguments if isinstance(arguments, dict) else {})
