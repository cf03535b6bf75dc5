"""Reminder calls over real SIP: voxbus dials baresip, which answers by itself and plays either an
answering machine's greeting and beep, or a person's "Hello?" and a reply. The machine gets the
voicemail after its beep (baresip's own recording of what it heard, transcribed, holds it) and the
agent hangs up; the person is greeted and answered."""

from __future__ import annotations

import asyncio
import functools
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from voxbus.bus import subjects
from voxbus.bus.connection import Bus
from voxbus.bus.embedded import free_port
from voxbus.commands import hang_up
from voxbus.engines.models import model_path
from voxbus.engines.stt import WhisperEngine
from voxbus.engines.tts import EspeakEngine
from voxbus.media.frames import SAMPLE_RATE, resample
from voxbus.media.wav import write_wav
from voxbus.schemas.base import Accepted
from voxbus.schemas.events import AnsweredBy, CallEnded, Event, TtsRequested, TurnMetrics, VoicemailLeft
from voxbus.schemas.messages import DialRequest
from voxbus.supervisors.system import System

from .helpers import udp_port_taken, until, wait_all_serving
from .test_sip_conversation import baresip_port

pytestmark = pytest.mark.integration
VOICEMAIL = "Hello, this is Bright Smile dental. Your cleaning is tomorrow at half past ten. Goodbye."
MACHINE_GREETING = (
    "Hi, you have reached Ann Lee. I can't take your call right now. Please leave a message after the tone."
)
CALLEE_VOICE = "en-gb+f2"  # espeak-ng: not the agent's voice
RATE = 8000  # baresip's aufile plays at the call's own rate


def speech(text: str, settings) -> np.ndarray:  # type: ignore[no-untyped-def]
    pcm = b"".join(EspeakEngine(CALLEE_VOICE, settings.tts).frames(text))
    return resample(np.frombuffer(pcm, np.int16).astype(np.float32) / 32768, SAMPLE_RATE, RATE)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), np.float32)


def beep() -> np.ndarray:
    t = np.arange(int(0.5 * RATE)) / RATE
    return (0.4 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)


def callee_wav(path: Path, parts: list[np.ndarray]) -> Path:
    samples = np.concatenate(parts)
    write_wav(path, (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes(), rate=RATE)
    return path


async def answering_phone(folder: Path, wav: Path) -> AsyncIterator[tuple[int, Path]]:
    """baresip answering every call by itself, playing ``wav`` and recording what it hears."""
    folder.mkdir()
    recordings = folder / "recordings"
    recordings.mkdir()
    port, rtp = baresip_port(), 40000 + free_port() % 10000 // 2 * 2
    (folder / "accounts").write_text(f"<sip:ann@127.0.0.1:{port}>;regint=0;answermode=auto\n")
    (folder / "config").write_text(
        "\n".join(
            [
                "poll_method epoll", f"sip_listen 127.0.0.1:{port}", "net_interface 127.0.0.1",
                "audio_player aufile,/dev/null", f"audio_source aufile,{wav}", "audio_alert aufile,/dev/null",
                "audio_srate 8000", "audio_channels 1", "module_path /usr/lib/baresip/modules",
                "module g711.so", "module aufile.so", "module sndfile.so", "module_app account.so",
                "module_app menu.so", f"snd_path {recordings}", f"rtp_ports {rtp}-{rtp + 40}", "",
            ]
        )
    )  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        "baresip", "-f", str(folder), "-t", "120",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await until(lambda: udp_port_taken(port))  # baresip listens
        yield port, recordings
    finally:
        proc.terminate()
        await proc.wait()


async def dial(client: Bus, port: int, call_id: str, hang_up_once_answered: bool = False) -> list[Event]:
    """Dial the phone and follow the call until it ends (``hang_up_once_answered``: ended by the
    test once an answer has been played, however long it took: the phone's own recording would
    otherwise end the call on a fixed timeline, before a slow machine's answer)."""
    events: list[Event] = []

    async def collect(event: Event, _msg: object) -> None:
        events.append(event)

    await client.subscribe(subjects.call_events(call_id), None, collect)
    request = DialRequest(
        call_id=call_id,
        uri=f"sip:ann@127.0.0.1:{port}",
        context="Remind Ann of her cleaning tomorrow at 10:30.",
        voicemail=VOICEMAIL,
    )
    await client.request(subjects.SIP_DIAL, request, Accepted, 10)
    asked_to_hang_up = False
    async with asyncio.timeout(120):  # a hang guard (baresip quits after 120 s)
        while not any(isinstance(e, CallEnded) for e in events):
            answered = any(isinstance(e, TurnMetrics) and e.first_audio_ms is not None for e in events)
            if hang_up_once_answered and answered and not asked_to_hang_up:
                asked_to_hang_up = True
                await hang_up(client, call_id, after_s=0.5)
            await asyncio.sleep(0.1)
    return events


def recording_closed(recordings: Path) -> bool:
    """baresip's recording of the call is complete: libsndfile writes the WAV header's length when
    it closes the file, so a length above zero means it is closed."""
    for path in recordings.glob("*-dec.wav"):
        try:
            with wave.open(str(path)) as w:
                return w.getnframes() > 0
        except (wave.Error, EOFError):
            return False
    return False


def heard_by_the_phone(recordings: Path, settings) -> str:  # type: ignore[no-untyped-def]
    decoded = [p for p in recordings.iterdir() if p.name.endswith("-dec.wav")]
    assert decoded, f"baresip recorded nothing: {sorted(recordings.iterdir())}"
    with wave.open(str(decoded[0])) as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768
    whisper = WhisperEngine(model_path(settings, "stt"), settings.stt)
    text = whisper.transcribe(resample(pcm, rate, SAMPLE_RATE)).text.lower()
    return "".join(c for c in text if c.isalpha() or c.isspace())


async def test_an_answering_machine_gets_the_voicemail_after_its_beep(
    system: System, client: Bus, tmp_path: Path
) -> None:
    settings = system.settings
    await wait_all_serving(client)
    greeting = speech(MACHINE_GREETING, settings)
    wav = callee_wav(tmp_path / "machine.wav", [silence(0.5), greeting, silence(0.6), beep(), silence(25)])
    async for port, recordings in answering_phone(tmp_path / "phone", wav):
        events = await dial(client, port, "sip-out-machine")
        verdict = next(e for e in events if isinstance(e, AnsweredBy))
        assert verdict.answered_by == "machine", verdict
        assert [e.text for e in events if isinstance(e, TtsRequested)] == [VOICEMAIL]  # nothing else said
        assert any(isinstance(e, VoicemailLeft) for e in events)
        ended = next(e for e in events if isinstance(e, CallEnded))
        assert ended.hangup_by == "agent"
        await until(functools.partial(recording_closed, recordings))
        words = heard_by_the_phone(recordings, settings).split()
        assert len({"bright", "smile", "dental", "cleaning", "tomorrow", "goodbye"} & set(words)) >= 2, words


async def test_a_person_is_greeted_and_answered(system: System, client: Bus, tmp_path: Path) -> None:
    settings = system.settings
    await wait_all_serving(client)
    parts = [
        silence(0.5),
        speech("Hello?", settings),
        silence(6.0),
        speech("Yes, I will be there.", settings),
    ]
    # the phone stays on the line until the test hangs up (its recording ending would end the call)
    wav = callee_wav(tmp_path / "person.wav", [*parts, silence(100)])
    async for port, _recordings in answering_phone(tmp_path / "phone", wav):
        events = await dial(client, port, "sip-out-person", hang_up_once_answered=True)
        verdict = next(e for e in events if isinstance(e, AnsweredBy))
        assert verdict.answered_by == "human", verdict
        said = [e.text for e in events if isinstance(e, TtsRequested)]
        assert said and said[0] == settings.agent.greeting and VOICEMAIL not in said
        answered = [e for e in events if isinstance(e, TurnMetrics) and e.first_audio_ms is not None]
        assert answered and all("hello" not in m.user_text.lower() for m in answered), answered
