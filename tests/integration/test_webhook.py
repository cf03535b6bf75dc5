"""`voxbus webhook`'s forwarder against a real HTTP server on loopback: signed, in order, retried
until accepted, and caught up after a stop (a real system and a file call)."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from voxbus.bus.connection import Bus
from voxbus.media.file_call import FileCall
from voxbus.media.script import CallerScript, Line
from voxbus.media.wav import WavSource
from voxbus.supervisors.system import System
from voxbus.webhook import Webhook, signature

from .helpers import wait_all_serving

pytestmark = pytest.mark.integration
SECRET = b"s3cret-for-tests"
QUESTION = CallerScript(lines=[Line(text="Hello there.", pause_before_s=2.0)], tail_s=1.0)


class Receiver(BaseHTTPRequestHandler):
    posts: list[tuple[dict[str, str], bytes, int]] = []
    refuse_first = 0

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = 500 if Receiver.refuse_first > 0 else 200
        Receiver.refuse_first -= 1
        Receiver.posts.append((dict(self.headers), body, status))
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


async def forward_until(forwarder: Webhook, wanted: int) -> None:
    stop = asyncio.Event()
    seen: list[str] = []

    def delivered(event_type: str) -> None:
        seen.append(event_type)
        if event_type == "call.ended" and len([t for t in seen if t == "call.ended"]) >= wanted:
            stop.set()

    await asyncio.wait_for(forwarder.run(stop, delivered), 60)


async def test_events_are_posted_signed_in_order_and_retried_until_accepted(
    system: System, client: Bus, caller, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/events"
    Receiver.posts, Receiver.refuse_first = [], 2
    await wait_all_serving(client)
    wav, _ = caller(QUESTION)
    first = FileCall(client, WavSource(wav))
    await first.run()
    forwarder = Webhook(client, url, SECRET, ["call.started", "call.ended"])
    await forward_until(forwarder, 1)
    accepted = [(h, b) for h, b, status in Receiver.posts if status == 200]
    assert [h["X-Voxbus-Event"] for h, _ in accepted] == ["call.started", "call.ended"]
    assert all(h["X-Voxbus-Signature"] == signature(SECRET, b) for h, b in accepted)
    assert json.loads(accepted[0][1])["call_id"] == first.call_id
    refused = [h["X-Voxbus-Delivery"] for h, _, status in Receiver.posts if status != 200]
    assert refused == [accepted[0][0]["X-Voxbus-Delivery"]] * 2  # the same event, again, until accepted
    # stopped, a call happens, started again: it catches up and posts nothing twice
    second = FileCall(client, WavSource(wav))
    await second.run()
    await forward_until(Webhook(client, url, SECRET, ["call.started", "call.ended"]), 1)
    deliveries = [h["X-Voxbus-Delivery"] for h, _, status in Receiver.posts if status == 200]
    assert len(deliveries) == 4 and len(set(deliveries)) == 4
    assert json.loads(Receiver.posts[-1][1])["call_id"] == second.call_id
    server.shutdown()
