"""Tool calls are cut out of the streamed text, whole, whatever the token boundaries."""

from __future__ import annotations

from voxbus.actors.tools import ToolCallFilter


def stream(pieces: list[str]) -> tuple[str, list[str], list[str]]:
    f = ToolCallFilter()
    spoken, calls = "", []
    for piece in pieces:
        text, done = f.push(piece)
        spoken += text
        calls += [c.name for c in done]
    return spoken + f.flush(), calls, f.errors


def test_a_tool_call_split_across_tokens_is_not_spoken() -> None:
    text = 'Sure, one moment. <tool_call>\n{"name": "transfer_to_human", "arguments": {}}\n</tool_call>'
    for size in (1, 2, 3, 7, 100):
        pieces = [text[i : i + size] for i in range(0, len(text), size)]
        spoken, calls, errors = stream(pieces)
        assert spoken == "Sure, one moment. " and calls == ["transfer_to_human"] and not errors


def test_plain_text_and_lookalikes_pass_through() -> None:
    assert stream(["a < b", " and <tool", "box> too"]) == ("a < b and <toolbox> too", [], [])


def test_unknown_or_broken_tool_calls_are_reported_not_run() -> None:
    spoken, calls, errors = stream(
        ['<tool_call>{"name": "rm_rf"}</tool_call>ok', "<tool_call>{nope</tool_call>"]
    )
    assert spoken == "ok" and calls == [] and len(errors) == 2
