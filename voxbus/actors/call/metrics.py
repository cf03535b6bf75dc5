"""Turn metrics: when each stage of an answer happened, and the ``turn.metrics`` event built from it.

A :class:`Timeline` records the marks of one generation as its events arrive (each kept once: a
retry or a second clause does not move the first mark); :func:`turn_metrics` turns them into the
stages of perceived latency, measured from the moment the caller stopped speaking.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from voxbus.schemas.events import TurnMetrics

if TYPE_CHECKING:
    from voxbus.actors.call.generation import Generation


@dataclass
class Timeline:
    marks: dict[str, float] = field(default_factory=dict)  # stage -> epoch s
    compute: dict[str, float] = field(default_factory=dict)  # engine -> seconds of compute
    bus_s: float = 0.0  # time spent on the bus between the workers and the call actor

    def reached(self, mark: str, at: float, received: float) -> None:
        """A worker's event says ``mark`` happened at ``at``; it arrived here at ``received``."""
        self.marks.setdefault(mark, at)
        self.bus_s += max(received - at, 0.0)

    def computed(self, engine: str, seconds: float) -> None:
        self.compute.setdefault(engine, seconds)


def turn_metrics(call_id: str, generation: Generation, interrupted: bool) -> TurnMetrics:
    timeline = generation.timeline
    base = generation.speech_end_ts

    def since_end(mark: str) -> float | None:
        at = timeline.marks.get(mark)
        return None if at is None or base is None else round((at - base) * 1000, 1)

    first_audio = since_end("first_audio")
    vad = since_end("vad_decision")
    # engine time on the critical path: whisper on the final, LLM prefill, LLM decoding of the
    # first clause, piper on the first clause; what remains is bus hops, queues and clocks
    token, clause = timeline.marks.get("llm_first_token"), timeline.marks.get("first_clause")
    decode_s = clause - token if token is not None and clause is not None else 0.0
    compute_ms = (sum(timeline.compute.values()) + max(decode_s, 0.0)) * 1000
    # a speculative answer did its thinking before the turn ended: no critical path to split
    known = first_audio is not None and vad is not None and not generation.held_back
    overhead = round(first_audio - vad - compute_ms, 1) if known else None  # type: ignore[operator]
    return TurnMetrics(
        call_id=call_id,
        turn=generation.turn,
        gen=generation.gen,
        user_text=generation.user_text,
        agent_text=generation.text,
        vad_decision_ms=vad,
        stt_final_ms=since_end("stt_final"),
        llm_first_token_ms=since_end("llm_first_token"),
        first_clause_ms=since_end("first_clause"),
        tts_first_frame_ms=since_end("tts_first_frame"),
        first_audio_ms=first_audio,
        stt_compute_ms=_ms(timeline.compute.get("stt")),
        llm_compute_ms=_ms(timeline.compute.get("llm")),
        tts_compute_ms=_ms(timeline.compute.get("tts")),
        orchestration_ms=overhead,
        interrupted=interrupted,
        retries=generation.llm.attempt - 1,
        turn_end=generation.turn_end,
        speculative=generation.held_back,
        early_opener=generation.opener_chars > 0,
        early_hold=generation.early_hold,
        bus_ms=round(timeline.bus_s * 1000, 1),
    )


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)
