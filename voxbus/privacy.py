"""Redaction: card numbers, phone numbers and e-mail addresses (``console.redact``) replaced by
``[redacted]`` before text is kept: in the console's records always, and in the events themselves
when ``console.redact_events`` is on (then the stream, third parties and the agent's own LLM see
``[redacted]``: a number said by the caller can no longer be used by a tool)."""

from __future__ import annotations

import re
from typing import Any

from voxbus.schemas.events import Event

REDACTED = "[redacted]"
# the fields of events that carry what people said or typed, and what tools were given and gave back
SPOKEN_FIELDS = (
    "text", "heard_text", "user_text", "agent_text", "summary",
    "arguments", "result", "message", "error", "reason",
)  # fmt: skip


class Redactor:
    """Replaces every match of the configured patterns by ``[redacted]``."""

    def __init__(self, patterns: list[str] | None) -> None:
        self.patterns = [re.compile(p) for p in patterns or []]

    def __call__(self, text: str) -> str:
        for pattern in self.patterns:
            text = pattern.sub(REDACTED, text)
        return text

    def value(self, value: Any) -> Any:
        """A string, or the strings inside lists and dicts (tool arguments), redacted."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        return value

    def event(self, event: Event) -> Event:
        """A copy of the event with its spoken fields redacted (the original is left alone)."""
        changes = {
            name: self.value(getattr(event, name))
            for name in SPOKEN_FIELDS
            if getattr(event, name, None) is not None
        }
        return event.model_copy(update=changes) if changes else event
