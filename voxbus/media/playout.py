"""The playout queue of a call's agent audio: what the gateway (or a file call) plays each 20 ms.

Frames of a generation are played in sequence order; on underrun the line gets silence (never a
stall); a flushed (cancelled) generation's queued and late frames are dropped; a held generation
keeps its frames but plays silence until it is resumed (or flushed) -- the caller may only be
saying "uh-huh". The queue reports,
per generation, when its first frame was played and how much was played in all, so that the call
actor knows what the caller actually heard.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from voxbus.media.frames import FRAME_MS
from voxbus.schemas.events import Event, PlayoutDone, PlayoutHeld, PlayoutResumed, PlayoutStarted
from voxbus.schemas.messages import AudioFrame, CallControl

FLUSHED_MEMORY = 256


@dataclass
class _Playing:
    gen: int
    played: int = 0
    heap: list[tuple[int, bytes, bool]] = field(default_factory=list)


class PlayoutQueue:
    """Thread-safe: the SIP gateway pushes from the event loop and plays from pjmedia's clock
    thread; ``emit`` must be safe to call from either (the gateway hands events to its loop)."""

    def __init__(self, emit: Callable[[Event], None], call_id: str) -> None:
        self.emit, self.call_id = emit, call_id
        self.lock = threading.Lock()
        self.queues: dict[int, _Playing] = {}
        self.order: list[int] = []  # generations in arrival order
        self.flushed: list[int] = []
        self.held: set[int] = set()
        self.dropped = 0
        self.underruns = 0

    def push(self, frame: AudioFrame) -> None:
        with self.lock:
            self._push(frame)

    def _push(self, frame: AudioFrame) -> None:
        gen = frame.gen if frame.gen is not None else 0
        if gen in self.flushed:
            self.dropped += 1
            return
        playing = self.queues.get(gen)
        if playing is None:
            playing = self.queues[gen] = _Playing(gen)
            self.order.append(gen)
        heapq.heappush(playing.heap, (frame.seq, frame.pcm, frame.last))

    def flush(self, gen: int) -> None:
        """Drop everything of ``gen``, now and when late frames arrive."""
        with self.lock:
            self._flush(gen)

    def _flush(self, gen: int) -> None:
        self.flushed = [*self.flushed[-FLUSHED_MEMORY:], gen]
        self.held.discard(gen)
        playing = self.queues.pop(gen, None)
        if playing is None:
            return
        self.order.remove(gen)
        self.dropped += len(playing.heap)
        if playing.played:
            self._done(playing, complete=False)

    def apply(self, command: CallControl) -> bool:
        """Carry out a playout command (flush, hold, resume); False if it is not one."""
        actions = {"flush": self.flush, "hold": self.hold, "resume": self.resume}
        if command.action not in actions or command.gen is None:
            return False
        actions[command.action](command.gen)
        return True

    def hold(self, gen: int) -> None:
        """Play silence instead of ``gen`` (now, or once it arrives) until :meth:`resume`."""
        with self.lock:
            if gen in self.flushed or gen in self.held:
                return
            self.held.add(gen)
            playing = self.queues.get(gen)
            played = playing.played if playing else 0
        self.emit(PlayoutHeld(call_id=self.call_id, gen=gen, played_ms=played * FRAME_MS))

    def resume(self, gen: int) -> None:
        with self.lock:
            if gen not in self.held:
                return
            self.held.discard(gen)
        self.emit(PlayoutResumed(call_id=self.call_id, gen=gen))

    @property
    def idle(self) -> bool:
        return not self.order

    def next(self, frame_index: int) -> bytes | None:
        """The frame to play at call-timeline index ``frame_index``, or None for silence."""
        with self.lock:
            return self._next(frame_index)

    def _next(self, frame_index: int) -> bytes | None:
        if not self.order:
            return None
        playing = self.queues[self.order[0]]
        if playing.gen in self.held:
            return None
        if not playing.heap:
            self.underruns += 1 if playing.played else 0
            return None
        _, pcm, last = heapq.heappop(playing.heap)
        if playing.played == 0:
            self.emit(PlayoutStarted(call_id=self.call_id, gen=playing.gen, at_ms=frame_index * FRAME_MS))
        playing.played += 1
        if last:
            self.queues.pop(playing.gen)
            self.order.pop(0)
            self._done(playing, complete=True)
        return pcm

    def _done(self, playing: _Playing, complete: bool) -> None:
        self.emit(
            PlayoutDone(
                call_id=self.call_id,
                gen=playing.gen,
                played_ms=playing.played * FRAME_MS,
                dropped_frames=len(playing.heap),
                complete=complete,
            )
        )
