"""The console as a process: it follows the bus and serves operators.

- a durable JetStream consumer (``voxbus-console``) writes every call event into the call records
  (SQLite), so a console that was down catches up and the KPIs miss nothing;
- plain subscriptions to the call events and the heartbeats keep the live view (calls up, their
  state) and the Prometheus metrics, with no store in between: a call appears within a second;
- operator actions go to the call's actor as requests on ``voxbus.call.<id>.op``;
- the retention sweep erases calls older than ``console.retention_days``, hourly;
- uvicorn serves the web app in the same event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import uvicorn
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from voxbus.bus import subjects
from voxbus.bus.codec import BadMessage, decode_event
from voxbus.bus.connection import Bus
from voxbus.config import Settings
from voxbus.console.auth import ConsoleAuth, default_users, session_key
from voxbus.console.erase import apply_retention
from voxbus.console.listen import call_audio
from voxbus.console.live import LiveCalls
from voxbus.console.metrics import CallMetrics
from voxbus.console.operate import ask_call_actor
from voxbus.console.records import call_summary
from voxbus.console.store import CallRecords
from voxbus.console.web import ConsoleWeb
from voxbus.logs import get_logger
from voxbus.schemas.events import Event
from voxbus.schemas.messages import Heartbeat, OperatorCommand

log = get_logger(__name__)
DURABLE = "voxbus-console"
CPU_SAMPLE_S = 15.0
RETENTION_EVERY_S = 3600.0


def records_path(settings: Settings) -> Path:
    return settings.console.store or settings.data_dir / "console.sqlite"


def console_url_file(settings: Settings) -> Path:
    """Where the running console writes its URL (the port is chosen at start when it is 0)."""
    return settings.data_dir / "run" / "console.url"


class ConsoleService:
    def __init__(self, bus: Bus, settings: Settings) -> None:
        self.bus, self.settings = bus, settings
        console = settings.console
        self.records = CallRecords(records_path(settings), console.redact)
        self.live = LiveCalls(self.records.redact, lambda call_id: call_summary(self.records, call_id))
        self.metrics = CallMetrics()
        auth_dir = settings.data_dir / "auth"
        users = console.users or default_users(auth_dir)
        auth = ConsoleAuth(users, session_key(auth_dir), console.session_hours, console.tokens)
        listen = self._listen if console.listen_in else None
        self.web = ConsoleWeb(
            auth, self.records, self.live, self.metrics, self.act, console.price_per_core_hour, listen
        )
        self.server: uvicorn.Server | None = None
        self.url = ""
        self._tasks: list[asyncio.Task[None]] = []
        self._sampled: dict[str, float] = {}
        self._stop = asyncio.Event()

    def _listen(self, call_id: str) -> AsyncIterator[bytes]:
        return call_audio(self.bus, call_id, lambda c: c in self.live.calls)

    def sessions(self) -> list[str]:
        return list(self.live.calls)

    async def start(self) -> None:
        await self.bus.subscribe(subjects.ALL_CALL_EVENTS, None, self._on_event)
        await self.bus.subscribe(subjects.ALL_SYSTEM_EVENTS, None, self._on_event)
        await self.bus.subscribe(subjects.ALL_HEALTH, Heartbeat, self._on_heartbeat)
        console = self.settings.console
        config = uvicorn.Config(
            self.web.app, host=console.address, port=console.port, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # the role's
        self._tasks = [
            asyncio.create_task(self.server.serve()),
            asyncio.create_task(self._follow()),
            asyncio.create_task(self._sweep()),
            asyncio.create_task(self._retention()),
        ]
        while not self.server.started:
            if self._tasks[0].done():
                self._tasks[0].result()  # the port is taken, or the address is wrong: say so
                raise OSError(f"console could not listen on {console.address}:{console.port}")
            await asyncio.sleep(0.02)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        path = console_url_file(self.settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.url + "\n")
        log.info("console serving", url=self.url)

    async def stop(self) -> None:
        self._stop.set()
        if self.server is not None:
            self.server.should_exit = True
        for task in self._tasks:
            if task is not self._tasks[0]:
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        console_url_file(self.settings).unlink(missing_ok=True)
        self.records.close()

    # --- the bus ----------------------------------------------------------------------------------
    async def _on_event(self, event: Event, _msg: Msg) -> None:
        self.live.on_event(event, time.time())
        self.metrics.observe(event)

    async def _on_heartbeat(self, beat: Heartbeat, _msg: Msg) -> None:
        now = time.time()
        self.live.on_heartbeat(beat, now)
        self.metrics.waiting.labels(beat.role).set(len(beat.sessions))
        key = f"{beat.role}/{beat.worker_id}/{beat.pid}"
        if now - self._sampled.get(key, 0.0) >= CPU_SAMPLE_S:
            self._sampled[key] = now
            self.records.sample_cpu(beat, now)

    async def act(self, command: OperatorCommand) -> str | None:
        """Ask the call's actor to carry out an operator's command; None when it did."""
        return await ask_call_actor(self.bus, command)

    async def _follow(self) -> None:
        """Write every call event into the records, from where this console left off."""
        assert self.bus.js is not None
        config = ConsumerConfig(
            durable_name=DURABLE,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            filter_subject=subjects.ALL_CALL_EVENTS,
            ack_wait=30,
        )
        sub = await self.bus.js.pull_subscribe(
            subjects.ALL_CALL_EVENTS, durable=DURABLE, stream=subjects.EVENTS_STREAM, config=config
        )
        while True:
            try:
                batch = await sub.fetch(256, timeout=1.0)
            except (NatsTimeout, TimeoutError, NotFoundError):
                continue
            for msg in batch:
                try:
                    self.records.apply(msg.metadata.sequence.stream, decode_event(msg.subject, msg.data))
                except BadMessage as exc:  # not one of ours: said once, never retried
                    self.bus.report_bad(exc)
                await msg.ack()

    async def _sweep(self) -> None:
        while True:
            self.live.sweep(time.time())
            self.metrics.calls_up.set(len(self.live.calls))
            await asyncio.sleep(1.0)

    async def _retention(self) -> None:
        while True:
            try:
                await apply_retention(
                    self.bus, self.records, self.settings.console.retention_days, self.settings.sip.record_dir
                )
            except Exception as exc:  # tried again next hour
                log.warning("retention sweep failed", problem=repr(exc))
            await asyncio.sleep(RETENTION_EVERY_S)
