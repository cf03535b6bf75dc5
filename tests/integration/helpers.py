"""Reading the event stream back, as operators and third parties do."""

from __future__ import annotations

from nats.js import JetStreamContext

from voxbus.bus import subjects
from voxbus.bus.codec import decode_event
from voxbus.schemas.events import Event


async def stream_events(js: JetStreamContext) -> list[tuple[int, Event]]:
    """Every event in the stream with its sequence number, checking there is no gap."""
    info = await js.stream_info(subjects.EVENTS_STREAM)
    out = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg(subjects.EVENTS_STREAM, seq)
        out.append((seq, decode_event(msg.subject, msg.data)))
    return out


def of_call(events: list[tuple[int, Event]], call_id: str) -> list[tuple[int, Event]]:
    return [(s, e) for s, e in events if getattr(e, "call_id", None) == call_id]


def sipp_command(scenario: list[str], target: str | None, calls: int = 1, *extra: str) -> list[str]:
    """A sipp command line on loopback, with its own free SIP and media ports."""
    from voxbus.bus.embedded import free_port

    limits = ["-m", str(calls)] + (["-l", str(calls), "-r", str(calls)] if calls > 1 else [])
    return [
        "sipp", *scenario, *limits, "-i", "127.0.0.1", "-p", str(free_port()),
        "-mi", "127.0.0.1", "-mp", str(free_port()), "-nostdin", *extra,
        *([target] if target else []),
    ]  # fmt: skip
