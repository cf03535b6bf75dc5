"""One call's session in the STT worker: Silero VAD on every caller frame, and where the caller's
turns end.

At the first pause (``turn.pause_ms`` of silence) whisper's words of the turn so far decide it;
whisper was asked for them already after ``turn.early_ms`` of that silence, so that its time runs
while the pause is still being waited for (if the caller spoke again in between, the pause's own
transcription is asked instead). Words that read finished end the turn at once (``stt.final``);
words that read unfinished ("I'd like to book a table for") keep it open (``stt.tentative``) until
the caller goes on (``speech.resumed``, and the same turn grows) or stays silent for
``turn.unfinished_wait_ms`` (``stt.final`` with the words already transcribed). Partial
transcripts come out while the caller speaks; over the agent's audio, a stretch of speech that
goes on without a pause for ``turn.barge_in_min_speech_ms`` is reported (``speech.lasting``), on
the audio's own clock.

Whisper runs on one worker thread (it uses both cores by itself); the event loop only does VAD and
bookkeeping, so heartbeats and frames keep flowing while a transcription runs.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import numpy as np
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from voxbus.actors.stt_turn import (
    CaptureTimes,
    EarlyHearing,
    Heard,
    Turn,
    echo_floor,
    is_echo,
    stands_clear,
)
from voxbus.actors.transcriber import Hints, Transcriber
from voxbus.actors.turn_settings import TurnSettings
from voxbus.actors.turns import head_resumes, looks_unfinished
from voxbus.bus import subjects
from voxbus.bus.connection import Bus
from voxbus.config import SttSettings
from voxbus.lexicons import Lexicon
from voxbus.logs import get_logger
from voxbus.media.frames import FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE, to_float
from voxbus.media.vad import SileroStream, SpeechGate
from voxbus.schemas.events import (
    CallEnded,
    SpeechEnded,
    SpeechLasting,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    SttFinal,
    SttPartial,
    SttTentative,
)
from voxbus.schemas.messages import (
    VOCABULARY_MAX_WORDS,
    AudioFrame,
    SttAgentSaid,
    SttVocabulary,
)

log = get_logger(__name__)
T = TypeVar("T")

TRAILING_MS = 120  # audio kept after the last speech window: word endings live there
# frames heard this far behind the audio due by now are in flight, not a backlog (a frame's own
# 20 ms, the gateway's batching); past BACKLOG_MAX_S the stream has stalled and words decide anyway
BACKLOG_SLACK_MS = 3 * FRAME_MS
BACKLOG_MAX_S = 1.5
# the fast path resumes the agent over a caller still speaking: only one whose voice stands this far
# above the loudest echo gate of the last second stays heard over it ("Hold on, I only need..."
# said softly was heard as "uh." twice after the agent resumed, and the agent spoke on)
HEAD_CLEAR_DB = 6.0
RECENT_FLOOR_FRAMES = 50


class CallSession:
    """VAD, end of turn and transcription of one call's ``audio.in``."""

    def __init__(
        self,
        bus: Bus,
        call_id: str,
        settings: SttSettings,
        turns: TurnSettings,
        transcriber: Transcriber,
        on_close: callable,  # type: ignore[valid-type]
        language: str = "en",
        vocabulary: tuple[str, ...] = (),
        gate_words: bool = True,
        calls_open: Callable[[], int] = lambda: 1,
    ) -> None:
        self.bus, self.call_id, self.settings, self.turns = bus, call_id, settings, turns
        self.calls_open = calls_open  # calls this worker transcribes now (partials are for few)
        self.vocabulary = vocabulary  # the agent's, then the call's own (SttVocabulary)
        self.agent_vocabulary = vocabulary
        self.agent_said = ""  # the agent's last answer heard whole (SttAgentSaid)
        # 'auto' until the first words: their language is the call's from then on
        self.language = language
        self.lexicon: Lexicon = turns.lexicon(language)
        # the gate keeps the agent's echo from starting a turn; whisper hears the gated frames too
        # only where no canceller removed the echo first (a gate also takes the caller's quiet sounds)
        self.gate_words = gate_words
        self.transcriber = transcriber
        self.on_close = on_close
        self.vad = SileroStream()
        self.gate = SpeechGate(
            settings.vad_start_threshold,
            settings.vad_end_threshold,
            settings.min_speech_ms,
            turns.pause_ms,
            turns.unfinished_wait_ms,
            turns.early_ms,
            lasting_ms=turns.barge_in_min_speech_ms,
        )
        self.next_seq: int | None = None
        self.origin_seq = 0
        self.samples_seen = 0
        self.capture = CaptureTimes()
        self.history = np.zeros(0, dtype=np.float32)  # recent audio, for pre-roll
        self.turn: Turn | None = None
        self.last_partial_ms = 0
        self.recent_floors: deque[float] = deque(maxlen=RECENT_FLOOR_FRAMES)  # of the echo gate
        self.last_frame_at = time.monotonic()
        self.agent_heard_ms: int | None = None  # call time of the last frame the agent was on the line
        self.subs: list[Subscription] = []
        self.hearing = False  # subscribed to the call's audio: frames still come
        self.tasks: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        self.hearing = True
        self.subs.append(
            await self.bus.subscribe(subjects.audio_in(self.call_id), AudioFrame, self._on_frame)
        )
        self.subs.append(
            await self.bus.subscribe(
                subjects.call_event(self.call_id, "call.ended"), CallEnded, self._on_ended
            )
        )
        self.subs.append(
            await self.bus.subscribe(
                subjects.stt_vocabulary(self.call_id), SttVocabulary, self._on_vocabulary
            )
        )
        self.subs.append(
            await self.bus.subscribe(subjects.stt_said(self.call_id), SttAgentSaid, self._on_agent_said)
        )

    async def _on_agent_said(self, said: SttAgentSaid, _msg: Msg) -> None:
        if self.settings.prompt_agent_words:
            self.agent_said = said.text

    def _hints(self, turn: Turn) -> Hints:
        """What whisper is primed with for this turn. Over the agent's audio, the head included:
        the barge-in judge's words (``stt.over_agent_cues``), not the agent's (they would help
        whisper write its echo as the caller's); otherwise the agent's last words, read as the text
        before."""
        if not turn.over_agent:
            return Hints(self.vocabulary, self.agent_said)
        return Hints(self.vocabulary, cues=self.lexicon.cue_words() if self.settings.over_agent_cues else "")

    async def _on_vocabulary(self, update: SttVocabulary, _msg: Msg) -> None:
        words = dict.fromkeys(w.strip() for w in [*self.agent_vocabulary, *update.words] if w.strip())
        self.vocabulary = tuple(words)[:VOCABULARY_MAX_WORDS]
        log.info("stt vocabulary learnt", call_id=self.call_id, words=len(update.words))

    async def close(self) -> None:
        self.hearing = False
        for sub in self.subs:
            await sub.unsubscribe()
        self.subs.clear()
        self.on_close(self.call_id)

    async def _on_ended(self, _event: CallEnded, _msg: Msg) -> None:
        await self.close()

    def now_ms(self) -> int:
        return (self.origin_seq * FRAME_SAMPLES + self.samples_seen) * 1000 // SAMPLE_RATE

    async def _on_frame(self, frame: AudioFrame, _msg: Msg) -> None:
        self.last_frame_at = time.monotonic()
        if self.next_seq is None:
            self.next_seq = self.origin_seq = frame.seq
        if frame.seq < self.next_seq:
            return  # late duplicate
        missing = frame.seq - self.next_seq
        samples = to_float(frame.pcm)
        if missing:
            samples = np.concatenate([np.zeros(missing * FRAME_SAMPLES, np.float32), samples])
        self.next_seq = frame.seq + 1
        self.capture.note(frame.seq, frame.ts)
        if frame.far_db is not None:
            self.agent_heard_ms = self.now_ms() + len(samples) * 1000 // SAMPLE_RATE
        gated, floor_db = samples, echo_floor(frame, self.turns)
        if floor_db is not None:
            self.recent_floors.append(floor_db)
        if floor_db is not None and is_echo(samples[-FRAME_SAMPLES:], floor_db):
            gated = samples.copy()
            gated[-FRAME_SAMPLES:] = 0.0  # no louder than the agent's echo: not the caller
        self._feed(gated if self.gate_words else samples, gated)
        if self.turn is not None and frame.far_db is not None:
            self.turn.over_agent = True

    def _feed(self, samples: np.ndarray, for_vad: np.ndarray | None = None) -> None:
        """``samples`` as whisper will hear them; ``for_vad``: as the VAD hears them (gated)."""
        # enough history to reach pre_roll before an onset that the gate confirms min_speech later
        keep_ms = self.settings.pre_roll_ms + self.settings.min_speech_ms + 2 * 32
        self.history = np.concatenate([self.history, samples])[-keep_ms * SAMPLE_RATE // 1000 :]
        if self.turn is not None:
            self.turn.audio.append(samples)
        self.samples_seen += len(samples)
        for prob in self.vad.push(samples if for_vad is None else for_vad):
            change = self.gate.push(prob)
            if change is None:
                continue
            at_ms = change.at_ms + self.origin_seq * FRAME_MS
            if self.turn is None and change.kind in ("start", "resume"):
                self._speech_started(at_ms)
            elif change.kind in ("start", "resume"):  # the open turn goes on (its words still due)
                self._speech_resumed(at_ms)
            elif change.kind == "early" and self.turn is not None:
                self._hear_early(at_ms)
            elif change.kind == "pause" and self.turn is not None:
                self._speech_paused(at_ms)
            elif change.kind == "end" and self.turn is not None:
                self._silence_over()
            elif change.kind == "lasting" and self.turn is not None and self.turn.over_agent:
                lasted_ms = self.now_ms() - at_ms  # on the audio's clock: no backlog can stretch it
                self.bus.emit(SpeechLasting(call_id=self.call_id, at_ms=at_ms, lasted_ms=lasted_ms))
        if self.turn is not None and self.gate.speaking and not self.gate.paused:
            self._maybe_head()
            self._maybe_partial()

    def _speech_started(self, at_ms: int) -> None:
        start_ms = max(0, at_ms - self.settings.pre_roll_ms)
        history_start_ms = self.now_ms() - len(self.history) * 1000 // SAMPLE_RATE
        skip = max(0, (start_ms - history_start_ms) * SAMPLE_RATE // 1000)
        self.turn = Turn(self.history[skip:].copy(), max(start_ms, history_start_ms))
        self.last_partial_ms = self.now_ms()
        heard = self.agent_heard_ms
        over_agent = heard is not None and heard >= at_ms - self.settings.pre_roll_ms
        at_ts = self.capture.at(at_ms)
        self.bus.emit(SpeechStarted(call_id=self.call_id, at_ms=at_ms, at_ts=at_ts, over_agent=over_agent))

    def _speech_resumed(self, at_ms: int) -> None:
        assert self.turn is not None
        self.turn.version += 1
        self.turn.text = None
        self.last_partial_ms = self.now_ms()
        self.bus.emit(SpeechResumed(call_id=self.call_id, at_ms=at_ms))

    def _speech_paused(self, at_ms: int) -> None:
        turn = self.turn
        assert turn is not None
        turn.pause_ms = at_ms
        self.bus.emit(SpeechPaused(call_id=self.call_id, at_ms=at_ms, at_ts=self.capture.at(at_ms)))
        early, turn.early = turn.early, None
        if early is not None and early.at_ms == at_ms and early.version == turn.version:
            self._spawn(self._decide_early(turn, turn.version, early.heard))  # the same silence
        else:
            self._spawn(self._transcribe(turn, turn.version, self._audio_to(turn, at_ms)))

    def _hear_early(self, at_ms: int) -> None:
        """Ask whisper now for the words of a silence that may become the turn's pause."""
        turn = self.turn
        assert turn is not None
        heard = self._spawn(self._whisper(turn, self._audio_to(turn, at_ms)))
        turn.early = EarlyHearing(at_ms, turn.version, heard)

    @staticmethod
    def _audio_to(turn: Turn, at_ms: int) -> np.ndarray:
        """The turn's audio up to where speech stopped, and the word endings after it."""
        keep = (at_ms + TRAILING_MS - turn.start_ms) * SAMPLE_RATE // 1000
        return np.concatenate(turn.audio)[: max(keep, 0)]

    async def _hear_backlog(self, asked_ms: int, asked_at: float) -> None:
        """Let the VAD hear the audio that came while whisper ran before its words decide. Under
        load those frames wait in the socket while whisper holds both cores, and a caller who went
        on after a short pause would be cut off there: "Stop, | stop. What is..." ended at its
        first pause, misheard as an aside, and the agent spoke on over the rest."""
        due_ms = asked_ms + int((time.monotonic() - asked_at) * 1000) - BACKLOG_SLACK_MS
        give_up = time.monotonic() + BACKLOG_MAX_S
        while self.hearing and self.now_ms() < due_ms and time.monotonic() < give_up:
            await asyncio.sleep(FRAME_MS / 2000)

    def _silence_over(self) -> None:
        turn = self.turn
        assert turn is not None
        turn.silence_over = True
        if turn.text is not None:  # unfinished words, and the caller said no more
            self._end_turn(turn, "unfinished_timeout")

    async def _whisper(self, turn: Turn, audio: np.ndarray) -> Heard:
        hints = self._hints(turn)
        asked_ms, asked_at = self.now_ms(), time.monotonic()
        heard = await self.transcriber.transcribe(audio, self.language, hints)
        return heard, asked_ms, asked_at

    async def _transcribe(self, turn: Turn, version: int, audio: np.ndarray) -> None:
        await self._decide(turn, version, await self._whisper(turn, audio))

    async def _decide_early(self, turn: Turn, version: int, early: asyncio.Task[Heard]) -> None:
        await self._decide(turn, version, await early)

    async def _decide(self, turn: Turn, version: int, hearing: Heard) -> None:
        """Whisper's words end the turn, keep it open, or are stale (the caller went on)."""
        heard, asked_ms, asked_at = hearing
        await self._hear_backlog(asked_ms, asked_at)
        text, compute_s, language = heard.text, heard.compute_s, heard.language
        if turn is not self.turn or version != turn.version:
            return  # the caller went on: a later pause transcribes the whole turn again
        doubt = self.turns.barge_in_max_no_speech
        if text and turn.over_agent and doubt is not None and heard.no_speech > doubt:
            # whisper writes words for a hum or a crackle ("I agree on that."), and over the agent
            # they would interrupt it: words it doubts are speech are taken for the noise they were
            log.info("words over the agent taken for a noise", call_id=self.call_id,
                     no_speech=round(heard.no_speech, 3), words=len(text.split()))  # fmt: skip
            text = ""
        turn.text, turn.compute_s = text, compute_s
        if self.language == "auto" and text and language in self.turns.lexicons:
            self.language, self.lexicon = language, self.turns.lexicon(language)
        if turn.silence_over:
            self._end_turn(turn, "unfinished_timeout")
        elif text and looks_unfinished(text, self.lexicon):
            self.bus.emit(SttTentative(call_id=self.call_id, text=text, compute_s=round(compute_s, 4)))
        else:
            self._end_turn(turn, "complete")

    def _end_turn(self, turn: Turn, reason: str) -> None:
        self.turn = None
        self.bus.emit(
            SpeechEnded(
                call_id=self.call_id,
                at_ms=turn.pause_ms,
                decided_ms=self.now_ms(),
                at_ts=self.capture.at(turn.pause_ms),
            )
        )
        self.bus.emit(
            SttFinal(
                call_id=self.call_id,
                text=turn.text or "",
                start_ms=turn.start_ms,
                end_ms=turn.pause_ms,
                compute_s=round(turn.compute_s, 4),
                end_reason=reason,  # type: ignore[arg-type]
                language=self.language if self.language != "auto" else "",
            )
        )

    def _maybe_head(self) -> None:
        """Over the agent, the first ``stt.head_ms`` of speech heard at once (a partial): the call
        resumes the held agent on a backchannel without waiting for the caller to finish it."""
        turn = self.turn
        assert turn is not None
        head_ms = self.settings.head_ms
        if not head_ms or turn.head_asked or not turn.over_agent or turn.version:
            return
        if self.now_ms() - turn.start_ms - self.settings.pre_roll_ms < head_ms:
            return
        turn.head_asked = True
        if self.transcriber.pending or not self.transcriber.quick(self.language):
            return  # whisper is busy (the words come soon anyway), or too slow for this
        audio = np.concatenate(turn.audio)
        if not stands_clear(audio[-head_ms * SAMPLE_RATE // 1000 :], self.recent_floors, HEAD_CLEAR_DB):
            return  # the agent resumed over this voice would gate it as its echo: judged whole
        self._spawn(self._head(audio, self._hints(turn)))

    async def _head(self, audio: np.ndarray, hints: Hints) -> None:
        """The head's words; if the call actor resumes the agent on them (a backchannel), the
        length of speech over the agent counts anew from here, as from the resume: the agent's own
        echo right after it can keep the VAD voiced ("Mm-hmm." then echo: 1.2 s from the onset)."""
        text = await self._partial(audio, hints)
        if head_resumes(text, self.lexicon):
            self.gate.recount()

    def _maybe_partial(self) -> None:
        now = self.now_ms()
        interval = self.settings.partial_interval_ms
        if not interval or now - self.last_partial_ms < interval:
            return
        if self.transcriber.pending:
            return  # never queue a partial behind other work: finals come first
        assert self.turn is not None
        if self.turn.over_agent:
            return  # the agent's answer is being made and played: its cores are busy, nothing to prefill
        if not self.transcriber.quick(self.language):
            return  # a partial as slow as the interval would keep whisper busy when the turn ends
        if self.calls_open() > self.settings.partials_max_calls:
            return  # whisper every interval for each of several callers would slow every call's turn
        self.last_partial_ms = now
        self._spawn(self._partial(np.concatenate(self.turn.audio), self._hints(self.turn)))

    async def _partial(self, audio: np.ndarray, hints: Hints) -> str:
        text = (await self.transcriber.transcribe(audio, self.language, hints)).text
        if text:
            self.bus.emit(SttPartial(call_id=self.call_id, text=text))
        return text

    def _spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.create_task(coro)
        self.tasks.add(task)  # type: ignore[arg-type]
        task.add_done_callback(self.tasks.discard)  # type: ignore[arg-type]
        return task
