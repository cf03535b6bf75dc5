"""The TTS worker: speaks clauses and publishes 20 ms frames on ``voxbus.call.<id>.audio.out``.

The first clause of a generation arrives through the ``voxbus.tts.speak`` queue group; the rest
come to this worker's own subject, so that one voice speaks a generation's clauses in order. Frames
carry the generation id and their index within the generation; the last frame of the generation's
last clause has ``last=True``. A cancel stops synthesis between chunks and frames.

Each voice keeps its short clauses and the agents' holding phrases once said
(voxbus.engines.voice_cache); when the worker starts, it speaks the agents' greetings into that
memory, one at a time and only while no caller waits, so that no call waits for its greeting.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from nats.aio.msg import Msg

from voxbus.actors.clauses import speakable
from voxbus.actors.spoken import spoken_dates
from voxbus.bus import subjects
from voxbus.bus.codec import encode
from voxbus.bus.connection import Bus
from voxbus.engines.voice_cache import CachedVoice
from voxbus.logs import get_logger
from voxbus.media.frames import SILENCE
from voxbus.profiles import Profiles
from voxbus.schemas.base import Accepted
from voxbus.schemas.events import ErrorEvent, TtsClauseDone, TtsDone, TtsFirstFrame
from voxbus.schemas.messages import AudioFrame, Cancel, TtsRequest

log = get_logger(__name__)


@dataclass
class GenerationAudio:
    frames: int = 0
    first_sent: bool = False


def agents_phrases(profiles: Profiles, holding: bool) -> dict[str, list[str]]:
    """What each language's voice says on many calls, as it reaches TTS: the agents' greetings
    (every call hears one; learnt when the worker starts), or with ``holding`` their holding
    phrases (kept once first said, whatever their length). Short answers' openers ("Sure,") are
    kept as they are first spoken: learning phrases at start takes the CPU from the first calls."""
    phrases: dict[str, list[str]] = {}
    for agent in [profiles.base, *profiles.agents.values()]:
        language = agent.language if agent.language != "auto" else "en"
        said = [agent.tool_holding_phrase, agent.transfer_holding_phrase] if holding else [agent.greeting]
        phrases.setdefault(language, []).extend(spoken_dates(speakable(text), language) for text in said)
    return {language: list(dict.fromkeys(p for p in said if p)) for language, said in phrases.items()}


class TtsWorker:
    def __init__(
        self,
        bus: Bus,
        worker_id: str,
        voices: dict[str, CachedVoice],
        learn: dict[str, list[str]] | None = None,
    ) -> None:
        """``voices``: one per language the calls may be in; "en" is required. ``learn``: phrases
        to speak into each voice's memory at start (see :func:`agents_phrases`)."""
        self.bus, self.worker_id, self.voices = bus, worker_id, voices
        self.learn = {lang: phrases for lang, phrases in (learn or {}).items() if lang in voices}
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="piper")
        self.queue: asyncio.Queue[tuple[TtsRequest, float]] = asyncio.Queue()
        self.generations: dict[tuple[str, int], GenerationAudio] = {}
        self.cancelled: dict[tuple[str, int], str] = {}
        self.idle = asyncio.Event()  # no request waiting or being spoken
        self.idle.set()

    async def start(self) -> None:
        await self.bus.subscribe(subjects.TTS_SPEAK, TtsRequest, self._on_request, queue="tts")
        await self.bus.subscribe(subjects.tts_worker(self.worker_id), TtsRequest, self._on_request)
        await self.bus.subscribe(subjects.cancel("*"), Cancel, self._on_cancel)
        asyncio.create_task(self._serve())
        asyncio.create_task(self._learn())

    async def _learn(self) -> None:
        """One phrase at a time, each only while no request waits: a caller is never kept waiting
        for more than the phrase under way."""
        loop = asyncio.get_running_loop()
        for language, phrases in self.learn.items():
            for phrase in phrases:
                await self.idle.wait()
                try:
                    await loop.run_in_executor(self.pool, self.voices[language].learn, [phrase])
                except Exception as exc:  # a phrase the voice cannot say is said (and fails) live
                    log.warning(
                        "could not learn a phrase", phrase=phrase, reason=f"{type(exc).__name__}: {exc}"
                    )
        log.info("phrases learnt", voices={lang: len(voice) for lang, voice in self.voices.items()})

    def session_ids(self) -> list[str]:
        return sorted({call_id for call_id, _ in self.generations})

    async def _on_request(self, request: TtsRequest, msg: Msg) -> None:
        subjects.check_call_id(request.call_id)
        if msg.reply:
            await msg.respond(encode(Accepted(worker_id=self.worker_id, role="tts")))
        self.idle.clear()
        self.queue.put_nowait((request, time.perf_counter()))

    async def _on_cancel(self, cancel: Cancel, _msg: Msg) -> None:
        if cancel.requests_below is not None:
            return  # the LLM was asked again: what was said so far still plays
        key = (cancel.call_id, cancel.gen)
        self.cancelled[key] = cancel.reason
        while len(self.cancelled) > 1024:
            self.cancelled.pop(next(iter(self.cancelled)))
        if key in self.generations:
            self._finish(cancel.call_id, cancel.gen, cancelled=True)

    async def _serve(self) -> None:
        while True:
            request, received = await self.queue.get()
            try:
                await self._speak(request, received)
            except Exception:
                log.exception("synthesis failed", call_id=request.call_id, gen=request.gen)
                self._finish(request.call_id, request.gen, cancelled=True)
            finally:
                if self.queue.empty():
                    self.idle.set()

    def _voice(self, request: TtsRequest) -> CachedVoice:
        voice = self.voices.get(request.language)
        if voice is None:  # the configuration names the languages in use: a foreign request
            log.warning("no voice for the language: English speaks", language=request.language)
            self.bus.emit(
                ErrorEvent(
                    call_id=request.call_id,
                    code="no_voice",
                    message=f"no voice for language {request.language!r} (tts.voices): English speaks",
                )
            )
            return self.voices["en"]
        return voice

    async def _speak(self, request: TtsRequest, received: float) -> None:
        key = (request.call_id, request.gen)
        if key in self.cancelled:
            return
        audio = self.generations.setdefault(key, GenerationAudio())
        frames_before = audio.frames
        loop = asyncio.get_running_loop()
        frames: asyncio.Queue[bytes | None] = asyncio.Queue()
        stop = threading.Event()
        voice = self._voice(request)

        def produce() -> None:
            try:
                for pcm in voice.frames(request.text, lambda: stop.is_set() or key in self.cancelled):
                    loop.call_soon_threadsafe(frames.put_nowait, pcm)
            finally:
                loop.call_soon_threadsafe(frames.put_nowait, None)

        future = loop.run_in_executor(self.pool, produce) if request.text.strip() else None
        if future is None:
            frames.put_nowait(None)
        subject = subjects.audio_out(request.call_id)
        held: bytes | None = None  # one frame of look-ahead, to mark the very last one
        try:
            while (pcm := await frames.get()) is not None:
                if key in self.cancelled:
                    break
                if held is not None:
                    await self._send(subject, request, audio, held, False, received)
                held = pcm
        finally:
            stop.set()
            if future is not None:
                await future
        if key in self.cancelled:
            return
        if request.last:
            await self._send(subject, request, audio, held or SILENCE, True, received)
        elif held is not None:
            await self._send(subject, request, audio, held, False, received)
        self.bus.emit(
            TtsClauseDone(
                call_id=request.call_id,
                gen=request.gen,
                turn=request.turn,
                index=request.index,
                frames=audio.frames - frames_before,
            )
        )
        if request.last:
            self._finish(request.call_id, request.gen, cancelled=False)

    async def _send(
        self,
        subject: str,
        request: TtsRequest,
        audio: GenerationAudio,
        pcm: bytes,
        last: bool,
        received: float,
    ) -> None:
        first = None
        if not audio.first_sent:  # stamped before the frame leaves, so it precedes its playout
            audio.first_sent = True
            first = TtsFirstFrame(
                call_id=request.call_id,
                gen=request.gen,
                turn=request.turn,
                index=request.index,
                latency_s=round(time.perf_counter() - received, 4),
            )
        await self.bus.publish_audio(
            subject,
            AudioFrame(call_id=request.call_id, seq=audio.frames, pcm=pcm, gen=request.gen, last=last),
        )
        audio.frames += 1
        if first is not None:
            self.bus.emit(first)

    def _finish(self, call_id: str, gen: int, cancelled: bool) -> None:
        audio = self.generations.pop((call_id, gen), None)
        if audio is not None:
            self.bus.emit(TtsDone(call_id=call_id, gen=gen, frames=audio.frames, cancelled=cancelled))
