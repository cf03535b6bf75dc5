"""Spoken conversations over real SIP calls: the project's own pjsua2 caller and baresip."""

from __future__ import annotations

import asyncio
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest

from voxbus.bus import subjects
from voxbus.bus.connection import Bus
from voxbus.config import Settings
from voxbus.engines.models import model_path
from voxbus.engines.stt import WhisperEngine
from voxbus.media.frames import SAMPLE_RATE, resample, to_float
from voxbus.media.script import CallerScript, Line
from voxbus.media.wav import WavSource, read_wav, write_wav
from voxbus.schemas.events import CallEnded, CallStarted, TurnMetrics
from voxbus.schemas.messages import SttAgentSaid
from voxbus.supervisors.system import System

from .helpers import shares_most_words, until, wait_all_serving
from .test_sip import collect

pytestmark = pytest.mark.integration
QUESTION = CallerScript(lines=[Line(text="What is the capital of France?", pause_before_s=3.0)], tail_s=0.5)


def baresip_port() -> int:
    """A port for baresip's SIP: it listens on UDP and TCP there and for TLS on the next port
    (baresip 1.0 ignores ``sip_transports``), so that one must be free as well: a taken one made
    baresip exit at start ("SIP/TLS transport failed: Address already in use") and the call never
    came."""
    import socket

    from voxbus.bus.embedded import free_port

    while True:
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tls:
            try:
                tls.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port


def speech_after(pcm: np.ndarray, rate: int, start_s: float, whisper: WhisperEngine) -> str:
    """Transcription of what was heard after ``start_s`` (the agent's answer)."""
    tail = pcm[int(start_s * rate) :].astype(np.float32) / 32768.0
    text = whisper.transcribe(resample(tail, rate, SAMPLE_RATE) if rate != SAMPLE_RATE else tail).text
    return text


async def test_own_sip_caller_hears_a_spoken_answer(
    settings: Settings, system: System, client: Bus, caller, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from voxbus.commands import sip_call
    from voxbus.sip.caller import WavVoice

    await wait_all_serving(client)
    told: list[SttAgentSaid] = []  # the agent's words the STT session hears the caller after

    async def keep(said: SttAgentSaid, _msg: object) -> None:
        told.append(said)

    await client.subscribe(subjects.stt_said("*"), SttAgentSaid, keep)
    wav, spoken = caller(QUESTION)
    # the call ends once the answer has been played, however long it took to come: the caller's
    # patience after the question (4 s by default) is only a hang guard here
    voice = WavVoice(WavSource(wav).frames, settle_s=120.0)
    heard, metrics, _ = await sip_call(system.url, settings, voice, tmp_path / "heard.wav", end_after_turn=1)
    # the greeting, played whole before the question, was told to the call's STT session
    assert settings.agent.greeting in [said.text for said in told]
    assert heard.confirmed and heard.hung_up_by == "remote"
    assert len(metrics) == 1 and shares_most_words(str(metrics[0]["user_text"]), QUESTION.lines[0].text)
    onset = heard.onsets_after([spoken[0].end_s])[0]
    assert onset is not None and onset > spoken[0].end_s
    pcm = np.frombuffer(heard.heard.pcm(), np.int16)
    whisper = WhisperEngine(model_path(settings, "stt"), settings.stt)
    assert len(speech_after(pcm, SAMPLE_RATE, spoken[0].end_s, whisper).split()) >= 2
    greeting = to_float(heard.heard.pcm()[: int(spoken[0].start_s * SAMPLE_RATE) * 2])
    assert shares_most_words(whisper.transcribe(greeting).text, settings.agent.greeting)


@pytest.mark.skipif(shutil.which("baresip") is None, reason="baresip: make sip-peers")
async def test_baresip_caller_hears_a_spoken_answer(
    settings: Settings, system: System, client: Bus, caller, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from voxbus.bus.embedded import free_port
    from voxbus.commands import hang_up

    await wait_all_serving(client)
    wav16k, spoken = caller(QUESTION)
    # baresip's aufile wants the call's own rate, and ends the call when the file ends: the
    # caller stays silent on the line for a minute after the question (a hang guard), and the
    # test hangs up from voxbus's side once the answer has been played, however long it took
    wav = tmp_path / "question-8k.wav"
    samples = resample(to_float(read_wav(wav16k)), SAMPLE_RATE, 8000)
    samples = np.concatenate([samples, np.zeros(60 * 8000, np.float32)])
    write_wav(wav, (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes(), rate=8000)
    conf, recordings = tmp_path / "baresip", tmp_path / "recordings"
    conf.mkdir()
    recordings.mkdir()
    port, rtp = baresip_port(), 40000 + free_port() % 10000 // 2 * 2
    (conf / "accounts").write_text(f"<sip:caller@127.0.0.1:{port}>;regint=0\n")
    (conf / "config").write_text(
        "\n".join(
            [
                "poll_method epoll",
                f"sip_listen 127.0.0.1:{port}",
                "net_interface 127.0.0.1",
                "audio_player aufile,/dev/null",
                f"audio_source aufile,{wav}",
                "audio_alert aufile,/dev/null",
                "audio_srate 8000",
                "audio_channels 1",
                "module_path /usr/lib/baresip/modules",
                "module g711.so",
                "module aufile.so",
                "module sndfile.so",
                "module_app account.so",
                "module_app menu.so",
                f"snd_path {recordings}",
                f"rtp_ports {rtp}-{rtp + 40}",
                "",
            ]
        )
    )
    seen = await collect(client, subjects.ALL_CALL_EVENTS)
    # baresip's own timer (-t) is only a safety net, long after its file ends: the two must not
    # race to end the call
    safety_s = int(spoken[0].end_s + 90)
    proc = await asyncio.create_subprocess_exec(
        "baresip",
        "-f",
        str(conf),
        "-e",
        f"/dial sip:voxbus@127.0.0.1:{settings.sip.port}",
        "-t",
        str(safety_s),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    baresip = asyncio.create_task(proc.communicate())
    answered = asyncio.create_task(until(lambda: any(isinstance(e, TurnMetrics) for e in seen), safety_s))
    await asyncio.wait([baresip, answered], return_when=asyncio.FIRST_COMPLETED)
    if answered.done() and answered.exception() is None:
        await hang_up(client, next(e.call_id for e in seen if isinstance(e, CallStarted)), after_s=0.5)
    answered.cancel()
    call_ended = asyncio.create_task(
        until(lambda: any(isinstance(e, CallEnded) for e in seen), safety_s + 15)
    )
    await asyncio.wait([baresip, call_ended], return_when=asyncio.FIRST_COMPLETED)
    if not baresip.done():
        proc.terminate()  # the call is over: baresip has nothing left to do
    out, _ = await asyncio.wait_for(baresip, 15)
    try:
        await asyncio.wait_for(call_ended, 15)  # if baresip exited first, its BYE is on its way
    except (AssertionError, TimeoutError):
        pytest.fail(f"no call.ended; baresip said: {out.decode()[-2000:]}")

    assert any(isinstance(e, CallStarted) and e.transport == "sip" for e in seen), out.decode()
    turns = [e for e in seen if isinstance(e, TurnMetrics)]
    assert turns and shares_most_words(turns[0].user_text, QUESTION.lines[0].text)
    decoded = [p for p in recordings.iterdir() if p.name.endswith("-dec.wav")]
    assert decoded, f"baresip recorded nothing: {sorted(recordings.iterdir())}"
    with wave.open(str(decoded[0])) as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16)
    whisper = WhisperEngine(model_path(settings, "stt"), settings.stt)
    answer = speech_after(pcm, rate, spoken[0].end_s, whisper)
    loud = np.flatnonzero(np.abs(pcm[: len(pcm) // 160 * 160].reshape(-1, 160)).max(axis=1) > 500)
    assert len(answer.split()) >= 2, (
        f"not speech: {answer!r}; {len(pcm) / rate:.1f} s recorded, loud at {sorted(set(loud // 50))} s"
    )
