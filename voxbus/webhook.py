"""Call events to an HTTP endpoint, for systems that do not speak NATS (``voxbus webhook URL``).

The forwarder reads the events stream through a durable JetStream consumer named after the URL,
so a forwarder that was stopped picks up where it left off. Each chosen event is POSTed as JSON,
one at a time and in order, with:

- ``X-Voxbus-Signature: sha256=<hex>``: HMAC-SHA256 of the body with the shared secret (read
  from an environment variable or a file, never from the configuration in clear);
- ``X-Voxbus-Event``: the event type; ``X-Voxbus-Delivery``: the event's stream sequence, the
  same on a retry, so the receiver can drop a repeat.

An event is acknowledged on a 2xx answer only; otherwise it is posted again with backoff (0.5 s
doubling to 60 s) until it is, and nothing after it overtakes it. The HTTP side uses the standard
library (``urllib``): one POST at a time needs nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import hashlib
import hmac
import urllib.error
import urllib.request
from collections.abc import Callable

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from voxbus.bus import subjects
from voxbus.bus.codec import BadMessage, decode_event
from voxbus.bus.connection import Bus
from voxbus.logs import get_logger

log = get_logger(__name__)
BACKOFF_S, BACKOFF_MAX_S, POST_TIMEOUT_S = 0.5, 60.0, 10.0


def signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def consumer_name(url: str) -> str:
    return "webhook-" + hashlib.sha256(url.encode()).hexdigest()[:16]


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=POST_TIMEOUT_S) as answer:  # noqa: S310 - the operator's URL
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


class Webhook:
    def __init__(self, bus: Bus, url: str, secret: bytes, patterns: list[str]) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook URL {url!r} must be http:// or https://")
        self.bus, self.url, self.secret, self.patterns = bus, url, secret, patterns or ["*"]
        self.delivered = 0

    def wanted(self, event_type: str) -> bool:
        return any(fnmatch.fnmatchcase(event_type, p) for p in self.patterns)

    async def run(self, stop: asyncio.Event, on_delivered: Callable[[str], None] | None = None) -> None:
        durable = consumer_name(self.url)
        config = ConsumerConfig(
            durable_name=durable,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            max_ack_pending=1,  # in order: nothing overtakes an event being retried
            ack_wait=BACKOFF_MAX_S + POST_TIMEOUT_S + 30,
        )
        assert self.bus.js is not None
        sub = await self.bus.js.pull_subscribe(
            subjects.ALL_CALL_EVENTS, durable=durable, stream=subjects.EVENTS_STREAM, config=config
        )
        log.info("webhook forwarding", url=self.url, events=self.patterns, consumer=durable)
        try:
            while not stop.is_set():
                try:
                    batch = await sub.fetch(1, timeout=0.5)
                except (NatsTimeout, TimeoutError):
                    continue
                for msg in batch:
                    await self._forward(msg, stop, on_delivered)
        finally:
            await sub.unsubscribe()  # the durable consumer stays, with its position

    async def _forward(
        self, msg: Msg, stop: asyncio.Event, on_delivered: Callable[[str], None] | None
    ) -> None:
        try:
            event = decode_event(msg.subject, msg.data)
        except BadMessage as exc:
            log.warning("skipping an unreadable event", reason=exc.reason)
            await msg.ack()
            return
        if not self.wanted(event.type):
            await msg.ack()
            return
        body = event.model_dump_json().encode()
        headers = {
            "Content-Type": "application/json",
            "X-Voxbus-Event": event.type,
            "X-Voxbus-Delivery": str(msg.metadata.sequence.stream),
            "X-Voxbus-Signature": signature(self.secret, body),
        }
        delay = BACKOFF_S
        while not stop.is_set():
            try:
                status = await asyncio.to_thread(_post, self.url, body, headers)
            except (OSError, urllib.error.URLError) as exc:
                status, why = 0, f"{type(exc).__name__}: {exc}"
            else:
                why = f"HTTP {status}"
            if 200 <= status < 300:
                await msg.ack()
                self.delivered += 1
                if on_delivered is not None:
                    on_delivered(event.type)
                return
            log.warning(
                "webhook not delivered, retrying",
                url=self.url,
                event_type=event.type,
                reason=why,
                retry_in_s=delay,
            )
            await msg.in_progress()  # still ours: the server must not hand it to anyone else
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, BACKOFF_MAX_S)
