"""Warm transfer over real SIP, and the KPIs of real calls: a supervisor transfers a caller from the
console; the colleague's phone (a sipp UAS) is busy, so the call comes back to the agent, which
says so; the next transfer is answered; a third caller hangs up during the greeting. The console's
records and KPIs then tell exactly that story."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from voxbus.bus import subjects
from voxbus.bus.connection import Bus
from voxbus.bus.embedded import free_port
from voxbus.commands import sip_call
from voxbus.config import load_settings
from voxbus.console.auth import hash_password, new_token
from voxbus.console.kpi import compute_kpis
from voxbus.console.records import call_record
from voxbus.console.service import records_path
from voxbus.console.store import CallRecords
from voxbus.engines.tts import PiperEngine
from voxbus.media.dialogue import Dialogue, DialogueLine, DialoguePlayer, render_line
from voxbus.privacy import Redactor
from voxbus.schemas.events import (
    CallEnded,
    CallStarted,
    Event,
    PlayoutDone,
    TransferResult,
    TransferReturned,
    TransferSummary,
    TtsRequested,
    TurnMetrics,
)
from voxbus.supervisors.system import System

from .helpers import heard_while_playing, sipp_uas, wait_all_serving
from .test_console import PASSWORDS, browser, console_url, log_in, wait_for, wait_for_record

pytestmark = pytest.mark.integration
SUPERVISOR = ("ann", PASSWORDS["ann"])
SCENARIOS = Path(__file__).parent / "sipp"
CRM_TOKEN = new_token()  # a program that reads the calls with an API token


class UntilReleased:
    """A caller who says their line, then stays on until the test releases them, then hangs up."""

    def __init__(self, voice: DialoguePlayer) -> None:
        self.voice, self.release, self.released_at = voice, False, None

    def heard(self, tick: int, loud: bool) -> None:
        self.voice.heard(tick, loud)

    def frame(self, tick: int) -> bytes:
        if self.release and self.released_at is None:
            self.released_at = tick
        return self.voice.frame(tick)

    def finished(self, tick: int) -> bool:
        return self.released_at is not None and tick - self.released_at > 50


class HangsUpAtOnce(UntilReleased):
    def finished(self, tick: int) -> bool:
        return tick > 25  # half a second in: during the greeting


@pytest.fixture
async def desk(
    test_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[System, int]]:
    """The system with its console, transferring to a colleague's phone on a free port."""
    port = free_port()
    monkeypatch.setenv("VOXBUS_SIP__TRANSFER_TARGET", f"sip:desk@127.0.0.1:{port}")
    monkeypatch.setenv("VOXBUS_CONSOLE__ENABLED", "true")
    users = {SUPERVISOR[0]: {"password_hash": hash_password(SUPERVISOR[1]), "role": "supervisor"}}
    monkeypatch.setenv("VOXBUS_CONSOLE__USERS", json.dumps(users))
    tokens = {"crm": {"token_sha256": CRM_TOKEN[1], "role": "viewer"}}
    monkeypatch.setenv("VOXBUS_CONSOLE__TOKENS", json.dumps(tokens))
    system = System(load_settings())
    await system.start()
    yield system, port
    await system.stop()


@pytest.fixture
def driver() -> Iterator[webdriver.Chrome]:
    page = browser()
    yield page
    page.quit()


async def transfer_from_the_console(
    url: str, events: list[Event], caller: DialoguePlayer, earlier: tuple[str, ...] = ()
) -> str:
    """Once the caller has said their line and a first turn of it is answered, the supervisor
    transfers the call (not one of the ``earlier`` calls). Whisper may cut the line in two turns:
    a transfer during its second half would have its phrases said over the caller."""
    metrics = await wait_for(  # not turn 1: a pause after "Hello," may end a first turn unanswered
        events, lambda e: isinstance(e, TurnMetrics) and e.call_id not in earlier, 90
    )
    async with asyncio.timeout(60):
        while not caller.said_all():
            await asyncio.sleep(0.05)
    async with httpx.AsyncClient(base_url=url) as sue:
        await sue.post("/login", data={"user": SUPERVISOR[0], "password": SUPERVISOR[1]})
        answer = await sue.post(f"/api/calls/{metrics.call_id}/transfer")
        assert answer.status_code == 200, answer.text
    return metrics.call_id


def handover_shown(driver) -> str:  # type: ignore[no-untyped-def]
    wait = WebDriverWait(driver, 30)
    wait.until(lambda d: d.find_element(By.ID, "handover").is_displayed())
    return driver.find_element(By.ID, "handover-summary").text


def of_call(events: list[Event], call_id: str) -> list[Event]:
    return [e for e in events if getattr(e, "call_id", None) == call_id]


async def test_warm_transfers_and_the_kpis_of_real_calls(
    desk: tuple[System, int], piper: PiperEngine, tmp_path: Path, driver: webdriver.Chrome
) -> None:
    system, port = desk
    settings, target = system.settings, f"sip:desk@127.0.0.1:{port}"
    client = Bus(system.url, name="test-client", source="test", creds=system.creds("admin"))
    await client.connect(attempts=5)
    url = await console_url(system, client)
    await wait_all_serving(client, ("sip", "stt", "llm", "tts", "agent"), timeout_s=120)
    since = time.time()
    events: list[Event] = []

    async def collect(event: Event, _msg: object) -> None:
        events.append(event)

    await client.subscribe(subjects.ALL_CALL_EVENTS, None, collect)
    line = DialogueLine(text="Hello, I have a question about my bill.")
    rendered = [render_line(line, piper)]

    def voice() -> DialoguePlayer:
        return DialoguePlayer(Dialogue(lines=[line], settle_s=300), rendered)

    # a supervisor's page is open: the handover note shows there before the colleague's phone rings
    await asyncio.to_thread(log_in, driver, url, SUPERVISOR[0])

    # 1. the colleague's phone is busy: the call comes back to the agent, which says so
    busy = asyncio.create_task(sipp_uas(port, ("-sf", str(SCENARIOS / "desk_busy.xml"))))
    caller = UntilReleased(voice())
    heard_wav = tmp_path / "heard.wav"
    call = asyncio.create_task(sip_call(system.url, settings, caller, heard_wav, quiet=True))
    first = await transfer_from_the_console(url, events, caller.voice)
    noted = await wait_for(events, lambda e: isinstance(e, TransferSummary) and e.call_id == first, 60)
    shown = await asyncio.to_thread(handover_shown, driver)
    returned = await wait_for(events, lambda e: isinstance(e, TransferReturned) and e.call_id == first, 60)
    sorry = await wait_for(
        events,
        lambda e: isinstance(e, TtsRequested) and e.call_id == first and e.text.startswith("I'm sorry"),
    )
    await wait_for(events, lambda e: isinstance(e, PlayoutDone) and e.gen == sorry.gen and e.call_id == first)
    caller.release = True
    heard, _, _ = await asyncio.wait_for(call, 60)
    assert (await asyncio.wait_for(busy, 30))[0] == 0
    story = of_call(events, first)
    summary = next(e for e in story if isinstance(e, TransferSummary))
    result = next(e for e in story if isinstance(e, TransferResult) and e.final)
    # the summary was out before the transfer began, and named who asked for it
    assert story.index(summary) < story.index(result) < story.index(returned)
    assert summary.summary.strip() and summary.requested_by == SUPERVISOR[0] and "caller@" in summary.caller
    assert result.code == 486 and returned.code == 486
    assert shown == Redactor(settings.console.redact)(noted.summary)  # as the console shows any text
    assert heard.transfers == [(target, 486)] and heard.hung_up_by == "caller"
    assert heard.first_tick_ts is not None
    played_s, voiced_s = heard_while_playing(heard_wav, heard.first_tick_ts, events, sorry.gen)
    assert played_s > 1.0 and voiced_s > 1.0, (played_s, voiced_s)  # a long phrase

    # 2. the colleague answers: the caller is with them, the agent's leg ends
    answering = asyncio.create_task(sipp_uas(port))
    second_caller = voice()
    call = asyncio.create_task(sip_call(system.url, settings, second_caller, tmp_path / "h2.wav", quiet=True))
    second = await transfer_from_the_console(url, events, second_caller, (first,))
    heard, _, _ = await asyncio.wait_for(call, 90)
    assert heard.transfers == [(target, 200)] and heard.hung_up_by == "remote"
    assert (await asyncio.wait_for(answering, 30))[0] == 0  # the caller hung up on the colleague
    story = of_call(events, second)
    assert [type(e) for e in story if isinstance(e, (TransferSummary, CallEnded))] == [
        TransferSummary,
        CallEnded,
    ]

    # 3. a caller who hangs up during the greeting
    await sip_call(system.url, settings, HangsUpAtOnce(voice()), tmp_path / "h3.wav", quiet=True)
    third = (
        await wait_for(events, lambda e: isinstance(e, CallStarted) and e.call_id not in (first, second))
    ).call_id

    # the records and KPIs tell what happened
    outcomes = {c: (await wait_for_record(settings, c)).call.outcome for c in (first, second, third)}
    assert outcomes == {first: "resolved", second: "transferred", third: "abandoned"}
    records = CallRecords(records_path(settings))
    try:
        handover = [
            line.text for line in call_record(records, first).transcript if line.speaker == "handover"
        ]
        assert handover[0] == summary.summary and "back to the agent" in handover[1]
        kpis = compute_kpis(records, since, time.time() + 1, settings.console.price_per_core_hour)
    finally:
        records.close()
    assert kpis.calls == 3 and kpis.abandoned == 1
    # a program with a viewer's token reads the same calls, and may not step in
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {CRM_TOKEN[0]}"}) as crm:
        listed = (await crm.get("/api/history", params={"since": since - 1})).json()
        assert {c["call_id"] for c in listed} == {first, second, third}
        assert (await crm.post(f"/api/calls/{first}/hangup")).status_code == 403
    assert kpis.transfer_rate == pytest.approx(1 / 3) and kpis.resolution_rate == pytest.approx(1 / 3)
    await client.close()
