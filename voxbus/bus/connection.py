"""The NATS connection of a process, with voxbus's policy for an unreliable network.

- Connect and reconnect forever with backoff; each failed attempt is one log line.
- Audio frames are real-time data: while disconnected they are dropped (and counted), never
  buffered, because a frame played late is worse than a frame not played.
- Events must not be lost: :meth:`Bus.emit` puts them in an ordered outbox
  (:mod:`voxbus.bus.outbox`) that a pump publishes to JetStream, retrying until the server
  acknowledges. Each event carries a ``Nats-Msg-Id`` so a retried publish is stored once; a
  subscriber sees the retry too (the first publish may have reached it before the server died
  unacknowledged), so subscriptions drop an id seen already.
- A command that must not be lost (a hang-up, a transfer) is a request its receiver acknowledges,
  retried under one ``Nats-Msg-Id`` (:meth:`Bus.command`): done at most once, known to be done.
- Every subscription decodes into its pydantic model at the boundary; a message that is not
  msgpack or fails its schema becomes an ``error`` event naming the subject, and the handler is
  not called. Handler crashes are the owner's business (actors crash to their supervisor).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import ConnectionClosedError, NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from pydantic import BaseModel

from voxbus.bus import subjects
from voxbus.bus.auth import Credentials, may_publish
from voxbus.bus.codec import BadMessage, decode, decode_event, encode
from voxbus.bus.outbox import EventOutbox
from voxbus.bus.streams import EVENT_MAX_BYTES
from voxbus.logs import get_logger
from voxbus.privacy import Redactor
from voxbus.ratelimit import Trickle
from voxbus.schemas.base import Accepted, Rejected
from voxbus.schemas.events import CallEvent, ErrorEvent, Event

log = get_logger(__name__)
BAD_REPORTS_BURST = 30  # bad messages reported one by one at once
BAD_REPORTS_PER_S = 1.0  # and then a second
NOT_HEARD_PAUSE_S = 0.1  # between requests the server said nobody listens to
M = TypeVar("M", bound=BaseModel)


class BusUnreachable(ConnectionError):
    pass


def event_subject(event: Event) -> str:
    if isinstance(event, CallEvent) or getattr(event, "call_id", None):
        return subjects.call_event(event.call_id, event.type)  # type: ignore[attr-defined]
    return subjects.system_event(event.type)


class Bus:
    """A process's NATS connection: publish, subscribe with schemas, emit events reliably."""

    def __init__(self, url: str, name: str, source: str = "", creds: Path | None = None) -> None:
        self.url = url
        self.name = name
        self.source = source or name
        self.creds = creds  # a credentials file (voxbus.bus.auth); None: connect anonymously
        self.nc: Client = Client()
        self.js: JetStreamContext | None = None
        self.audio_dropped = 0
        self.outbox = EventOutbox()
        self._pump: asyncio.Task[None] | None = None
        self._subs: list[Subscription] = []
        self._closing = False
        self._last_error = ""
        self.permission_errors: list[str] = []  # what the server refused this credential, latest last
        self._refused = ""  # why the server refused to let us in, if it did
        self._connecting: asyncio.Future[None] | None = None
        self._role = ""  # the credential's role; empty: anonymous (a bus with no authentication)
        # a flood of bad messages (a broken or hostile client) must not flood the log and the events
        # stream in turn, where it would push out real calls' events: a burst, then a trickle
        # (one trickle per subscription, so that a flood on one subject hides nothing on another)
        self._bad_reports = Trickle(BAD_REPORTS_PER_S, burst=BAD_REPORTS_BURST)
        self.redactor: Redactor | None = None  # set: events are redacted before they leave (privacy)

    # --- lifecycle --------------------------------------------------------------------------------
    async def connect(self, attempts: int | None = None, backoff_max_s: float = 5.0) -> None:
        """Connect, retrying with backoff; ``attempts=None`` retries forever."""
        delay, tried = 0.1, 0
        login: dict[str, Any] = {}
        if self.creds is not None:
            creds = Credentials.load(self.creds)  # a bad file is a configuration error: raised at once
            self._role = creds.role
            login = {
                "user": creds.user,
                "password": creds.password.get_secret_value(),
                "inbox_prefix": creds.inbox_prefix,
            }
            if creds.ca_pem:  # the bus speaks TLS: trust its fleet's CA, and nothing else
                from voxbus.bus.tls import client_context

                login["tls"] = client_context(creds.ca_pem)
        while True:
            tried += 1
            try:
                # nats-py retries a first connection forever when reconnects are unlimited, so
                # reachability is probed first: a refused port is reported and retried here
                await _probe(self.url)
                self._connecting = asyncio.ensure_future(
                    self.nc.connect(
                        servers=self.url.split(","),  # a cluster's nodes: any live one serves
                        name=self.name,
                        connect_timeout=2,
                        allow_reconnect=True,
                        max_reconnect_attempts=-1,
                        reconnect_time_wait=0.5,
                        pending_size=8 * 1024 * 1024,
                        error_cb=self._on_error,
                        disconnected_cb=self._on_disconnected,
                        reconnected_cb=self._on_reconnected,
                        **login,
                    )
                )
                await self._connecting
                break
            except asyncio.CancelledError:
                if not self._refused:
                    raise
                raise BusUnreachable(f"NATS at {self.url} refused us ({self._refused})") from None
            except Exception as exc:  # nats-py raises several types for "cannot connect"
                reason = f"{type(exc).__name__}: {exc}".strip(": ")
                if attempts is not None and tried >= attempts:
                    raise BusUnreachable(f"cannot reach NATS at {self.url} ({reason})") from None
                # a bounded caller (a client command) reports once, at the end, in one line
                say = log.debug if attempts is not None else log.warning
                say("cannot reach NATS, retrying", url=self.url, reason=reason, retry_in_s=round(delay, 2))
                self.nc = Client()
                await asyncio.sleep(delay)
                delay = min(delay * 2, backoff_max_s)
        self.js = self.nc.jetstream()
        self._pump = asyncio.create_task(self.outbox.pump(self.js), name=f"{self.name}-event-pump")

    async def close(self, flush_timeout_s: float = 5.0) -> None:
        """Publish what is in the outbox (bounded wait), then drain the connection."""
        self._closing = True
        try:
            await self.outbox.wait_idle(flush_timeout_s)
        except TimeoutError:
            log.error("events not delivered at shutdown", count=len(self.outbox))
        if self._pump:
            self._pump.cancel()
        if self.nc.is_connected:
            try:
                await asyncio.wait_for(self.nc.drain(), 5)
            except Exception:
                await self.nc.close()
        elif not self.nc.is_closed:
            await self.nc.close()

    async def _on_error(self, exc: Exception) -> None:
        text = f"{type(exc).__name__}: {exc}"
        if "authorization violation" in text.lower() and self._connecting and not self._connecting.done():
            # nats-py retries a refused first connection forever: stop it, connect() says why
            self._refused = "Authorization Violation: wrong or missing credentials"
            self._connecting.cancel()
            return
        if "permissions violation" in text.lower():
            # this process's credential does not allow what it tried: a deployment error, each once
            if text not in self.permission_errors:
                log.error("refused by the bus: not allowed for this credential", error=text)
                self.permission_errors.append(text)
                del self.permission_errors[:-50]
                if self._may_emit:  # and an event about it, if this credential may publish one
                    self.emit(ErrorEvent(code="bus_permission", message=f"{self.source}: {text}"[:300]))
            return
        if text != self._last_error:  # a reconnect loop repeats the same error: say it once
            log.warning("nats error", error=text)
        self._last_error = text

    async def _on_disconnected(self) -> None:
        if self._closing:
            return
        log.warning("disconnected from NATS; audio is dropped, events are kept", url=self.url)

    async def _on_reconnected(self) -> None:
        self._last_error = ""
        log.info("reconnected to NATS", url=self.url, outbox=len(self.outbox))
        self.outbox.kick()

    # --- publishing -------------------------------------------------------------------------------
    async def publish(self, subject: str, message: BaseModel) -> None:
        """Publish work or control messages (core NATS, buffered by the client while reconnecting)."""
        await self.nc.publish(subject, encode(message))

    async def publish_audio(self, subject: str, message: BaseModel) -> bool:
        """Publish a real-time audio frame; dropped while disconnected. Returns whether it went."""
        if not self.nc.is_connected:
            self.audio_dropped += 1
            return False
        await self.nc.publish(subject, encode(message))
        return True

    async def request(
        self,
        subject: str,
        message: BaseModel,
        reply_model: type[M],
        timeout_s: float = 2.0,
        headers: dict[str, str] | None = None,
        heard_within_s: float = 0.0,
    ) -> M:
        """One request and its reply. ``heard_within_s``: while the server answers "no responders"
        (nobody received it, so asking again cannot do it twice), ask again for that long: a
        subscription just made on another connection is not always known to the server at once,
        even after its flush (2 to 8 requests in 200 were refused so here, with nats-py alone)."""
        deadline = time.monotonic() + heard_within_s
        while True:
            try:
                msg = await self.nc.request(subject, encode(message), timeout=timeout_s, headers=headers)
                return decode(msg.subject or subject, msg.data, reply_model)
            except NoRespondersError:
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(NOT_HEARD_PAUSE_S)

    async def command(self, subject: str, message: BaseModel, within_s: float, per_try_s: float) -> bool:
        """Deliver a command that must not be lost (a hang-up, a transfer): a request that its
        receiver acknowledges, asked again until it does. Every attempt carries the same
        ``Nats-Msg-Id``, so a receiver that handled the command already (its acknowledgement
        was lost) acknowledges the retry without handling it twice. False: nobody acknowledged
        within ``within_s`` (the receiver is gone, or the bus is)."""
        once = {"Nats-Msg-Id": uuid.uuid4().hex}
        taken = await self.request_until_taken(
            subject, message, Accepted, within_s, per_try_s, pause_s=0.05, pause_max_s=0.25, headers=once
        )
        return taken is not None

    async def request_until_taken(
        self,
        subject: str,
        message: BaseModel,
        reply_model: type[M],
        within_s: float,
        per_try_s: float,
        pause_s: float,
        pause_max_s: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> M | None:
        """Ask a queue group until a worker takes the request (None if none did ``within_s``).

        Nobody answering is normal while a worker (re)starts: wait ``pause_s`` (growing linearly
        to ``pause_max_s``) and ask again.
        """
        deadline = time.monotonic() + within_s
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self.request(subject, message, reply_model, per_try_s, headers)
            except (NoRespondersError, NatsTimeout, BadMessage):
                if time.monotonic() >= deadline:
                    return None
                await asyncio.sleep(min(pause_s * attempt, pause_max_s or pause_s))

    def emit(self, event: Event) -> None:
        """Queue an event for JetStream; delivered in order, retried until acknowledged."""
        if not event.source:
            event.source = self.source
        if self.redactor is not None:
            event = self.redactor.event(event)
        subject = event_subject(event)
        if self._role and not may_publish(self._role, subject):
            # the server would refuse it, JetStream would never acknowledge it and the outbox would
            # hold every later event behind it: a call's error becomes a system error, others are
            # said in the log and dropped
            if isinstance(event, ErrorEvent) and event.call_id is not None:
                event = event.model_copy(update={"call_id": None})
                subject = event_subject(event)
            if not may_publish(self._role, subject):
                log.error("event not allowed for this credential, dropped", subject=subject, role=self._role)
                return
        data = encode(event)
        if len(data) > EVENT_MAX_BYTES:  # the stream would refuse it, and the outbox wait on it for ever
            log.error("event too large for the stream, dropped", subject=subject, size=len(data))
            return
        self.outbox.put(subject, data)

    async def flush_events(self, timeout_s: float = 5.0) -> None:
        await self.outbox.wait_idle(timeout_s)

    @property
    def _may_emit(self) -> bool:
        """Whether this credential may publish events (a reader's may not)."""
        return not self._role or may_publish(self._role, subjects.system_event("error"))

    # --- subscribing ------------------------------------------------------------------------------
    def report_bad(self, exc: BadMessage, trickle: Trickle | None = None) -> None:
        """One log line and one error event for a message that failed its decoding; beyond a burst
        of ``BAD_REPORTS_BURST`` (per subscription), about one a second, counting the others."""
        unreported = (trickle or self._bad_reports).let_through(time.monotonic())
        if unreported is None:
            return
        reason = exc.reason
        if unreported:
            reason = f"{reason} (and {unreported} bad messages before it, not reported one by one)"
        log.error("bad message", subject=exc.subject, problem=exc.reason, unreported_before=unreported)
        call_id = subjects.call_id_of(exc.subject)
        if call_id is not None:
            try:
                subjects.check_call_id(call_id)
            except subjects.BadCallId:
                call_id = None
        self.emit(ErrorEvent(call_id=call_id, subject=exc.subject, code="bad_message", message=reason))

    async def subscribe(
        self,
        subject: str,
        model: type[M] | None,
        handler: Callable[[M, Msg], Awaitable[None]],
        queue: str = "",
    ) -> Subscription:
        """Subscribe; each message is decoded into ``model`` (or any event when ``model`` is None)."""

        seen: OrderedDict[str, None] = OrderedDict()
        trickle = Trickle(BAD_REPORTS_PER_S, burst=BAD_REPORTS_BURST)

        async def on_msg(msg: Msg) -> None:
            if _seen_before(seen, msg):
                # a retried command handled already: acknowledged, not done again. A retried event
                # is only dropped: its reply inbox waits for the stream's JSON acknowledgement, and
                # a subscriber's answer, always first, would fail the publish (under a cluster's
                # leader election it failed every retry of every event of a call for seconds)
                if not subjects.is_event(msg.subject):
                    await acknowledge(msg, self.source, self._role or "anonymous")
                return
            try:
                decoded: Any = (
                    decode_event(msg.subject, msg.data)
                    if model is None
                    else decode(msg.subject, msg.data, model)
                )
            except BadMessage as exc:
                self.report_bad(exc, trickle)
                if msg.reply:
                    await reply_rejected(msg, self.source, exc.reason)
                return
            await handler(decoded, msg)

        sub = await self.nc.subscribe(subject, queue=queue, cb=on_msg)
        self._subs.append(sub)
        await self._server_has_it()
        return sub

    async def _server_has_it(self) -> None:
        """Wait until the server has this connection's last subscription: otherwise a request sent
        right after on another connection can find no responder (a fresh-clone run: a command
        answered 'no responders' by a subscription made just before). Disconnected, the client
        sends the subscription when it reconnects: nothing to wait for. The wait is long: on a
        loaded machine the server's answer took more than 2 s, the wait gave up silently, and a
        request right after found no responder."""
        if self.nc.is_connected:
            try:
                await self.nc.flush(timeout=SUBSCRIBED_WAIT_S)
            except NatsTimeout:
                log.warning("the server did not confirm a subscription", within_s=SUBSCRIBED_WAIT_S)
            except ConnectionClosedError:
                pass


SUBSCRIBED_WAIT_S = 15.0
SEEN_IDS = 4096  # event ids remembered per subscription: more than any outage's retried backlog


def _seen_before(seen: OrderedDict[str, None], msg: Msg) -> bool:
    """A retried event this subscription has received already (same ``Nats-Msg-Id``)."""
    msg_id = msg.headers.get("Nats-Msg-Id") if msg.headers else None
    if msg_id is None:
        return False
    if msg_id in seen:
        return True
    seen[msg_id] = None
    if len(seen) > SEEN_IDS:
        seen.popitem(last=False)
    return False


async def _probe(urls: str, timeout_s: float = 2.0) -> None:
    """Raise unless one of the servers (comma-separated URLs) accepts a TCP connection."""
    failure: Exception | None = None
    for url in urls.split(","):
        parsed = urlparse(url if "://" in url else f"nats://{url}")
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(parsed.hostname or "127.0.0.1", parsed.port or 4222), timeout_s
            )
        except (OSError, TimeoutError) as exc:
            failure = exc
            continue
        writer.close()
        return
    assert failure is not None
    raise failure


async def acknowledge(msg: Msg, worker_id: str, role: str) -> None:
    """Answer a request (a command sent with :meth:`Bus.command`) that has been carried out."""
    if msg.reply:
        await msg.respond(encode(Accepted(worker_id=worker_id, role=role)))


async def reply_rejected(msg: Msg, worker_id: str, reason: str) -> None:
    """Answer a request that cannot be served, saying why in one line."""
    if msg.reply:
        await msg.respond(encode(Rejected(worker_id=worker_id, reason=reason)))


__all__ = ["Bus", "BusUnreachable", "acknowledge", "event_subject", "reply_rejected"]
