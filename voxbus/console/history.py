"""A call's events so far, read back from the events stream: what a console opened in the middle
of a call shows before its live feed (the terminal console has no records of its own: it may run
on another machine, with only a bus credential)."""

from __future__ import annotations

import contextlib

from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import ConsumerConfig, DeliverPolicy

from voxbus.bus import subjects
from voxbus.bus.codec import BadMessage, decode_event
from voxbus.bus.connection import Bus
from voxbus.schemas.events import Event

QUIET_S = 1.0  # no message for this long: the stream has nothing more for the call


async def call_events_so_far(bus: Bus, call_id: str, limit: int = 5000) -> list[Event]:
    """Every stored event of the call, oldest first (an ephemeral ordered consumer, gone after)."""
    assert bus.js is not None
    sub = await bus.js.subscribe(
        subjects.call_events(subjects.check_call_id(call_id)),
        ordered_consumer=True,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
    )
    events: list[Event] = []
    try:
        while len(events) < limit:
            try:
                msg = await sub.next_msg(timeout=QUIET_S)
            except NatsTimeout:
                break
            with contextlib.suppress(BadMessage):  # a bad event is reported where it was published
                events.append(decode_event(msg.subject, msg.data))
            if msg.metadata.num_pending == 0:
                break
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
    return events
