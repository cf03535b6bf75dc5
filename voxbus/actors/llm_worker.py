"""The LLM worker: takes generations from the ``voxbus.llm.generate`` queue group and streams
token chunks on ``voxbus.call.<id>.llm``.

llama.cpp runs on its own thread; the loop stays free for cancels and heartbeats. The worker
serves as many generations at once as its engine decodes together (``llm.parallel``), one at a
time otherwise. A cancel for a
generation (``voxbus.call.<id>.cancel``) is checked between tokens, so generation stops within one
token. Requests are idempotent by (call, generation): a retried request continues after the text
the call actor already received (``continue_from``), and replaces an earlier request of the same
generation (a higher ``request_no``), which stops at once: two streams of one generation must never
run side by side. A retry that may have gone to another worker is announced on the cancel subject
(``Cancel.requests_below``), so that the worker the call actor gave up on stops as well. While a
generation has nothing to say yet (a long prompt being evaluated), the worker says every
``PROGRESS_EVERY_S`` that it is at it (a chunk with no text), and so does a request waiting for its
turn, so that the call actor asks again only a worker that is really gone.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable
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
from voxbus.schemas.messages import (
    PREWARM_CALL_ID,
    Cancel,
    ChatMessage,
    LlmChunk,
    LlmRequest,
    agent_prompt_session,
)

log = get_logger(__name__)
CANCEL_MEMORY = 1024
PROGRESS_EVERY_S = 1.0  # well under the call actor's agent.request_timeout_s


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
        self.latest: dict[tuple[str, int], int] = {}  # the newest request_no of each generation
        self.active: set[str] = set()
        self.waiting: dict[tuple[str, int], LlmRequest] = {}  # accepted, not begun: told alive
        # a call's warm-ups run one at a time, the newest only (see _warm_now)
        self.warm_newest: dict[str, LlmRequest] = {}
        self.warming: set[str] = set()
        self.warm_parked: dict[str, LlmRequest] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # the loop keeps only weak references

    async def start(self) -> None:
        if self.opening:  # every call starts with it: have it evaluated before the first call
            await asyncio.get_running_loop().run_in_executor(
                self.pool, self.engine.warm, self.opening, self.tools
            )
        await self.bus.subscribe(subjects.LLM_GENERATE, LlmRequest, self._on_request, queue="llm")
        await self.bus.subscribe(subjects.cancel("*"), Cancel, self._on_cancel)
        for job in (self._serve(), self._tell_the_waiting()):
            task = asyncio.create_task(job)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def session_ids(self) -> list[str]:
        return sorted(self.active)

    async def _on_request(self, request: LlmRequest, msg: Msg) -> None:
        subjects.check_call_id(request.call_id)
        received = time.perf_counter()  # the wait in llm.first_token's queued_s counts from here
        if msg.reply and not request.warm_only:
            await msg.respond(encode(Accepted(worker_id=self.worker_id, role="llm")))
        if request.warm_only:
            self.warm_newest.pop(warm_key(request), None)  # kept newest last, for _forget_oldest
            self.warm_newest[warm_key(request)] = request
            _forget_oldest(self.warm_newest)
        else:
            key = (request.call_id, request.gen)
            self._newest_request(key, request.request_no)
            self.waiting[key] = request
        self.queue.put_nowait((request, received))

    async def _on_cancel(self, cancel: Cancel, _msg: Msg) -> None:
        key = (cancel.call_id, cancel.gen)
        if cancel.requests_below is not None:  # asked again, maybe of another worker: ours stop
            self._newest_request(key, cancel.requests_below)
            return
        self.cancelled[key] = cancel.reason
        _forget_oldest(self.cancelled)

    def _newest_request(self, key: tuple[str, int], request_no: int) -> None:
        """Requests of the generation numbered below ``request_no`` stop (kept newest last)."""
        self.latest[key] = max(self.latest.pop(key, 0), request_no)
        _forget_oldest(self.latest)

    def _stopped_because(self, request: LlmRequest) -> str | None:
        """Why this request must not go on: its generation was cancelled, or asked again."""
        key = (request.call_id, request.gen)
        if key in self.cancelled:
            return self.cancelled[key]
        newest = self.latest.get(key, request.request_no)
        return f"superseded by request {newest}" if newest > request.request_no else None

    async def _serve(self) -> None:
        slots = asyncio.Semaphore(self.parallel)
        while True:
            await slots.acquire()  # before taking a request, so that the check below is current
            request, received = await self.queue.get()
            key = (request.call_id, request.gen)
            if self.waiting.get(key) is request:
                del self.waiting[key]
            if request.warm_only and (self.waiting or not self._warm_now(request)):
                slots.release()
                continue  # real work first: a warm-up is only worth idle time
            task = asyncio.create_task(self._serve_one(request, received, slots))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _tell_the_waiting(self) -> None:
        """A request waiting for a busy worker (one generation at a time, a long answer under
        way) says that it is taken, as a generation evaluating its prompt does: the call actor
        would otherwise take the wait for a dead worker and ask again."""
        while True:
            await asyncio.sleep(PROGRESS_EVERY_S)
            for request in list(self.waiting.values()):
                if self._stopped_because(request) is None:
                    await self._send(request, 0, "")

    def _warm_now(self, request: LlmRequest) -> bool:
        """Whether to start this warm-up now. Each partial transcript brings the caller's words so
        far: an older warm-up of the same call is wasted work, and two of them at once evaluate the
        same words twice on the same cores (measured: five at once, 3-4 s each, before an answer).
        A warm-up that arrives while one of its call runs waits for it, and only if still newest."""
        call = warm_key(request)
        if self.warm_newest.get(call) is not request:
            return False  # a newer one came
        if call in self.warming:
            self.warm_parked[call] = request
            return False
        self.warming.add(call)
        return True

    def _warm_ended(self, request: LlmRequest) -> None:
        call = warm_key(request)
        self.warming.discard(call)
        if self.warm_newest.get(call) is request:
            del self.warm_newest[call]  # nothing newer to run: forget the prompt
        parked = self.warm_parked.pop(call, None)
        if parked is not None and self.warm_newest.get(call) is parked:
            self.queue.put_nowait((parked, time.perf_counter()))

    async def _serve_one(self, request: LlmRequest, received: float, slots: asyncio.Semaphore) -> None:
        try:
            if request.warm_only:
                try:
                    await self._warm(request)
                finally:
                    self._warm_ended(request)
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
            await self._send(request, 0, "", finish_reason=f"error: {type(exc).__name__}: {exc}")
        finally:
            self.active.discard(request.call_id)

    async def _warm(self, request: LlmRequest) -> None:
        """Evaluate a prompt ahead; it gives way as soon as a real request waits (a call must not
        wait out an agent's prompt of several hundred tokens being warmed for later calls). With
        ``peek_tokens`` (the caller's words so far), the answer's first words too, sent back."""
        if self._peeks(request):
            await self._peek(request)
            return

        def real_work_waits() -> bool:  # read from the engine's thread: a length, a hint
            return bool(self.waiting)  # a request not yet taken: every slot is busy

        warm = functools.partial(
            self.engine.warm, request.messages, request.tools or None, warm_key(request), real_work_waits
        )
        # one per partial transcript when prefill is on, and most turns' last one gives way to
        # the answer's request: debug, for whoever measures what it buys
        await self._warming(request, warm, "warm-up ran", messages=len(request.messages))

    async def _warming(self, request: LlmRequest, work: Callable[[], Any], done: str, **told: Any) -> Any:
        """Run a warm-up's ``work`` on the engine's thread and log ``done`` with its result and
        time (debug); None if it failed: a failed warm-up costs only speed."""
        started = time.perf_counter()
        try:
            result = await asyncio.get_running_loop().run_in_executor(self.pool, work)
        except Exception:
            log.exception("warm-up failed", call_id=request.call_id)
            return None
        seconds = round(time.perf_counter() - started, 3)
        log.debug(done, call_id=request.call_id, result=result, seconds=seconds, **told)
        return result

    def _peeks(self, request: LlmRequest) -> bool:
        wanted = request.peek_tokens and request.messages and request.messages[-1].role == "user"
        return bool(wanted) and hasattr(self.engine, "peek")  # a local engine (remote ones: no)

    async def _peek(self, request: LlmRequest) -> None:
        """The warm-up of the caller's words so far, and the answer's first words on them
        (``LlamaEngine.peek``). It gives way to real work and to a newer warm-up of the call (the
        caller said more: that one peeks), with what it has by then."""
        call = warm_key(request)

        def superseded() -> bool:  # read from the engine's thread
            return bool(self.waiting) or self.warm_newest.get(call) is not request

        peek = functools.partial(
            self.engine.peek,  # type: ignore[attr-defined]
            request.messages,
            request.peek_tokens,
            request.tools or None,
            request.call_id,
            superseded,
            tuple(request.peek_for),
        )
        text = await self._warming(request, peek, "peek ran")
        if text and not self.waiting:
            chunk = LlmChunk(
                call_id=request.call_id,
                gen=request.gen,
                seq=0,
                text=text,
                done=True,
                finish_reason="peek",
                worker_id=self.worker_id,
                request_no=request.request_no,
                peek_of=request.messages[-1].content,
            )
            await self.bus.publish(subjects.llm_chunks(request.call_id), chunk)

    def _prompt_tokens(self, request: LlmRequest) -> int | None:
        """What the request evaluated before its first token, where the engine tells."""
        counted = getattr(self.engine, "prompt_tokens_evaluated", None)
        return counted(request.call_id) if counted is not None else None

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
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[str | None] = asyncio.Queue()
        stop = threading.Event()
        started = time.perf_counter()

        def cancelled() -> bool:
            return stop.is_set() or self._stopped_because(request) is not None

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

        if self._stopped_because(request) is not None:
            return
        if isinstance(self.engine, FallbackLlmEngine):
            self.engine.on_fallback = lambda reason, chars: loop.call_soon_threadsafe(
                self._fell_back, request, reason, chars
            )
        future = loop.run_in_executor(self.pool, produce)
        seq, text = 0, []
        try:
            while True:
                try:
                    piece = await asyncio.wait_for(pieces.get(), PROGRESS_EVERY_S)
                except TimeoutError:
                    if not cancelled():  # a chunk with no text: still at it
                        await self._send(request, seq, "")
                    continue
                if piece is None:
                    break
                if cancelled():
                    continue
                if seq == 0:
                    self.bus.emit(
                        LlmFirstToken(
                            call_id=request.call_id,
                            gen=request.gen,
                            turn=request.turn,
                            latency_s=round(time.perf_counter() - received, 4),
                            queued_s=round(started - received, 4),
                            prompt_tokens=self._prompt_tokens(request),
                        )
                    )
                text.append(piece)
                await self._send(request, seq, piece)
                seq += 1
        finally:
            stop.set()
            await future
        full = "".join(text)
        if (why := self._stopped_because(request)) is not None:
            cancelled_event = LlmCancelled(
                call_id=request.call_id, gen=request.gen, turn=request.turn, reason=why, tokens=seq
            )
            self.bus.emit(cancelled_event)
            return
        await self._send(request, seq, "", finish_reason="stop")
        self.bus.emit(
            LlmDone(
                call_id=request.call_id,
                gen=request.gen,
                turn=request.turn,
                text=request.continue_from + full,
                finish_reason="stop",
            )
        )

    async def _send(self, request: LlmRequest, seq: int, text: str, finish_reason: str | None = None) -> None:
        """A chunk of the request's answer; with ``finish_reason`` its last."""
        chunk = LlmChunk(
            call_id=request.call_id,
            gen=request.gen,
            seq=seq,
            text=text,
            done=finish_reason is not None,
            finish_reason=finish_reason,
            worker_id=self.worker_id,
            request_no=request.request_no,
        )
        await self.bus.publish(subjects.llm_chunks(request.call_id), chunk)


def warm_key(request: LlmRequest) -> str:
    """Whose warm-ups replace each other, and the engine's session they are evaluated on: a
    call's (its words so far), or one agent's prompt (every agent's is sent under
    ``PREWARM_CALL_ID``; two agents' prompts are both wanted, each on a sequence of its own)."""
    if request.call_id != PREWARM_CALL_ID or not request.messages:
        return request.call_id
    return agent_prompt_session(request.messages[0].content)


def _forget_oldest(memory: dict[Any, Any]) -> None:
    while len(memory) > CANCEL_MEMORY:
        memory.pop(next(iter(memory)))
