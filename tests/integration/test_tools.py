"""Tools served over a real NATS server: the helper, a plain nats-py service, and every way a
tool call can go wrong (slow, gone, broken replies, a name already taken)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from pydantic import BaseModel, Field

from voxbus.tools.catalog import discover
from voxbus.tools.contract import BadTool, ToolSpec
from voxbus.tools.heard import CALLER_SAID, Said
from voxbus.tools.invoke import CallContext, call_tool
from voxbus.tools.service import Answer, ToolContext, ToolError, ToolService

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
CALL = CallContext(call_id="c1", caller="sip:+15550001@127.0.0.1", called="2000")


class Slot(BaseModel):
    start: str


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    client = await nats.connect(nats_url)
    yield client
    await client.drain()


async def test_a_retried_book_books_once_and_a_late_reply_is_ignored(nc: Client) -> None:
    booked: list[tuple[str, str]] = []
    service = ToolService("calendar")

    @service.tool("Book a slot.", timeout_s=0.3)
    async def book(args: Slot, ctx: ToolContext) -> dict:
        booked.append((args.start, ctx.called))
        await asyncio.sleep(0.45)  # longer than the timeout: the agent asks again, same key
        return {"booked": args.start}

    await service.start(nc)
    spec = (await discover(nc)).tools["book"]
    assert spec.timeout_s == 0.3 and spec.parameters["required"] == ["start"]
    outcome = await call_tool(nc, spec, "book", {"start": "2026-12-04 11:30"}, CALL, "c1:1:0")
    assert outcome.ok and outcome.result == {"booked": "2026-12-04 11:30"} and outcome.attempts == 2
    assert booked == [("2026-12-04 11:30", "2000")]  # booked once, and the tool knew the number called
    again = await call_tool(nc, spec, "book", {"start": "2026-12-04 11:30"}, CALL, "c1:1:0")
    assert again.ok and len(booked) == 1
    await service.stop()


async def test_refusals_bad_arguments_unknown_tools_and_crashes_are_answers(nc: Client) -> None:
    service = ToolService("calendar")

    @service.tool("Book a slot.")
    async def book(args: Slot, ctx: ToolContext) -> dict:
        if args.start.endswith("09:00"):
            raise ToolError("that slot is taken")
        raise RuntimeError("database on fire")

    await service.start(nc)
    spec = (await discover(nc)).tools["book"]
    taken = await call_tool(nc, spec, "book", {"start": "2026-12-04 09:00"}, CALL, "k1")
    assert not taken.ok and taken.failure == "refused" and taken.error == "that slot is taken"
    crashed = await call_tool(nc, spec, "book", {"start": "2026-12-04 10:00"}, CALL, "k2")
    assert crashed.failure == "refused" and "RuntimeError" in crashed.error
    bad = await call_tool(nc, spec, "book", {"when": "friday"}, CALL, "k3")
    assert bad.failure == "bad_arguments" and bad.attempts == 0  # never sent
    unknown = await call_tool(nc, None, "launch", {}, CALL, "k4")
    assert unknown.failure == "unknown_tool"
    # the service is still up and answering
    assert (await call_tool(nc, spec, "book", {"start": "x 09:00"}, CALL, "k5")).error == "that slot is taken"
    await service.stop()


class Move(BaseModel):
    day: str = Field(json_schema_extra=CALLER_SAID)
    time: str = Field(json_schema_extra=CALLER_SAID)
    note: str = ""


async def test_a_tool_words_the_agents_answer_and_a_broken_wording_is_refused(nc: Client) -> None:
    service = ToolService("calendar")

    @service.tool("Book a slot.")
    async def book(args: Slot, ctx: ToolContext) -> Answer:
        if args.start.endswith("09:00"):
            raise ToolError("taken", say="Sorry, 9:00 is taken. I have 11:30.")
        if args.start.endswith("10:00"):
            return Answer(result={"booked": args.start}, say="Done.\n<tool_call>")  # breaks the contract
        return Answer(result={"booked": args.start}, say=f"Done: you are booked at {args.start[11:]}.")

    await service.start(nc)
    spec = (await discover(nc)).tools["book"]
    done = await call_tool(nc, spec, "book", {"start": "2026-12-04 11:30"}, CALL, "c1:1:0")
    assert (
        done.ok
        and done.result == {"booked": "2026-12-04 11:30"}
        and done.say == "Done: you are booked at 11:30."
    )
    taken = await call_tool(nc, spec, "book", {"start": "2026-12-04 09:00"}, CALL, "c1:1:1")
    assert not taken.ok and taken.failure == "refused" and taken.say.startswith("Sorry, 9:00")
    broken = await call_tool(nc, spec, "book", {"start": "2026-12-04 10:00"}, CALL, "c1:1:2")
    assert not broken.ok and not broken.say and "not one plain line" in broken.error
    await service.stop()


async def test_a_booking_on_a_time_nobody_said_is_not_sent(nc: Client) -> None:
    moved: list[tuple[str, str]] = []
    service = ToolService("calendar")

    @service.tool("Move the appointment.")
    async def reschedule(args: Move, ctx: ToolContext) -> dict:
        moved.append((args.day, args.time))
        return {"moved": f"{args.day} {args.time}"}

    await service.start(nc)
    spec = (await discover(nc)).tools["reschedule"]
    assert "x-caller-said" not in str(spec.for_llm())  # voxbus's mark, not the model's business
    heard = "Hi, move my appointment to Friday at free please."  # whisper's "three"
    first = Said(heard, heard, heard)  # the caller's words alone so far
    guess = await call_tool(nc, spec, "reschedule", {"day": "Friday", "time": "10:00"}, CALL, "k1", first)
    assert not guess.ok and guess.failure == "not_said" and guess.attempts == 0 and moved == []
    assert "time '10:00'" in guess.error and "ask the caller" in guess.error
    said = Said(heard + " Sorry, at ten.", heard + " Sorry, at ten.", "Sorry, at ten.")
    right = await call_tool(
        nc, spec, "reschedule", {"day": "Friday", "time": "10:00", "note": "x"}, CALL, "k2", said
    )
    assert right.ok and moved == [("Friday", "10:00")]  # the unmarked note is not checked
    await service.stop()


async def test_a_slow_or_missing_tool_fails_after_one_retry(nc: Client) -> None:
    service = ToolService("slow")

    @service.tool("Slow.", timeout_s=0.2)
    async def crawl(args: Slot, ctx: ToolContext) -> dict:
        await asyncio.sleep(5)
        return {}

    await service.start(nc)
    spec = (await discover(nc)).tools["crawl"]
    slow = await call_tool(nc, spec, "crawl", {"start": "now"}, CALL, "k")
    assert slow.failure == "timeout" and slow.attempts == 2 and "did not answer" in slow.error
    await service.stop()
    gone = await call_tool(nc, spec, "crawl", {"start": "now"}, CALL, "k")
    assert gone.failure == "unavailable" and "no service" in gone.error


async def test_broken_replies_are_clear_failures(nc: Client) -> None:
    replies = {
        "garbage": b"not json",
        "shape": b'{"ok": "yes"}',
        "huge": b'{"ok": true, "result": "' + b"x" * 70000 + b'"}',
    }

    async def answer(msg) -> None:  # type: ignore[no-untyped-def]
        await msg.respond(replies[msg.subject.rsplit(".", 1)[1]])

    await nc.subscribe("voxbus.tool.*", cb=answer)
    for name in replies:
        spec = ToolSpec(name=name, description="d", parameters={"type": "object"})
        outcome = await call_tool(nc, spec, name, {}, CALL, "k")
        assert outcome.failure == "bad_reply", (name, outcome)
    huge = await call_tool(
        nc, ToolSpec(name="huge", description="d", parameters={"type": "object"}), "huge", {}, CALL, "k"
    )
    assert "bytes" in huge.error


async def test_a_name_already_served_by_another_service_is_refused(nc: Client) -> None:
    first, second = ToolService("calendar"), ToolService("intruder")
    for service in (first, second):

        @service.tool("Book a slot.")
        async def book(args: Slot, ctx: ToolContext) -> dict:
            return {}

    await first.start(nc)
    with pytest.raises(BadTool, match="already served by calendar"):
        await second.start(nc)
    replica = ToolService("calendar")
    replica.tools = first.tools
    await replica.start(nc)  # a second replica of the same service is welcome
    catalog = await discover(nc)
    assert list(catalog.tools) == ["book"] and not catalog.problems
    await first.stop()
    await replica.stop()


async def test_a_service_written_with_plain_nats_py_serves_a_tool(nc: Client, nats_url: str) -> None:
    script = ROOT / "examples" / "plain_nats_tool.py"
    assert "voxbus" not in "".join(line for line in script.read_text().splitlines() if "import" in line)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), nats_url, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        await asyncio.wait_for(proc.stdout.readline(), 20)
        spec = (await discover(nc)).tools["opening_hours"]
        assert spec.parameters["properties"]["day"]["enum"][0] == "friday"
        outcome = await call_tool(nc, spec, "opening_hours", {"day": "friday"}, CALL, "k")
        assert outcome.ok and outcome.result == {"day": "friday", "hours": "8:00-16:00"}
        wrong = await call_tool(nc, spec, "opening_hours", {"day": "someday"}, CALL, "k2")
        assert wrong.failure == "bad_arguments"  # the schema in its metadata is enforced before sending
    finally:
        proc.terminate()
        await proc.wait()
