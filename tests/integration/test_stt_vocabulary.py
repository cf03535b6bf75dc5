"""A call's STT session learns the words its caller may say during the call (from the start
tool's answer) and what the agent said last: on a real NATS server, with the real STT worker; no
audio is sent, so whisper is not needed (the session passes them to every transcription)."""

from __future__ import annotations

import numpy as np
import pytest

from voxbus.actors.stt_worker import SttWorker
from voxbus.actors.transcriber import NO_HINTS, Hints
from voxbus.actors.turn_settings import TurnSettings
from voxbus.bus import subjects
from voxbus.bus.connection import Bus
from voxbus.bus.streams import ensure_events_stream
from voxbus.config import SttSettings
from voxbus.engines.stt import Transcript
from voxbus.schemas.base import Accepted
from voxbus.schemas.messages import SttAgentSaid, SttSession, SttVocabulary

from .helpers import until

pytestmark = pytest.mark.integration


class NoAudio:
    pending = 0

    async def transcribe(
        self, audio: np.ndarray, language: str = "en", hints: Hints = NO_HINTS
    ) -> Transcript:
        raise AssertionError("no audio is sent in this test")


async def test_a_session_learns_the_callers_words_after_the_agents_own(nats_url: str) -> None:
    bus = Bus(nats_url, "stt-test", source="stt/stt-t")
    await bus.connect(attempts=3)
    try:
        assert bus.js is not None
        await ensure_events_stream(bus.js)
        worker = SttWorker(bus, "stt-t", SttSettings(), TurnSettings(), NoAudio())  # type: ignore[arg-type]
        await worker.start()
        session = SttSession(call_id="call-v", vocabulary=["Bright Smile", "Dr. Okafor"])
        await bus.request(subjects.STT_SESSIONS, session, Accepted, 5)
        learnt = SttVocabulary(call_id="call-v", words=["Peter Walsh", "Dr. Okafor"])
        await bus.publish(subjects.stt_vocabulary("call-v"), learnt)
        await until(lambda: worker.sessions["call-v"].vocabulary != ("Bright Smile", "Dr. Okafor"))
        assert worker.sessions["call-v"].vocabulary == ("Bright Smile", "Dr. Okafor", "Peter Walsh")
        # a second update replaces the call's words; the agent's stay first
        again = SttVocabulary(call_id="call-v", words=["Ann Lee"])
        await bus.publish(subjects.stt_vocabulary("call-v"), again)
        await until(lambda: "Ann Lee" in worker.sessions["call-v"].vocabulary)
        assert worker.sessions["call-v"].vocabulary == ("Bright Smile", "Dr. Okafor", "Ann Lee")
        # what the agent said last, for the caller's reply to be heard after it
        offer = SttAgentSaid(call_id="call-v", text="I have Monday at ten or Wednesday at two.")
        await bus.publish(subjects.stt_said("call-v"), offer)
        await until(lambda: worker.sessions["call-v"].agent_said == offer.text)
    finally:
        await bus.close()
