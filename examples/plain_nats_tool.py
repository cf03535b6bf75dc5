"""A tool served with plain nats-py, no voxbus installed: the wire contract is all it needs.

    python examples/plain_nats_tool.py nats://127.0.0.1:4222 [--creds FILE]

Serves ``opening_hours`` on ``voxbus.tool.opening_hours`` as a NATS service (``nats.micro``):
the endpoint's metadata carries the description and the JSON Schema of the arguments; a request
is ``{"call_id", "arguments", "idempotency_key", "attempt", "caller", "called"}`` and the reply
``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "..."}``. A Go or JavaScript service
does the same with its NATS client's services API.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal

import nats
from nats.micro import add_service
from nats.micro.request import Request
from nats.micro.service import EndpointConfig

WEEKDAY, LATE, SHORT = "8:00-18:00", "8:00-20:00", "8:00-16:00"
HOURS = {"monday": WEEKDAY, "tuesday": WEEKDAY, "wednesday": WEEKDAY, "thursday": LATE, "friday": SHORT,
         "saturday": "closed", "sunday": "closed"}  # fmt: skip
SCHEMA = {
    "type": "object",
    "properties": {"day": {"type": "string", "enum": sorted(HOURS), "description": "day of the week"}},
    "required": ["day"],
}


async def opening_hours(request: Request) -> None:
    try:
        day = json.loads(request.data)["arguments"]["day"]
        reply = {"ok": True, "result": {"day": day, "hours": HOURS[day]}}
    except (ValueError, KeyError, TypeError):
        reply = {"ok": False, "error": f"day must be one of {', '.join(sorted(HOURS))}"}
    await request.respond(json.dumps(reply).encode())


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--creds", help="NATS credentials file (`voxbus creds tools`)")
    args = parser.parse_args()
    options = {}
    if args.creds:
        with open(args.creds) as f:
            secret = json.load(f)
        # the bus lets each user read replies on its own inbox prefix only
        options = {
            "user": secret["user"],
            "password": secret["password"],
            "inbox_prefix": f"_INBOX_{secret['user']}",
        }
    nc = await nats.connect(args.url, name="opening-hours", **options)
    service = await add_service(nc, name="opening-hours", version="1.0.0")
    await service.add_endpoint(
        EndpointConfig(
            name="opening_hours",
            subject="voxbus.tool.opening_hours",
            queue_group="voxbus.tools",
            handler=opening_hours,
            metadata={
                "description": "The clinic's opening hours on a day of the week.",
                "parameters": json.dumps(SCHEMA),
            },
        )
    )
    await nc.flush()  # the server has the endpoint's subscriptions: now it is served
    print("serving opening_hours", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await service.stop()
    await nc.drain()


if __name__ == "__main__":
    asyncio.run(main())
