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


def test_broken_tool_calls_are_reported_and_any_name_is_handed_on() -> None:
    spoken, calls, errors = stream(
        [
            '<tool_call>{"name": "rm_rf"}</tool_call>ok',
            "<tool_call>{nope</tool_call>",
            '<tool_call>{"name": 3}</tool_call>',
        ]
    )
    # the call actor answers a name it does not offer (tool.failed unknown_tool); the filter
    # only keeps unreadable calls from being spoken
    assert spoken == "ok" and calls == ["rm_rf"] and len(errors) == 2


def test_the_call_being_written_is_known_by_name_before_it_is_whole() -> None:
    f = ToolCallFilter()
    assert f.push("Sure. ") == ("Sure. ", []) and f.decoding is None
    f.push("<tool_call>")
    assert f.decoding == ""  # a call has begun, its name not yet
    f.push('\n{"name": "resched')
    assert f.decoding == ""
    f.push('ule", "arguments": {"day": "fri')
    assert f.decoding == "reschedule"
    _, calls = f.push('day"}}\n</tool_call>')
    assert [c.name for c in calls] == ["reschedule"] and f.decoding is None
