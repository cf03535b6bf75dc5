"""The OpenAI-compatible engine's pure parts, the fallback pair (with stand-in engines) and its
configuration."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from voxbus.config import Settings
from voxbus.engines.llm_fallback import FallbackLlmEngine
from voxbus.engines.remote_llm import RemoteLlmError, answer_pieces, openai_messages, sse_deltas
from voxbus.schemas.messages import ChatMessage

TOOLS = [{"type": "function", "function": {"name": "find_slot", "parameters": {"type": "object"}}}]


def sse(*deltas: dict[str, Any]) -> list[str]:
    lines = [": keep-alive", ""]
    for delta in deltas:
        lines += ["data: " + json.dumps({"choices": [{"index": 0, "delta": delta}]}), ""]
    return [*lines, "data: [DONE]", "data: " + json.dumps({"choices": [{"delta": {"content": "late"}}]})]


def test_history_in_chat_completions_form() -> None:
    call = '<tool_call>{"name": "find_slot", "arguments": {"day": "friday"}}</tool_call>'
    messages = [
        ChatMessage(role="system", content="You are the clinic."),
        ChatMessage(role="system", content="The caller is Ann."),
        ChatMessage(role="user", content="Move me to Friday."),
        ChatMessage(role="assistant", content="Let me look." + call),
        ChatMessage(role="tool", content='{"ok":true}'),
    ]
    out = openai_messages(messages, continue_from="Friday at")
    assert out[0] == {"role": "system", "content": "You are the clinic.\n\nThe caller is Ann."}
    assistant = out[2]
    assert assistant["content"] == "Let me look."
    [tool_call] = assistant["tool_calls"]
    assert tool_call["function"] == {"name": "find_slot", "arguments": '{"day": "friday"}'}
    assert out[3] == {"role": "tool", "tool_call_id": tool_call["id"], "content": '{"ok":true}'}
    assert out[4] == {"role": "assistant", "content": "Friday at"}


def test_event_stream_ends_at_done_and_says_what_is_wrong() -> None:
    deltas = list(sse_deltas(sse({"content": "Hel"}, {"content": "lo"})))
    assert deltas == [{"content": "Hel"}, {"content": "lo"}]
    with pytest.raises(RemoteLlmError, match="not JSON"):
        list(sse_deltas(["data: {oops"]))
    with pytest.raises(RemoteLlmError, match="overloaded"):
        list(sse_deltas(['data: {"error": {"message": "overloaded"}}']))


def pieces(deltas: list[dict[str, Any]], tools: bool = True, cancel_after: int | None = None) -> list[str]:
    seen = iter(range(10**6))
    cancelled: Callable[[], bool] = lambda: cancel_after is not None and next(seen) >= cancel_after  # noqa: E731
    return list(answer_pieces(deltas, cancelled, tools))


def test_structured_tool_calls_come_out_canonical_after_the_words() -> None:
    out = pieces(
        [
            {"content": "Let me check. "},
            {"tool_calls": [{"index": 0, "function": {"name": "find_slot", "arguments": '{"day":'}}]},
            {"tool_calls": [{"index": 0, "function": {"arguments": ' "friday"}'}}]},
        ]
    )
    assert out[0] == "Let me check. "
    call = json.loads(out[-1].removeprefix("<tool_call>").removesuffix("</tool_call>"))
    assert call == {"name": "find_slot", "arguments": {"day": "friday"}}


def test_a_call_written_as_text_is_never_spoken() -> None:
    out = pieces(
        [
            {"content": "Sure. <tool"},
            {"content": '_call>{"name": "find_slot", '},
            {"content": '"arguments": {}}'},
        ]
    )
    assert "".join(out[:-1]) == "Sure. "
    assert json.loads(out[-1].removeprefix("<tool_call>").removesuffix("</tool_call>"))["name"] == "find_slot"
    # without tools offered, text is text
    assert "".join(pieces([{"content": "a {b}"}], tools=False)) == "a {b}"


def test_cancel_stops_the_stream() -> None:
    assert pieces([{"content": "one "}, {"content": "two "}, {"content": "three"}], cancel_after=1) == [
        "one "
    ]


class StandIn:
    """An engine that says its words, then fails if told to."""

    def __init__(self, words: list[str], fail_after: int | None = None) -> None:
        self.words, self.fail_after = words, fail_after
        self.continued_from: list[str] = []
        self.warmed = 0

    def stream(  # type: ignore[no-untyped-def]
        self,
        messages,
        max_tokens,
        temperature,
        continue_from="",
        cancelled=lambda: False,
        tools=None,
        session="",
    ):
        self.continued_from.append(continue_from)
        for i, word in enumerate(self.words):
            if i == self.fail_after:
                raise RemoteLlmError("ReadError: connection reset")
            yield word

    def warm(self, messages, tools=None, session="", stop=lambda: False) -> bool:  # type: ignore[no-untyped-def]
        self.warmed += 1
        return True


def answer(engine: FallbackLlmEngine) -> Iterator[str]:
    return engine.stream([ChatMessage(role="user", content="hi")], 50, 0.0)


def test_fallback_goes_on_where_the_server_stopped_then_rests_the_server() -> None:
    now = [0.0]
    remote, local = StandIn(["Friday ", "at ", "nine"], fail_after=2), StandIn(["ten."])
    engine = FallbackLlmEngine(remote, local, retry_after_s=10, clock=lambda: now[0])  # type: ignore[arg-type]
    reports: list[tuple[str, int]] = []
    engine.on_fallback = lambda reason, chars: reports.append((reason, chars))

    assert "".join(answer(engine)) == "Friday at ten."
    assert local.continued_from == ["Friday at "]
    assert reports == [("ReadError: connection reset", len("Friday at "))]

    # while the server rests, the local model answers at once, and is the one kept warm
    engine.warm([ChatMessage(role="user", content="hi")])
    assert "".join(answer(engine)) == "ten." and len(remote.continued_from) == 1
    assert local.warmed == 1
    now[0] = 11.0
    remote.fail_after = None
    assert "".join(answer(engine)) == "Friday at nine" and len(remote.continued_from) == 2
    engine.warm([ChatMessage(role="user", content="hi")])
    assert local.warmed == 1  # the server is up: the local model is left alone


def test_a_cancelled_answer_is_not_a_failure() -> None:
    remote, local = StandIn(["a ", "b"], fail_after=1), StandIn(["c"])
    engine = FallbackLlmEngine(remote, local)  # type: ignore[arg-type]
    out = list(engine.stream([], 10, 0.0, cancelled=lambda: True))
    assert out == ["a "] and local.continued_from == [] and engine.remote_up()


def test_api_keys_never_in_the_configuration() -> None:
    with pytest.raises(ValidationError, match="llm_api_key_env"):
        Settings(models={"llm_url": "http://127.0.0.1:8080/v1", "llm_api_key": "sk-123"})
    with pytest.raises(ValidationError, match="not an http"):
        Settings(models={"llm_url": "127.0.0.1:8080"})
    assert Settings(models={"llm_url": "https://llm.example/v1"}).llm.fallback == "local"
