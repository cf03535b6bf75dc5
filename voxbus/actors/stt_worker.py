"""The STT worker: takes calls from the ``voxbus.stt.sessions`` queue group and runs a
:class:`~voxbus.actors.stt_session.CallSession` for each (VAD, end of turn, transcription), all
sharing one whisper thread; a session whose audio stops coming is closed."""

from __future__ import annotations

import asyncio
import time

from nats.aio.msg import Msg

from voxbus.actors.stt_session import CallSession
from voxbus.actors.transcriber import Transcriber
from voxbus.actors.turn_settings import TurnSettings
from voxbus.bus import subjects
from voxbus.bus.codec import encode
from voxbus.bus.connection import Bus
from voxbus.config import SttSettings
from voxbus.logs import get_logger
from voxbus.schemas.base import Accepted
from voxbus.schemas.messages import SttSession

log = get_logger(__name__)

SESSION_IDLE_S = 120.0


class SttWorker:
    def __init__(
        self,
        bus: Bus,
        worker_id: str,
        settings: SttSettings,
        turns: TurnSettings,
        transcriber: Transcriber,
        gate_words: bool = True,
    ) -> None:
        self.bus, self.worker_id, self.settings, self.turns = bus, worker_id, settings, turns
        self.transcriber = transcriber
        self.gate_words = gate_words  # see Settings.echo_gate_words
        self.sessions: dict[str, CallSession] = {}

    async def start(self) -> None:
        await self.bus.subscribe(subjects.STT_SESSIONS, SttSession, self._on_session, queue="stt")
        asyncio.create_task(self._reap_idle())

    def session_ids(self) -> list[str]:
        return list(self.sessions)

    async def _on_session(self, request: SttSession, msg: Msg) -> None:
        subjects.check_call_id(request.call_id)
        if request.call_id not in self.sessions:
            session = CallSession(
                self.bus,
                request.call_id,
                self.settings,
                self.turns,
                self.transcriber,
                lambda cid: self.sessions.pop(cid, None),
                request.language,
                tuple(request.vocabulary),
                self.gate_words,
                lambda: len(self.sessions),
            )
            await session.open()
            self.sessions[request.call_id] = session
            log.info("stt session opened", call_id=request.call_id)
        if msg.reply:
            await msg.respond(encode(Accepted(worker_id=self.worker_id, role="stt")))

    async def _reap_idle(self) -> None:
        while True:
            await asyncio.sleep(10)
            now = time.monotonic()
            for session in list(self.sessions.values()):
                if now - session.last_frame_at > SESSION_IDLE_S:
                    log.info("stt session idle, closing", call_id=session.call_id)
                    await session.close()
