"""The terminal console in tmux against a real system: a live call appears, a guide note and a
hang-up reach the call's actor from the keyboard."""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from voxbus.bus.connection import Bus
from voxbus.media.file_call import FileCall
from voxbus.media.script import CallerScript, Line
from voxbus.media.wav import WavSource
from voxbus.schemas.events import CallEnded, OperatorActed, TtsRequested
from voxbus.supervisors.system import System

from .helpers import wait_all_serving

pytestmark = pytest.mark.integration


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


async def screen_shows(session: str, text: str, timeout_s: float = 60.0) -> str:
    screen = ""
    try:
        async with asyncio.timeout(timeout_s):
            while text not in (screen := tmux("capture-pane", "-p", "-t", session)):
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(f"{text!r} not shown within {timeout_s:g} s; the screen:\n{screen}") from None
    return screen


async def test_the_terminal_console_shows_a_live_call_and_steps_in(
    system: System, client: Bus, caller, test_env: dict[str, str], tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    await wait_all_serving(client)
    script = CallerScript(lines=[Line(text="Hello, I have a question.", pause_before_s=2.0)], tail_s=120.0)
    wav, _ = caller(script)
    call = FileCall(client, WavSource(wav))
    running = asyncio.create_task(call.run())
    session = f"voxbus-test-{os.getpid()}"
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in test_env.items())
    command = (
        f"env {env} TERM=xterm-256color {shlex.quote(sys.executable)} -m voxbus --nats-url {system.url} "
        f"--nats-creds {system.creds('admin')} console --operator tess"
    )
    # the console is opened once the greeting has been said: it shows it from the call's history
    async with asyncio.timeout(60):
        while not (said := [e for e in call.result.events if isinstance(e, TtsRequested)]):
            await asyncio.sleep(0.1)
    greeting = said[0].text[:30]
    tmux("new-session", "-d", "-s", session, "-x", "200", "-y", "50", command)
    try:
        await screen_shows(session, call.call_id)  # the live call appears
        await screen_shows(session, f"agent   {greeting}")  # with what was said before it opened
        # as an operator does: the hotkey, the note once its box is open, Enter once it is typed
        # (keys that arrive in one read are tests/unit/test_terminal_keys.py's)
        tmux("send-keys", "-t", session, "g")
        await screen_shows(session, "a note for the agent only")
        tmux("send-keys", "-t", session, "-l", "Offer Friday morning.")
        await screen_shows(session, "Offer Friday morning.")
        tmux("send-keys", "-t", session, "Enter")
        await screen_shows(session, "guide: done")
        tmux("send-keys", "-t", session, "h")
        await asyncio.wait_for(running, 30)  # the hang-up ended the call
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)
        running.cancel()
    acted = [(e.operator, e.action, e.ok) for e in call.result.events if isinstance(e, OperatorActed)]
    assert acted == [("tess", "guide", True), ("tess", "hangup", True)], acted
    assert any(isinstance(e, CallEnded) for e in call.result.events)
