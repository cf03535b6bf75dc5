"""The LLM worker: takes generations from the ``voxbus.llm.generate`` queue group and streams
token chunks on ``voxbus.call.<id>.llm``.

llama.cpp runs on its own thread; the loop stays free for cancels and heartbeats. The worker
serves as many generations at once as its engine decodes together (``llm.parallel``), one at a
time otherwise. A cancel for a
generation (``voxbus.call.<id>.cancel``) is checked between tokens, so generation stops within one
token. Requests are idempotent by (call, generation): a retried request continues after the text
the call actor already received (``continue_from``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from nats.aio.msg import Msg

from voxbus.bus import subjects
from voxbus.bus.codec import encode
from voxbus.bus.connection import Bus
from voxbus.engines.llm_fallback import FallbackLlmEngine, LlmEngine
from voxbus.logs import get_logger
from voxbus.schemas.base import Accepted
from voxbus.schemas.events import LlmCancelled, LlmDone, LlmFallback, LlmFirstToken
from voxbus.schemas.messages import Cancel, ChatMessage, LlmChunk, LlmRequest

log = get_logger(__name__)
CANCEL_MEMORY = 1024


class LlmWorker:
    def __init__(
        self,
        bus: Bus,
        worker_id: str,
        engine: LlmEngine,
        opening: list[ChatMessage] | None = None,
        tools: list[dict[str, Any]] | None = None,
    ) -> None:
        self.bus, self.worker_id, self.engine = bus, worker_id, engine
        self.opening = opening or []
        self.tools = tools  # offered with the opening: the warmed prefix includes them
        self.parallel: int = getattr(engine, "parallel", 1)
        self.pool = ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="llama")
        self.queue: asyncio.Queue[tuple[LlmRequest, float]] = asyncio.Queue()  # with its arrival
        self.cancelled: dict[tuple[str, int], str] = {}
        self.active: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()  # the loop keeps only weak references

    async def start(self) -> None:
        if self.opening:  # every call starts with it: have it evaluated before the first call
            await asyncio.get_running_loop().run_in_executor(
                self.pool, self.engine.warm, self.opening, self.tools
            )
        await self.bus.subscribe(subjects.LLM_GENERATE, LlmRequest, self._on_request, queue="llm")
        await self.bus.subscribe(subjects.cancel("*"), Cancel, self._on_cancel)
        asyncio.create_task(self._serve())

    def session_ids(self) -> list[str]:
        return sorted(self.active)

    async def _on_request(self, request: LlmRequest, msg: Msg) -> None:
        subjects.check_call_id(request.call_id)
        if msg.reply and not request.warm_only:
            await msg.respond(encode(Accepted(worker_id=self.worker_id, role="llm")))
        self.queue.put_nowait((request, time.perf_counter()))

    async def _on_cancel(self, cancel: Cancel, _msg: Msg) -> None:
        self.cancelled[(cancel.call_id, cancel.gen)] = cancel.reason
        while len(self.cancelled) > CANCEL_MEMORY:
            self.cancelled.pop(next(iter(self.cancelled)))

    async def _serve(self) -> None:
        slots = asyncio.Semaphore(self.parallel)
        while True:
            await slots.acquire()  # before taking a request, so that the check below is current
            request, received = await self.queue.get()
            if request.warm_only and not self.queue.empty():
                slots.release()
                continue  # real work first: a warm-up is only worth idle time
            task = asyncio.create_task(self._serve_one(request, received, slots))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _serve_one(self, request: LlmRequest, received: float, slots: asyncio.Semaphore) -> None:
        try:
            if request.warm_only:
                await self._warm(request)
                return
            await self._answer(request, received)
        finally:
            slots.release()

    async def _answer(self, request: LlmRequest, received: float) -> None:
        self.active.add(request.call_id)
        try:
            await self._generate(request, received)
        except Exception as exc:  # one bad generation must not take the worker down
            log.exception("generation failed", call_id=request.call_id, gen=request.gen)
            await self.bus.publish(
                subjects.llm_chunks(request.call_id),
                LlmChunk(
                    call_id=request.call_id,
                    gen=request.gen,
                    seq=0,
                    text="",
                    done=True,
                    finish_reason=f"error: {type(exc).__name__}: {exc}",
                    worker_id=self.worker_id,
                ),
            )
        finally:
            self.active.discard(request.call_id)

    async def _warm(self, request: LlmRequest) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(
                self.pool, self.engine.warm, request.messages, request.tools or None, request.call_id
            )
        except Exception:  # a failed warm-up costs only speed
            log.exception("warm-up failed", call_id=request.call_id)

    def _fell_back(self, request: LlmRequest, reason: str, received_chars: int) -> None:
        log.warning("remote LLM failed: the local model answers", call_id=request.call_id, reason=reason)
        self.bus.emit(
            LlmFallback(
                call_id=request.call_id,
                gen=request.gen,
                turn=request.turn,
                reason=reason,
                received_chars=received_chars,
            )
        )

    async def _generate(self, request: LlmRequest, received: float) -> None:
        key = (request.call_id, request.gen)
        subject = subjects.llm_chunks(request.call_id)
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[str | None] = asyncio.Queue()
        stop = threading.Event()
        started = time.perf_counter()

        def cancelled() -> bool:
            return stop.is_set() or key in self.cancelled

        def produce() -> None:
            try:
                for piece in self.engine.stream(
                    request.messages,
                    request.max_tokens,
                    request.temperature,
                    request.continue_from,
                    cancelled,
                    request.tools,
                    request.call_id,
                ):
                    loop.call_soon_threadsafe(pieces.put_nowait, piece)
            finally:
                loop.call_soon_threadsafe(pieces.put_nowait, None)

        if key in self.cancelled:
            return
        if isinstance(self.engine, FallbackLlmEngine):
            self.engine.on_fallback = lambda reason, chars: loop.call_soon_threadsafe(
                self._fell_back, request, reason, chars
            )
        future = loop.run_in_executor(self.pool, produce)
        seq, text = 0, []
        try:
            while (piece := await pieces.get()) is not None:
                if key in self.cancelled:
                    continue
                if seq == 0:
                    self.bus.emit(
                        LlmFirstToken(
                            call_id=request.call_id,
                            gen=request.gen,
                            turn=request.turn,
                            latency_s=round(time.perf_counter() - received, 4),
                            queued_s=round(started - received, 4),
                        )
                    )
                text.append(piece)
                await self.bus.publish(
                    subject,
                    LlmChunk(
                        call_id=request.call_id,
                        gen=request.gen,
                        seq=seq,
                        text=piece,
                        worker_id=self.worker_id,
                    ),
                )
                seq += 1
        finally:
            stop.set()
            await future
        full = "".join(text)
        if key in self.cancelled:
            self.bus.emit(
                LlmCancelled(
                    call_id=request.call_id,
                    gen=request.gen,
                    turn=request.turn,
                    reason=self.cancelled[key],
                    tokens=seq,
                )
            )
            return
        await self.bus.publish(
            subject,
            LlmChunk(
                call_id=request.call_id,
                gen=request.gen,
                seq=seq,
                text="",
                done=True,
                finish_reason="stop",
                worker_id=self.worker_id,
            ),
        )
        self.bus.emit(
            LlmDone(
                call_id=request.call_id,
                gen=request.gen,
                turn=request.turn,
                text=request.continue_from + full,
                finish_reason="stop",
            )
        )
