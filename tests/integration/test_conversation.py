"""A spoken conversation through the whole actor system: three questions, three spoken answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voxbus.bus.connection import Bus
from voxbus.config import Settings
from voxbus.engines.models import model_path
from voxbus.engines.stt import WhisperEngine
from voxbus.engines.tts import PiperEngine
from voxbus.media.dialogue import Dialogue, DialogueLine, DialoguePlayer, render_line
from voxbus.media.file_call import FileCall
from voxbus.media.frames import SAMPLE_RATE, to_float
from voxbus.media.vad import WINDOW_MS, SileroStream
from voxbus.media.wav import read_wav
from voxbus.schemas.events import PlayoutStarted, TurnMetrics

from .helpers import cue_at_turn_end, of_call, shares_most_words, stream_events, wait_all_serving

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def short_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short answers, whatever the tiny test model says, to keep the call short (worker processes
    read the environment)."""
    monkeypatch.setenv("VOXBUS_AGENT__MAX_TOKENS", "12")


# the caller asks once the greeting is over, and each next question once the turn before it has
# ended (its answer played to the end, told by TurnMetrics), however long that took
def speech_heard_ms(pcm: bytes) -> int:
    """How much of a 16 kHz PCM segment Silero takes for speech (windows above one half)."""
    probs = SileroStream().push(to_float(pcm))
    return sum(p > 0.5 for p in probs) * WINDOW_MS


THREE_QUESTIONS = Dialogue(
    lines=[
        DialogueLine(text="What is the capital of France?"),
        DialogueLine(text="How many days are there in a week?", when="after_cue"),
        DialogueLine(text="Can you name a colour of the sky?", when="after_cue"),
    ]
)


TURN_STEPS = [
    "stt.final",
    "llm.requested",
    "llm.first_token",
    "tts.requested",
    "tts.first_frame",
    "playout.started",
    "llm.done",
    "playout.done",
    "turn.metrics",
]


async def test_three_questions_get_three_spoken_answers(
    settings: Settings, client: Bus, piper: PiperEngine, tmp_path: Path
) -> None:
    await wait_all_serving(client)
    player = DialoguePlayer(THREE_QUESTIONS, [render_line(line, piper) for line in THREE_QUESTIONS.lines])
    call = FileCall(client, player, on_event=cue_at_turn_end(player))
    result = await call.run()
    spoken = player.timings
    call.save(tmp_path / "reply.wav")

    # three answered turns, each with its stage times
    metrics = [e for e in result.events if isinstance(e, TurnMetrics)]
    assert [m.turn for m in metrics] == [1, 2, 3]
    assert all(m.first_audio_ms and m.first_audio_ms > 0 and not m.interrupted for m in metrics)
    assert all(m.agent_text.strip() for m in metrics)
    # the first turn's words are the first question's, as well as whisper heard them (tiny.en once
    # wrote "France" as "friends" on a fresh clone: not a word-for-word check)
    assert shares_most_words(metrics[0].user_text, THREE_QUESTIONS.lines[0].text)

    # the recording: agent speech after each question, before the next one, and it is speech
    reply = read_wav(tmp_path / "reply.wav")
    whisper = WhisperEngine(model_path(settings, "stt"), settings.stt)
    starts = {e.gen: e.at_ms / 1000 for e in result.events if isinstance(e, PlayoutStarted)}
    for i, m in enumerate(metrics):
        begins = starts[m.gen]
        assert spoken[i].end_s < begins
        if i + 1 < len(spoken):
            assert begins < spoken[i + 1].start_s
        segment = reply[int(begins * SAMPLE_RATE) * 2 : int((begins + 3.0) * SAMPLE_RATE) * 2]
        assert np.abs(np.frombuffer(segment, np.int16)).max() > 1000
        # speech by the VAD, not by whisper's words: a one-word answer ("Blue.") is speech, and
        # tiny.en once wrote a clean answer as "W-W-M-E-R-D-L-O-M-E-R-W-O" (one "word")
        speech_ms = speech_heard_ms(segment)
        text = whisper.transcribe(to_float(segment)).text
        assert speech_ms >= 300, f"turn {m.turn}: {speech_ms} ms of speech in {m.agent_text!r}: {text!r}"
        assert any(ch.isalpha() for ch in text), f"turn {m.turn}: whisper heard no words in {m.agent_text!r}"
    before_first_answer = reply[: int(spoken[0].end_s * SAMPLE_RATE) * 2]
    greeting = whisper.transcribe(to_float(before_first_answer)).text
    assert shares_most_words(greeting, settings.agent.greeting)  # played before the caller spoke

    # the event stream holds every step of every turn, in order, with no gap
    assert client.js is not None
    events = of_call(await stream_events(client.js), call.call_id)
    types = [e.type for _, e in events]
    assert types[0] == "call.started" and types[-1] == "call.ended"
    # each publisher's events are in the stream in its order; steps published by different
    # processes are ordered by cause, which their publish times (ts) show
    for m in metrics:
        steps = {
            e.type: e
            for _, e in events
            if e.type in TURN_STEPS
            and getattr(e, "gen", None) in (m.gen, None)
            and (e.type != "stt.final" or e.text == m.user_text)
        }
        assert set(TURN_STEPS) <= set(steps), f"turn {m.turn} misses {set(TURN_STEPS) - set(steps)}"
        causal = [
            "stt.final",
            "llm.requested",
            "llm.first_token",
            "tts.first_frame",
            "playout.started",
            "playout.done",
            "turn.metrics",
        ]
        times = [steps[step].ts for step in causal]
        assert times == sorted(times), [(step, steps[step].ts) for step in causal]
    seqs = [seq for seq, _ in events]
    assert seqs == sorted(seqs)
