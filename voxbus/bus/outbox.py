"""The ordered outbox of a process's events: published to JetStream one at a time, in order, each
retried until the server acknowledges it (with backoff), so that no event is lost while NATS is
away. Each carries a ``Nats-Msg-Id``, so a retry whose first publish was stored after all is
stored once."""

from __future__ import annotations

import asyncio
import uuid
from collections import deque

from nats.js import JetStreamContext

from voxbus.logs import get_logger

log = get_logger(__name__)
RETRY_FIRST_S = 0.05
RETRY_MAX_S = 2.0
PUBLISH_TIMEOUT_S = 2.0


class EventOutbox:
    """Encoded events waiting for JetStream's acknowledgement, oldest first."""

    def __init__(self) -> None:
        self.queued: deque[tuple[str, bytes, str]] = deque()  # subject, payload, Nats-Msg-Id
        self._ready = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    def __len__(self) -> int:
        return len(self.queued)

    def put(self, subject: str, data: bytes) -> None:
        self.queued.append((subject, data, uuid.uuid4().hex))
        self._idle.clear()
        self._ready.set()

    def kick(self) -> None:
        """Try the oldest event again now (the connection is back)."""
        self._ready.set()

    async def wait_idle(self, timeout_s: float) -> None:
        """Until every event is acknowledged; TimeoutError after ``timeout_s``."""
        await asyncio.wait_for(self._idle.wait(), timeout_s)

    async def pump(self, js: JetStreamContext) -> None:
        """Publish forever (a task of the connection): one event at a time, the oldest until acked."""
        delay = RETRY_FIRST_S
        while True:
            if not self.queued:
                self._idle.set()
                self._ready.clear()
                await self._ready.wait()
                continue
            subject, data, msg_id = self.queued[0]
            try:
                await js.publish(subject, data, timeout=PUBLISH_TIMEOUT_S, headers={"Nats-Msg-Id": msg_id})
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "event not acknowledged yet, retrying",
                    subject=subject,
                    reason=type(exc).__name__,
                    retry_in_s=delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            delay = RETRY_FIRST_S
            self.queued.popleft()
