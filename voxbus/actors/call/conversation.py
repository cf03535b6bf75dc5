"""The conversation: the history the LLM sees, its window, and its keeping in the KV bucket.

:class:`Conversation` is a plain object over :class:`~voxbus.schemas.messages.CallState` (turn and
generation counters, the history): a caller turn enters, an answer enters once complete, an
interrupted answer is replaced by the part the caller heard, a turn the caller went on from is
withdrawn. :class:`CallStore` keeps the state in the ``voxbus_calls`` bucket, so that a restarted
call actor resumes the conversation.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from voxbus.actors.call.store import CallStore  # noqa: F401  (where the actor finds it)
from voxbus.config import AgentSettings
from voxbus.schemas.messages import CallState, ChatMessage
from voxbus.tools.heard import Said

INTERRUPTED_MARK = " —"  # the default system prompt says what it means


class Conversation:
    def __init__(self, state: CallState, settings: AgentSettings) -> None:
        self.state, self.settings = state, settings

    @property
    def turn(self) -> int:
        return self.state.turn

    @property
    def history(self) -> list[ChatMessage]:
        return self.state.history

    def next_gen(self) -> int:
        self.state.gen += 1
        return self.state.gen

    def open_turn(self, text: str) -> int:
        """The caller's turn is over: its words enter the history. Returns the turn number."""
        self.state.turn += 1
        self.state.history.append(ChatMessage(role="user", content=text))
        return self.state.turn

    def withdraw_turn(self) -> None:
        """The caller went on: their last turn was not over after all (its words are carried
        into the next one)."""
        if self.state.history and self.state.history[-1].role == "user":
            self.state.history.pop()
            self.state.turn -= 1

    def add_answer(self, text: str) -> int:
        """An answer (or the greeting) enters the history; returns where it sits."""
        self.state.history.append(ChatMessage(role="assistant", content=text))
        return len(self.state.history) - 1

    def said(self, pending: str = "") -> Said:
        """Every word said in the call so far, by the caller and by the agent (its answers, not
        its tool calls), and the caller's alone, with ``pending`` (the caller's turn being
        answered): what a tool's arguments must come from."""
        spoken = [
            m.content
            for m in self.state.history
            if m.role == "user" or (m.role == "assistant" and "<tool_call>" not in m.content)
        ]
        by_caller = [m.content for m in self.state.history if m.role == "user"]
        return Said(" ".join([*spoken, pending]), " ".join([*by_caller, pending]), pending)

    def add_tool_calls(self, text: str) -> None:
        """The LLM's tool calls (and any words before them) enter the history as it wrote them."""
        self.state.history.append(ChatMessage(role="assistant", content=text))

    def add_tool_response(self, response: dict[str, Any]) -> None:
        """A tool's response, as the LLM reads it back (kept even if the answer was cut off)."""
        content = json.dumps(response, ensure_ascii=False, separators=(",", ":"))
        self.state.history.append(ChatMessage(role="tool", content=content))

    def cut_answer(self, index: int | None, heard: str) -> None:
        """An answer was interrupted: the history keeps only what the caller heard of it, marked."""
        if index is not None:
            del self.state.history[index]
        if heard:
            self.state.history.append(ChatMessage(role="assistant", content=heard, interrupted=True))

    def prompt(self, pending: str | None = None) -> list[ChatMessage]:
        """The messages for the LLM; ``pending``: words of a turn still open (a speculative
        answer), not in the history yet."""
        history = list(self.state.history)
        if pending is not None:
            history.append(ChatMessage(role="user", content=pending))
        history = history[history_start(len(history), self.settings.history_messages) :]
        # an interrupted answer ends with a dash where the caller cut in (see agent.system_prompt)
        shown = [
            m.model_copy(update={"content": m.content + INTERRUPTED_MARK}) if m.interrupted else m
            for m in history
        ]
        # the system prompt (and the tools rendered after it) never change: the LLM worker keeps
        # them evaluated; what is particular to this call comes in a second system message
        system = [ChatMessage(role="system", content=self.settings.system_prompt)]
        if self.state.context:
            system.append(ChatMessage(role="system", content=self.state.context))
        return [*system, *shown]


def history_start(length: int, keep: int) -> int:
    """Where the prompt's history starts when at most ``keep`` messages go to the LLM. Old
    messages are dropped half a window at a time, not one by one: the prompt's prefix then stays
    the same from turn to turn, so the LLM worker's cache keeps it evaluated (a window sliding by
    one message would change the whole prompt every turn)."""
    if keep == 0:
        return length
    if length <= keep:
        return 0
    step = max(2, keep // 2)
    return -(-(length - keep) // step) * step  # the next multiple of step at or above the excess


def caller_number(uri: str) -> str:
    """The user part of a SIP address (``"Ann" <sip:+15551234567@host>`` -> ``+15551234567``)."""
    found = re.search(r"(?:sips?|tel):([^@;>\s]+)", uri)
    return found.group(1) if found else ""


def call_context(now: float, state: CallState) -> str:
    """What the LLM is told about this call: the date and time (callers say "Friday"), who calls
    and which number they called."""
    when = datetime.fromtimestamp(now).astimezone()
    lines = [f"Today is {when:%A} {when:%Y-%m-%d}, the time is {when:%H:%M}."]
    if number := caller_number(state.caller):
        lines.append(f"The caller's number is {number}.")
    if state.purpose:  # voxbus placed the call: the person answering did not ask for anything yet
        lines.append(f"You placed this call; what it is about: {state.purpose}")
    elif state.called:
        lines.append(f"They called {state.called}.")
    context = " ".join(lines)
    return with_language(context, state.language) if state.language not in ("en", "auto") else context


LANGUAGE_NAMES = {
    "en": "English",
    "fr": "French",
    "de": "German",
    "es": "Spanish",
    "it": "Italian",
    "nl": "Dutch",
}


def with_language(context: str, language: str) -> str:
    """The context with the call's language in it: the LLM answers in the caller's language
    whatever the language of its instructions."""
    name = LANGUAGE_NAMES.get(language, language)
    note = f"The caller speaks {name}: answer in {name}."
    return context if note in context else f"{context} {note}".strip()
