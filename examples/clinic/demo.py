"""`make demo`: a caller moves their dental appointment over a real SIP call.

Starts voxbus (embedded NATS, SIP gateway, STT, LLM, TTS, agent) with the clinic's agent
(``voxbus.toml`` beside this file), the clinic's calendar service and its call log, both as
third parties with their own bus credentials; then a SIP caller who reacts to what the agent says
asks to move their appointment. Prints the calendar row before and after, and the call log's row.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("VOXBUS_CONFIG", str(HERE / "voxbus.toml"))

from calendar_db import Calendar  # noqa: E402
from calendar_service import build_service  # noqa: E402
from call_log import CallLog, follow  # noqa: E402

from voxbus.bus.connection import Bus  # noqa: E402
from voxbus.config import load_settings  # noqa: E402
from voxbus.engines.models import model_path  # noqa: E402
from voxbus.engines.tts import PiperEngine  # noqa: E402
from voxbus.media.dialogue import Dialogue, DialogueLine, DialoguePlayer, render_line  # noqa: E402
from voxbus.supervisors.serving import wait_all_serving  # noqa: E402
from voxbus.supervisors.system import System, grant  # noqa: E402

CALLER_NUMBER = "+15551234567"  # Peter Walsh in the demo calendar
CLINIC_URI = "sip:2000@127.0.0.1:{port}"  # the clinic's number: its agent profile answers
APPOINTMENT = 12
DIALOGUE = Dialogue(
    lines=[
        DialogueLine(text="Hi, this is Peter Walsh. I need to move my appointment, my dog is sick."),
        DialogueLine(text="Could I come on Friday instead?"),
        DialogueLine(text="Eleven thirty would be great."),
        DialogueLine(text="Thank you, goodbye."),
    ],
    settle_s=5.0,
)


async def demo(out: Path) -> dict:
    from voxbus.commands import sip_call

    out.mkdir(parents=True, exist_ok=True)
    for stale in ("clinic.sqlite", "calls.sqlite"):
        (out / stale).unlink(missing_ok=True)
    settings = load_settings()
    calendar = Calendar(out / "clinic.sqlite")
    calendar.seed(date.today())
    before = calendar.row(APPOINTMENT)
    piper = PiperEngine(model_path(settings, "tts"), settings.tts)
    player = DialoguePlayer(DIALOGUE, [render_line(line, piper) for line in DIALOGUE.lines])
    system = System(settings)
    print("starting voxbus with the clinic's agent...", flush=True)
    url = await system.start()
    stop = asyncio.Event()
    try:
        served = ("find_patient", "list_free_slots", "reschedule", "book", "cancel")  # these and no others
        calendar_creds = grant(settings, "tools", "clinic-calendar", tools=served)
        tools_bus = Bus(url, "clinic-calendar", "clinic-calendar", calendar_creds)
        log_bus = Bus(url, "clinic-call-log", "clinic-call-log", grant(settings, "reader", "clinic-call-log"))
        await tools_bus.connect(attempts=10)
        await log_bus.connect(attempts=10)
        await wait_all_serving(log_bus, timeout_s=300)
        service = build_service(calendar)
        await service.start(tools_bus.nc)
        call_log = CallLog(out / "calls.sqlite")
        following = asyncio.create_task(follow(log_bus, call_log, stop))
        _, _, events = await system.while_healthy(
            sip_call(
                url,
                settings,
                player,
                out / "reply.wav",
                uri=CLINIC_URI.format(port=settings.sip.port),
                caller_user=CALLER_NUMBER,
            )
        )
        await asyncio.sleep(2.0)  # the call log catches the last events
        stop.set()
        await following
        await service.stop()
        await tools_bus.close()
        await log_bus.close()
    finally:
        await system.stop()
    call_id = next((e.call_id for e in events if getattr(e, "call_id", None)), "")
    return {"before": before, "after": calendar.row(APPOINTMENT), "call_log": call_log.row(call_id)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/demo"))
    args = parser.parse_args()
    result = asyncio.run(demo(args.out))
    print("\ncalendar, appointment 12 before the call:", json.dumps(result["before"]))
    print("calendar, appointment 12 after the call: ", json.dumps(result["after"]))
    print("call log row:", json.dumps(result["call_log"], indent=1))
    (args.out / "demo.json").write_text(json.dumps(result, indent=1))
    moved = result["after"].get("start") != result["before"].get("start")
    print("\nthe appointment was moved" if moved else "\nthe appointment was NOT moved")
    sys.exit(0 if moved else 1)


if __name__ == "__main__":
    main()
