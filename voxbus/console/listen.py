"""Listening in: a live call's audio, both sides, streamed to a supervisor's browser.

The console subscribes to the call's ``audio.in`` (the caller, as the gateway hears them) and
``audio.out`` (the agent, as sent to the caller) only while someone listens, and streams them as
plain HTTP (a response body that never ends until the call does): one record per 20 ms frame,
:data:`RECORD_BYTES` long, a side byte (0: caller, 1: agent) then the frame's PCM16 LE mono
16 kHz samples. No WebSocket library is needed on either side; the page reads the body with
``fetch`` and plays each side on its own schedule with the Web Audio API.

A listener that cannot keep up loses frames (a bounded queue); the call never waits for it.
Only a console whose bus credential was granted audio (``console.listen_in``) can subscribe.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from nats.aio.msg import Msg

from voxbus.bus import subjects
from voxbus.bus.connection import Bus
from voxbus.media.frames import FRAME_BYTES
from voxbus.schemas.messages import AudioFrame

CALLER, AGENT = 0, 1
RECORD_BYTES = 1 + FRAME_BYTES
QUEUE_FRAMES = 250  # 2.5 s of both sides
CHECK_S = 1.0  # how often a quiet stream checks that its call is still up


async def call_audio(bus: Bus, call_id: str, is_up: Callable[[str], bool]) -> AsyncIterator[bytes]:
    """The records of a call's audio from now until it ends (or the listener goes)."""
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=QUEUE_FRAMES)

    def taker(side: int):  # type: ignore[no-untyped-def]
        async def take(frame: AudioFrame, _msg: Msg) -> None:
            if len(frame.pcm) == FRAME_BYTES:
                with contextlib.suppress(asyncio.QueueFull):  # a slow listener loses frames
                    queue.put_nowait(bytes([side]) + frame.pcm)

        return take

    subs = [
        await bus.subscribe(subjects.audio_in(call_id), AudioFrame, taker(CALLER)),
        await bus.subscribe(subjects.audio_out(call_id), AudioFrame, taker(AGENT)),
    ]
    try:
        while is_up(call_id):
            try:
                yield await asyncio.wait_for(queue.get(), CHECK_S)
            except TimeoutError:
                continue
    finally:
        for sub in subs:
            with contextlib.suppress(Exception):  # the connection may be closing
                await sub.unsubscribe()
