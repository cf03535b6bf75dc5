"""A caller's reply is heard after the agent's words: an answer played whole is told to the call's
STT session, whose whisper prompt ends with it (not for words over the agent's audio, nor where
``stt.prompt_agent_words`` is off); an answer cut by the caller is not told."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tests.unit.test_set_words import agent_side
from voxbus.actors.stt_session import CallSession, Turn
from voxbus.actors.transcriber import NO_HINTS, Hints
from voxbus.actors.turn_settings import TurnSettings
from voxbus.config import SttSettings
from voxbus.engines.stt import SAID_MAX_CHARS, Transcript, priming
from voxbus.lexicons import ENGLISH, FRENCH
from voxbus.schemas.events import PlayoutDone
from voxbus.schemas.messages import SttAgentSaid

OFFER = "I have Monday at ten or Wednesday at two. Which would suit you?"


def test_the_agents_words_come_last_in_whispers_prompt() -> None:
    text = priming(SttSettings(prompt="Um, uh."), "en", ["Dr. Patel"], OFFER)
    assert text == f"Um, uh. Dr. Patel. {OFFER}"
    assert priming(SttSettings(prompt="Um, uh."), "en", ["Dr. Patel"]) == "Um, uh. Dr. Patel."


def test_a_long_answer_leaves_its_last_whole_words_in_the_prompt() -> None:
    answer = "Thank you for waiting, I have looked at the calendar for you. " * 8 + OFFER
    text = priming(SttSettings(prompt=""), "en", (), answer)
    assert text.endswith(OFFER) and len(text) <= SAID_MAX_CHARS
    assert answer.split()[-len(text.split()) :] == text.split()  # no word cut in two


class Whisper:
    """Stands in for the transcriber: what whisper was primed with, per transcription."""

    def __init__(self) -> None:
        self.hints: list[Hints] = []

    async def transcribe(
        self, audio: np.ndarray, language: str = "en", hints: Hints = NO_HINTS
    ) -> Transcript:
        self.hints.append(hints)
        return Transcript("Wednesday at two.", 0.1, "en", 0.0)


class Events:
    def emit(self, event: object) -> None: ...


def hints_of_a_turn(over_agent: bool, **stt: object) -> Hints:
    whisper = Whisper()
    session = CallSession(
        Events(),  # type: ignore[arg-type]
        "call-s",
        SttSettings(**stt),  # type: ignore[arg-type]
        TurnSettings(),
        whisper,  # type: ignore[arg-type]
        lambda _cid: None,
    )

    async def run() -> None:
        await session._on_agent_said(SttAgentSaid(call_id="call-s", text=OFFER), None)  # type: ignore[arg-type]
        turn = session.turn = Turn(np.zeros(1600, np.float32), 0)
        turn.over_agent = over_agent
        await session._transcribe(turn, turn.version, np.zeros(8000, np.float32))

    asyncio.run(run())
    [hints] = whisper.hints
    return hints


def test_a_reply_is_transcribed_after_the_agents_words() -> None:
    hints = hints_of_a_turn(over_agent=False)
    assert hints.said == OFFER and hints.cues == ""  # primed with the fillers as usual


def test_words_over_the_agents_audio_are_not() -> None:
    assert hints_of_a_turn(over_agent=True).said == ""  # its echo would read as the caller's


def test_nor_where_the_setting_is_off() -> None:
    assert hints_of_a_turn(over_agent=False, prompt_agent_words=False).said == ""


def test_words_over_the_agents_audio_are_primed_with_the_barge_in_judges_words() -> None:
    cues = hints_of_a_turn(over_agent=True).cues
    assert cues == TurnSettings().lexicon("en").cue_words()
    assert hints_of_a_turn(over_agent=True, over_agent_cues=False).cues == ""


def test_the_cut_in_cues_alone_can_be_written_too() -> None:
    assert ENGLISH.cue_words(backchannels=False) == "Stop. Wait. Hold on. Hang on. Excuse me."


def test_cue_words_are_the_lexicons_backchannels_and_interruptions_as_whisper_writes_them() -> None:
    cues = ENGLISH.cue_words()
    assert "I see." in cues and "Uh huh." in cues and cues.endswith("Hold on. Hang on. Excuse me.")
    assert FRENCH.cue_words().endswith("Excusez-moi.")


def test_cues_take_the_place_of_the_fillers() -> None:
    stt = SttSettings(prompt="Um, uh.")
    assert priming(stt, "en", ["Dr. Patel"], "", "Yeah. Stop.") == "Yeah. Stop. Dr. Patel."


@pytest.mark.parametrize("complete", [True, False])
async def test_an_answer_played_whole_is_told_to_the_stt_session(complete: bool) -> None:
    agent, out = agent_side()
    await agent.say(OFFER)
    said = agent.current
    assert said is not None
    await agent.playout_done(PlayoutDone(call_id="c", gen=said.gen, played_ms=900, complete=complete))
    assert out.told_stt == ([OFFER] if complete else [])  # a cut answer: the caller spoke over it
