"""The tool contract without a bus: discovery answers, argument checks, replies, and how the
engine spots and constrains a tool call."""

from __future__ import annotations

import json

import pytest

from voxbus.engines.tool_calls import call_schema, call_start, canonical, undecided_tail
from voxbus.tools.catalog import RecentTools, catalog_of
from voxbus.tools.contract import (
    MAX_REPLY_BYTES,
    MAX_SAY_CHARS,
    BadTool,
    ToolSpec,
    argument_problem,
    parse_reply,
)

SLOTS = {"type": "object", "properties": {"date": {"type": "string"}}, "required": ["date"]}


def info(service: str, *endpoints: dict, sid: str = "1") -> bytes:
    return json.dumps({"name": service, "id": sid, "endpoints": list(endpoints)}).encode()


def endpoint(
    name: str, description: str = "Free slots on a day.", parameters: object = SLOTS, **meta: str
) -> dict:
    metadata = {"description": description, "parameters": json.dumps(parameters), **meta}
    return {"name": name, "subject": f"voxbus.tool.{name}", "metadata": metadata}


def test_tools_of_several_services_are_found_and_other_services_ignored() -> None:
    other = {"name": "stats", "subject": "metrics.get", "metadata": {}}
    catalog = catalog_of(
        [info("calendar", endpoint("list_free_slots"), endpoint("book", timeout_s="5")), info("x", other)]
    )
    assert sorted(catalog.tools) == ["book", "list_free_slots"] and not catalog.problems
    assert catalog.tools["book"].timeout_s == 5.0
    assert catalog.tools["book"].for_llm()["function"]["parameters"] == SLOTS


def test_replicas_share_a_tool_but_two_services_claiming_one_name_get_neither() -> None:
    replicas = catalog_of(
        [info("calendar", endpoint("book"), sid="a"), info("calendar", endpoint("book"), sid="b")]
    )
    assert list(replicas.tools) == ["book"] and not replicas.problems
    taken = catalog_of(
        [
            info("calendar", endpoint("book")),
            info("intruder", endpoint("book")),
            info("intruder", endpoint("book")),
        ]
    )
    assert taken.tools == {} and len(taken.problems) == 1 and "two services" in taken.problems[0]


def test_a_tool_missing_from_one_discovery_is_kept_for_a_while() -> None:
    """A service too busy to answer one discovery's half second is not gone: its tools stay
    offered for ``keep_s``; one that two services claim now is dropped at once."""
    now = [0.0]
    recent = RecentTools(keep_s=45.0, clock=lambda: now[0])
    both = catalog_of([info("calendar", endpoint("list_free_slots"), endpoint("book"))])
    assert sorted(recent.note(both).tools) == ["book", "list_free_slots"]
    now[0] = 15.0
    assert sorted(recent.note(catalog_of([])).tools) == ["book", "list_free_slots"]  # missed once
    now[0] = 30.0
    one = catalog_of([info("calendar", endpoint("list_free_slots"))])
    assert sorted(recent.note(one).tools) == ["book", "list_free_slots"]
    now[0] = 50.0  # book last seen 50 s ago
    assert sorted(recent.note(one).tools) == ["list_free_slots"]
    taken = catalog_of(
        [info("calendar", endpoint("list_free_slots")), info("intruder", endpoint("list_free_slots"))]
    )
    assert recent.note(taken).tools == {}


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        (endpoint("Book"), "must match"),
        (endpoint("book", description=""), "no description"),
        (endpoint("book", parameters={"type": "string"}), "type object"),
        (
            endpoint("book", parameters={"type": "object", "properties": {"a": {"type": 7}}}),
            "not a valid JSON Schema",
        ),
        (
            {"subject": "voxbus.tool.book", "metadata": {"description": "d", "parameters": "{nope"}},
            "not JSON",
        ),
        (endpoint("book", timeout_s="soon"), "timeout_s"),
    ],
)
def test_an_endpoint_that_breaks_the_contract_is_left_out_with_one_line(bad: dict, why: str) -> None:
    catalog = catalog_of([info("calendar", bad, endpoint("list_free_slots"))])
    assert list(catalog.tools) == ["list_free_slots"]
    assert len(catalog.problems) == 1 and why in catalog.problems[0] and "\n" not in catalog.problems[0]


def test_garbage_answers_to_srv_info_are_reported() -> None:
    catalog = catalog_of([b"\xff", b"[]", info("calendar", endpoint("book"))])
    assert list(catalog.tools) == ["book"] and len(catalog.problems) == 2


def test_arguments_are_checked_against_the_schema_before_any_request() -> None:
    spec = ToolSpec(name="list_free_slots", description="d", parameters=SLOTS)
    assert argument_problem(spec, {"date": "2026-12-04"}) is None
    assert "required" in (argument_problem(spec, {}) or "")
    assert "date" in (argument_problem(spec, {"date": 4}) or "")


def test_replies_ok_refused_by_header_or_body_and_broken_ones() -> None:
    assert parse_reply(b'{"ok": true, "result": {"id": 3}}', None).result == {"id": 3}
    refused = parse_reply(b"", {"Nats-Service-Error": "slot taken", "Nats-Service-Error-Code": "409"})
    assert not refused.ok and refused.error == "slot taken (code 409)"
    assert parse_reply(b'{"ok": false}', None).error  # a reason is always given
    for broken, why in [(b"not json", "not a tool reply"), (b'{"ok": "maybe"}', "not a tool reply")]:
        with pytest.raises(BadTool, match=why):
            parse_reply(broken, None)
    with pytest.raises(BadTool, match="bytes"):
        parse_reply(b'{"ok": true, "result": "' + b"x" * MAX_REPLY_BYTES + b'"}', None)


def test_a_reply_may_word_the_agents_answer_in_one_plain_line() -> None:
    done = parse_reply(b'{"ok": true, "result": {"id": 3}, "say": "Done: Friday at 11:30."}', None)
    assert done.say == "Done: Friday at 11:30."
    taken = parse_reply(b'{"ok": false, "error": "taken", "say": "Sorry, that is taken."}', None)
    assert not taken.ok and taken.say == "Sorry, that is taken."
    for say in ["", "two\nlines", "<tool_call>{}</tool_call>", "x" * (MAX_SAY_CHARS + 1)]:
        with pytest.raises(BadTool, match="not a tool reply"):
            parse_reply(json.dumps({"ok": True, "say": say}).encode(), None)


def test_a_tool_call_is_spotted_in_any_of_the_shapes_small_models_use() -> None:
    assert call_start('{"name": "book"') == 0
    assert call_start('{{"name"') == 0
    assert call_start("Let me check. <tool_call>") == 14
    assert call_start('Sure. <tool_call>\n{"name"') == 6
    assert call_start('One moment. {"name"') == 12
    assert call_start('<tools>\n{"name"') == 0
    assert call_start("Sure. <tool_response>\n{") == 6  # about to make up a result: a call instead
    assert call_start("It costs {about} ten") is None  # a brace inside a sentence
    assert call_start("plain words") is None
    assert undecided_tail("hello <tool") == 5 and undecided_tail("hello") == 0
    assert undecided_tail("ok <tools>\n") == 8 and undecided_tail("a < b") == 0


def test_the_call_grammar_admits_only_the_offered_tools() -> None:
    tools = [
        ToolSpec(name=n, description="d", parameters=SLOTS).for_llm() for n in ("book", "list_free_slots")
    ]
    schema = call_schema(tools)
    assert [v["properties"]["name"]["const"] for v in schema["oneOf"]] == ["book", "list_free_slots"]
    assert call_schema(tools[:1])["properties"]["arguments"] == SLOTS
    assert canonical(' {"name": "book"} ') == '<tool_call>\n{"name": "book"}\n</tool_call>'
