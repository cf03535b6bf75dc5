"""The operator console over a real system: a real SIP call watched, guided, spoken into and hung
up from headless Chromium (Debian's, driven by selenium), the records, KPIs and Prometheus
metrics it leaves, and erasure from every place voxbus keeps a call."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from nats.js.errors import NotFoundError
from prometheus_client.parser import text_string_to_metric_families
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as seen
from selenium.webdriver.support.ui import WebDriverWait

from voxbus.actors.call.operator import GUIDE_PREFIX
from voxbus.bus import subjects
from voxbus.bus.connection import Bus
from voxbus.cli import main
from voxbus.commands import sip_call
from voxbus.config import load_settings
from voxbus.console.auth import hash_password
from voxbus.console.records import call_record
from voxbus.console.service import console_url_file, records_path
from voxbus.console.store import CallRecords
from voxbus.engines.tts import PiperEngine
from voxbus.media.dialogue import Dialogue, DialogueLine, DialoguePlayer, render_line
from voxbus.media.file_call import FileCall
from voxbus.media.script import CallerScript, Line
from voxbus.media.wav import WavSource
from voxbus.schemas.events import Event, PlayoutDone, TtsRequested
from voxbus.schemas.messages import CallState
from voxbus.supervisors.system import System

from .helpers import heard_while_playing, told, wait_all_serving

pytestmark = pytest.mark.integration
SAY = "An operator is listening in. Please hold the line."
GUIDE = "Offer the caller Friday morning."
PASSWORDS = {"ann": "ann's long secret", "vic": "vic's long secret"}


@pytest.fixture
async def console(test_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[System]:
    users = {
        "ann": {"password_hash": hash_password(PASSWORDS["ann"]), "role": "supervisor"},
        "vic": {"password_hash": hash_password(PASSWORDS["vic"]), "role": "viewer"},
    }
    monkeypatch.setenv("VOXBUS_CONSOLE__ENABLED", "true")
    monkeypatch.setenv("VOXBUS_CONSOLE__USERS", json.dumps(users))
    system = System(load_settings())
    await system.start()
    yield system
    await system.stop()


async def console_url(system: System, client: Bus) -> str:
    await wait_all_serving(client, ("sip", "stt", "llm", "tts", "agent", "console"))
    return console_url_file(system.settings).read_text().strip()


def browser() -> webdriver.Chrome:
    options = Options()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1500"):
        options.add_argument(flag)
    return webdriver.Chrome(
        service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options
    )


def log_in(driver: webdriver.Chrome, url: str, user: str) -> None:
    driver.get(url)
    wait = WebDriverWait(driver, 30)
    wait.until(seen.visibility_of_element_located((By.ID, "login-user"))).send_keys(user)
    driver.find_element(By.ID, "login-password").send_keys(PASSWORDS[user])
    driver.find_element(By.ID, "login-button").click()
    wait.until(seen.visibility_of_element_located((By.ID, "live")))


def act(driver: webdriver.Chrome, action: str, text: str = "") -> str:
    """Click an action button (typing its text first); returns the message the page shows."""
    if text:
        box = driver.find_element(By.ID, f"{action}-text")
        box.clear()
        box.send_keys(text)
    driver.find_element(By.ID, f"act-{action}").click()
    WebDriverWait(driver, 15).until(lambda d: d.find_element(By.ID, "message").text.startswith(action))
    return driver.find_element(By.ID, "message").text


def watch(driver: webdriver.Chrome, url: str) -> None:
    """Log in, see the call appear, its transcript grow, and listen in."""
    log_in(driver, url, "ann")
    # the rows are drawn again at every change of a call's state: a row found may be gone when
    # clicked, so finding and clicking are retried together
    wait = WebDriverWait(
        driver, 60, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)
    )
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#calls tbody tr[data-call]").click() or True)
    wait.until(seen.presence_of_element_located((By.CSS_SELECTOR, "#transcript .line.caller")))
    callers = [c.text for c in driver.find_elements(By.CSS_SELECTOR, "#transcript .line.caller")]
    assert len(set(callers)) == len(callers), callers  # the record and the feed: each line once
    driver.find_element(By.ID, "listen").click()  # both sides of the call, in the browser
    wait.until(lambda d: d.find_element(By.ID, "listen-status").text.startswith("listening"))


def guide_and_say(driver: webdriver.Chrome) -> list[str]:
    return [act(driver, "guide", GUIDE), act(driver, "say", SAY)]


def frames_listened(driver: webdriver.Chrome) -> list[int]:
    """Frames of the caller's and of the agent's side the page has received and played."""
    return driver.execute_script("return window.voxbusListen.frames")


async def test_an_operator_watches_guides_speaks_to_and_hangs_up_a_sip_call(
    console: System, piper: PiperEngine, tmp_path: Path
) -> None:
    settings = console.settings
    client = Bus(console.url, name="test-client", source="test", creds=console.creds("admin"))
    await client.connect(attempts=5)
    url = await console_url(console, client)
    events: list[Event] = []

    async def collect(event: Event, _msg: object) -> None:
        events.append(event)

    await client.subscribe(subjects.ALL_CALL_EVENTS, None, collect)
    # the caller asks once, then stays on the line until someone hangs up
    dialogue = Dialogue(
        lines=[DialogueLine(text="Hello, I would like to move my appointment.")], settle_s=300
    )
    player = DialoguePlayer(dialogue, [render_line(line, piper) for line in dialogue.lines])
    heard_wav = tmp_path / "heard.wav"
    call = asyncio.create_task(sip_call(console.url, settings, player, heard_wav, quiet=True))
    driver = await asyncio.to_thread(browser)
    try:
        await asyncio.to_thread(watch, driver, url)
        # the operator speaks once the caller has said their line (whisper may have cut it in two
        # turns, the first shown as soon as it is final): said over the caller, the sentence would
        # be a barge-in's to stop, and this test is about the operator being heard
        async with asyncio.timeout(60):
            while not player.said_all():
                await asyncio.sleep(0.05)
        messages = await asyncio.to_thread(guide_and_say, driver)
        assert messages == ["guide: done", "say: done"]
        said = await wait_for(events, lambda e: isinstance(e, TtsRequested) and e.text == SAY)
        await wait_for(events, lambda e: isinstance(e, PlayoutDone) and e.gen == said.gen)
        call_id = said.call_id
        caller_frames, agent_frames = await asyncio.to_thread(frames_listened, driver)
        assert caller_frames > 50 and agent_frames > 50  # the supervisor heard the operator's sentence
        async with httpx.AsyncClient(base_url=url) as viewer:  # a viewer may watch, not step in
            assert (await viewer.post("/login", data={"user": "vic", "password": "wrong"})).status_code == 401
            await viewer.post("/login", data={"user": "vic", "password": PASSWORDS["vic"]})
            refused = await viewer.post(f"/api/calls/{call_id}/hangup")
            assert refused.status_code == 403 and "viewer" in refused.json()["error"]
            assert (await viewer.get(f"/api/calls/{call_id}/listen")).status_code == 403
        async with httpx.AsyncClient(base_url=url, cookies={"voxbus_console": "forged"}) as forger:
            assert (await forger.post(f"/api/calls/{call_id}/hangup")).status_code == 401
        await asyncio.to_thread(driver.save_screenshot, str(tmp_path / "console.png"))
        if artifacts := os.environ.get("VOXBUS_TEST_ARTIFACTS"):
            shutil.copy(tmp_path / "console.png", Path(artifacts) / "console.png")
        assert await asyncio.to_thread(act, driver, "hangup") == "hangup: done"
        heard, _, _ = await asyncio.wait_for(call, 30)
    finally:
        await asyncio.to_thread(driver.quit)
    assert heard.hung_up_by == "remote"  # the SIP peer received BYE
    # the caller heard the operator's sentence (the agent's audio of its generation, not silence)
    assert heard.first_tick_ts is not None
    played_s, voiced_s = heard_while_playing(heard_wav, heard.first_tick_ts, events, said.gen)
    assert played_s > 1.0 and voiced_s > 1.0, (played_s, voiced_s)  # the operator's sentence: 2.5 s of voice
    # the guide reached the LLM's prompt and was never spoken
    kv = await client.js.key_value(subjects.CALL_STATE_BUCKET)
    state = CallState.model_validate_json((await kv.get(call_id)).value or b"")
    assert f"{GUIDE_PREFIX} {GUIDE}" in state.context
    assert not [e for e in events if isinstance(e, TtsRequested) and GUIDE_PREFIX in e.text]
    # an action on a call that is not up: a clear answer, nothing sent
    async with httpx.AsyncClient(base_url=url) as ann:
        await ann.post("/login", data={"user": "ann", "password": PASSWORDS["ann"]})
        gone = await ann.post(f"/api/calls/{call_id}/say", json={"text": "hello?"})
        assert gone.status_code == 404 and "is up" in gone.json()["error"]
        metrics = (await ann.get("/metrics")).text
    await client.close()
    # the records: the operator's steps on the transcript, the outcome, the metrics and KPIs
    record = await wait_for_record(settings, call_id)
    steps = [line.text for line in record.transcript if line.speaker == "operator ann"]
    assert steps == [f"guide {GUIDE}", f"say {SAY}", "hangup"] and record.call.operator_actions == 3
    assert any(line.speaker == "caller" for line in record.transcript)
    families = {f.name: f for f in text_string_to_metric_families(metrics)}
    assert families["voxbus_calls"].samples[0].value >= 1
    latency = [s for s in families["voxbus_turn_latency_seconds"].samples if s.name.endswith("_count")]
    assert any(s.value >= 1 for s in latency)


async def wait_for(events: list[Event], match, timeout_s: float = 60.0) -> Event:  # type: ignore[no-untyped-def]
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                found = next((e for e in events if match(e)), None)
                if found is not None:
                    return found
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"not seen within {timeout_s:g} s; the last events:\n{told(events)}") from None


async def wait_for_record(settings, call_id: str, timeout_s: float = 30.0):  # type: ignore[no-untyped-def]
    """The console's record of the call once it has ended (the console writes it as events come)."""
    records = CallRecords(records_path(settings))
    try:
        async with asyncio.timeout(timeout_s):
            while (record := call_record(records, call_id)) is None or not record.call.outcome:
                await asyncio.sleep(0.1)
        return record
    finally:
        records.close()


@pytest.fixture
def brief_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the agent answers does not matter to erasing a call: short answers end its calls sooner
    (requested before ``console``, whose processes read the environment)."""
    monkeypatch.setenv("VOXBUS_AGENT__MAX_TOKENS", "12")


async def test_a_call_is_erased_everywhere_and_retention_erases_old_calls(
    brief_answers: None, console: System, caller, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    settings = console.settings
    client = Bus(console.url, name="test-client", source="test", creds=console.creds("admin"))
    await client.connect(attempts=5)
    await console_url(console, client)
    wav, _ = caller(CallerScript(lines=[Line(text="What time do you open?", pause_before_s=2.0)], tail_s=1.0))
    calls = []
    for _ in range(2):
        call = FileCall(client, WavSource(wav))
        await call.run()
        calls.append(call.call_id)
        await wait_for_record(settings, call.call_id)
    first, second = calls
    recordings = tmp_path / "recordings"  # what the gateway writes with sip.record_dir
    recordings.mkdir()
    for call_id in calls:
        (recordings / f"{call_id}.wav").write_bytes(b"RIFF")
    monkeypatch.setenv("VOXBUS_SIP__RECORD_DIR", str(recordings))
    assert await asyncio.to_thread(main, ["calls", "erase", first]) == 0  # the operator's command
    assert sorted(p.name for p in recordings.iterdir()) == [f"{second}.wav"]
    kv = await client.js.key_value(subjects.CALL_STATE_BUCKET)
    for where in (subjects.call_event(first, "call.started"), subjects.call_event(first, "call.ended")):
        with pytest.raises(NotFoundError):
            await client.js.get_last_msg(subjects.EVENTS_STREAM, where)
    with pytest.raises(Exception):  # noqa: B017 - KeyNotFoundError or KeyDeletedError, both mean gone
        await kv.get(first)
    records = CallRecords(records_path(settings))
    assert call_record(records, first) is None and call_record(records, second) is not None
    await client.js.get_last_msg(subjects.EVENTS_STREAM, subjects.call_event(second, "call.ended"))  # kept
    # retention: everything older than the period goes (here: a period shorter than the call's age)
    from voxbus.console.erase import apply_retention

    assert await apply_retention(client, records, retention_days=1e-9, recordings=recordings) == 1
    assert not list(recordings.iterdir())
    assert call_record(records, second) is None
    with pytest.raises(NotFoundError):
        await client.js.get_last_msg(subjects.EVENTS_STREAM, subjects.call_event(second, "call.ended"))
    records.close()
    await client.close()
