"""The actor base: a mailbox, a lifecycle, and handlers chosen by message type.

An actor processes one message at a time, in arrival order, so its state needs no locks. A handler
that raises crashes the actor: ``run()`` re-raises after ``on_stop``, and its supervisor decides
what happens next. Bus subscriptions only put decoded messages into the mailbox.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from voxbus.logs import get_logger

log = get_logger(__name__)

Handler = Callable[[Any], Awaitable[None]]


class Stop:
    """Put in a mailbox to end an actor normally once the messages before it are handled."""


class Actor:
    name: str = "actor"

    def __init__(self) -> None:
        self.mailbox: asyncio.Queue[Any] = asyncio.Queue()
        self._handlers: dict[type, Handler] = {}
        self.running = False

    def on(self, message_type: type, handler: Handler) -> None:
        self._handlers[message_type] = handler

    def tell(self, message: Any) -> None:
        self.mailbox.put_nowait(message)

    def stop(self) -> None:
        self.tell(Stop())

    async def on_start(self) -> None:
        """Subscribe and restore state; raising here is a crash like any other."""

    async def on_stop(self) -> None:
        """Release what on_start took (subscriptions, tasks). Runs after a crash too."""

    async def run(self) -> None:
        self.running = True
        try:
            await self.on_start()
            while True:
                message = await self.mailbox.get()
                if isinstance(message, Stop):
                    return
                handler = self._handler_for(type(message))
                if handler is None:
                    log.warning("no handler", actor=self.name, message=type(message).__name__)
                    continue
                await handler(message)
        finally:
            self.running = False
            await self.on_stop()

    def _handler_for(self, message_type: type) -> Handler | None:
        for klass in message_type.__mro__:
            if klass in self._handlers:
                return self._handlers[klass]
        return None
