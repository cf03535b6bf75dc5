"""The clinic scenario over SIP: does the caller get their appointment moved, and how long do they
wait for the holding phrase and for the confirmation?

Ten SIP calls to the clinic's number (examples/clinic, its agent profile, the default model), each
a patient asking to move their appointment to a given day and time (a caller reacting to the agent:
it speaks once the greeting is over), in voices other than the agent's (``--voices``, taken in
turn; the agent's own piper voice is the easy case and is not among them by default). Per call:
the calendar afterwards (success: the appointment at the asked time; moved wrongly: at a time
nobody asked for), the tool calls, the calls not made because their day or time was not said
(the agent then asks), and from the end of the caller's request to the first agent audio heard
(the holding phrase, when one is said) and to the answer after it. Once the agent has answered,
the caller says the day and time again ("Friday at nine."), as a caller asked which time they
meant would; after a confirmation the agent takes it in its stride.

    python bench/clinic_calls.py --out bench/results [--calls 10] [--voices espeak-ng:en-us+f2,...]

Writes clinic_calls.json and clinic_calls.png (``--name``: another name, for a variant's run).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "clinic"))
os.environ.setdefault("VOXBUS_CONFIG", str(ROOT / "examples" / "clinic" / "voxbus.toml"))

from calendar_db import Calendar, resolve_day  # noqa: E402
from calendar_service import build_service  # noqa: E402
from ready import system_ready  # noqa: E402
from report import event_lines, pyplot, write_json  # noqa: E402

from voxbus.bus.connection import Bus  # noqa: E402
from voxbus.config import load_settings  # noqa: E402
from voxbus.engines.tts import VoiceEngine, voice_engine  # noqa: E402
from voxbus.media.dialogue import Dialogue, DialogueLine, DialoguePlayer, render_line  # noqa: E402
from voxbus.media.frames import FRAME_MS  # noqa: E402
from voxbus.schemas.events import SttFinal, ToolCalled, ToolFailed  # noqa: E402
from voxbus.supervisors.system import System, grant  # noqa: E402

REQUESTS = [
    ("Hello. Please move my appointment to Friday at eleven thirty.", "friday", "11:30"),
    ("Hi, can you move my appointment to Monday at ten?", "monday", "10:00"),
    ("I need to move my check-up to Wednesday at two in the afternoon.", "wednesday", "14:00"),
    ("Could you change my appointment to Friday at nine?", "friday", "09:00"),
    ("Please move my appointment to Tuesday at half past ten.", "tuesday", "10:30"),
    ("Hello, I'd like to move my appointment to Monday at one thirty.", "monday", "13:30"),
    ("Can I move my appointment to Thursday at four?", "thursday", "16:00"),
    ("Please reschedule my appointment to Wednesday at noon.", "wednesday", "12:00"),
    ("Hi, move my appointment to Friday at three please.", "friday", "15:00"),
    ("Could you put my appointment on Monday at eleven thirty instead?", "monday", "11:30"),
]
WHEN = re.compile(r"\b(?:Mon|Tues|Wednes|Thurs|Fri)day\b.*?(?=( please| instead)?[.?!]$)")


def repeated(said: str) -> str:
    """The day and time of a request, as a caller says them again when asked ("Friday at nine.")."""
    found = WHEN.search(said)
    assert found is not None, said
    return f"{found.group()}."


PATIENT = "+15551234567"
VOICES = ("espeak-ng:en-us+f2", "espeak-ng:en-gb+m3")  # as in bench/turn_taking.py
GAP_TICKS = 15  # 300 ms of quiet separates the holding phrase from the answer


def segments(loud: np.ndarray, after: int) -> list[int]:
    """Starts of the loud stretches after ``after`` (ticks)."""
    later = loud[loud >= after]
    if not len(later):
        return []
    return [int(later[0])] + [
        int(t) for t, gap in zip(later[1:], np.diff(later), strict=True) if gap > GAP_TICKS
    ]


async def one_call(system: System, settings: Any, voice: VoiceEngine, said: str, out: Path) -> dict[str, Any]:
    """The request, and once the agent has answered, the day and time again: what a caller says
    when asked which time they meant, and otherwise a confirmation the agent takes in its stride."""
    from voxbus.commands import sip_call

    lines = [DialogueLine(text=said), DialogueLine(text=repeated(said))]
    dialogue = Dialogue(lines=lines, settle_s=120.0)
    player = DialoguePlayer(dialogue, [render_line(line, voice) for line in dialogue.lines])
    uri = f"sip:2000@127.0.0.1:{settings.sip.port}"
    heard, _, events = await sip_call(
        system.url, settings, player, out, uri, quiet=True, caller_user=PATIENT, end_after_turn=2
    )
    out.with_suffix(".events.jsonl").write_text("".join(event_lines(events, heard.first_tick_ts or 0.0)))
    end = player.timings[0].end_tick
    starts = segments(heard.loud_frames(), end)
    holding = settings_agent(settings).tool_holding_phrase
    said_holding = any(getattr(e, "text", "") == holding for e in events)
    first = (starts[0] - end) * FRAME_MS if starts else None
    answer = first
    if said_holding and starts:
        # the holding phrase has pauses of its own ("One moment, let me check."): the answer is the
        # first stretch of agent audio that starts after the whole phrase has been played
        after = starts[0] + holding_ticks(settings, holding) - GAP_TICKS  # less its own silences
        answer = next(((t - end) * FRAME_MS for t in starts if t >= after), None)
    calls = [(e.name, e.arguments) for e in events if isinstance(e, ToolCalled) and e.name != "find_patient"]
    heard_words = [e.text for e in events if isinstance(e, SttFinal)]  # what whisper made of the caller
    not_said = [e.error for e in events if isinstance(e, ToolFailed) and e.failure == "not_said"]
    return {"said": said, "heard": heard_words, "tool_calls": calls, "first_audio_ms": first,
            "holding_phrase": said_holding, "answer_ms": answer, "not_said": not_said}  # fmt: skip


_PHRASE_TICKS: dict[str, int] = {}


def holding_ticks(settings: Any, phrase: str) -> int:
    """How many 20 ms frames the agent's voice takes to say ``phrase``."""
    if phrase not in _PHRASE_TICKS:
        from voxbus.engines.models import model_path
        from voxbus.engines.tts import PiperEngine

        voice = PiperEngine(model_path(settings, "tts"), settings.tts)
        _PHRASE_TICKS[phrase] = len(list(voice.frames(phrase)))
    return _PHRASE_TICKS[phrase]


def settings_agent(settings: Any) -> Any:
    from voxbus.profiles import Profiles

    return Profiles(settings).pick("2000")[1]


async def run(calls: int, out: Path, voices: list[str]) -> dict[str, Any]:
    settings = load_settings()
    engines = [voice_engine(voice, settings.tts) for voice in voices]
    (out / "clinic.sqlite").unlink(missing_ok=True)  # every run from the same seeded calendar
    calendar = Calendar(out / "clinic.sqlite")
    calendar.seed(date.today())
    # at a time no request asks for: otherwise, on the days the seeded booking falls on a requested
    # slot ("Monday at ten" on a Thursday), doing nothing would count as success
    original = f"{calendar.row(12)['start'][:10]} 16:30"
    system = System(settings)
    await system.start()
    rows = []
    try:
        # the clinic's tools are up before the workers serve, as a clinic's would be: the agent
        # finds them, and the calls start once the LLM has evaluated the agents' prompts with
        # them (a call placed earlier would evaluate its prompt first: ~10 s on two cores)
        served = ("find_patient", "list_free_slots", "reschedule", "book", "cancel")
        tools_bus = Bus(
            system.url, "clinic-calendar", creds=grant(settings, "tools", "clinic-calendar", tools=served)
        )
        await tools_bus.connect(attempts=5)
        service = build_service(calendar)
        await service.start(tools_bus.nc)
        print(f"the LLM worker was idle {await system_ready(system):.0f} s after serving", flush=True)
        seeded = calendar.db.execute("SELECT max(id) FROM appointments").fetchone()[0]
        for n, (said, day, time) in enumerate(REQUESTS[:calls], start=1):
            calendar.db.execute(
                "UPDATE appointments SET start = ?, status = 'booked', changed = '' WHERE id = 12",
                (original,),
            )
            calendar.db.execute("DELETE FROM appointments WHERE id > ?", (seeded,))  # the last call's
            expected = f"{resolve_day(day, date.today())} {time}"
            # the asked time free, as each request means it: the seed's other bookings fill 09:30,
            # 11:00 and 15:00 of the coming week, so "Friday at three" could never be moved to, and
            # an agent that rightly said so counted as a failure
            calendar.db.execute(
                "UPDATE appointments SET status = 'cancelled' WHERE start = ? AND id != 12", (expected,)
            )
            voice = (n - 1) % len(voices)
            row = await one_call(system, settings, engines[voice], said, out / f"heard-clinic-{n}.wav")
            row["voice"] = voices[voice]
            row |= {"expected": expected, "calendar": calendar.row(12)["start"]}
            row["success"] = row["calendar"] == expected
            row["moved_wrongly"] = row["calendar"] not in (expected, original)  # a time nobody asked for
            booked = calendar.db.execute("SELECT count(*) FROM appointments WHERE id > ?", (seeded,))
            row["booked_extra"] = booked.fetchone()[0]  # a second appointment, besides the move
            row["cancelled"] = calendar.row(12)["status"] == "cancelled"  # nobody asked to cancel
            row["success"] = row["success"] and not row["cancelled"]
            rows.append(row)
            mark = "ok " if row["success"] else "BAD"
            timing = f"first audio {row['first_audio_ms']} ms, answer {row['answer_ms']} ms"
            print(f"{mark} {said[:60]:60} -> {row['calendar']} ({timing})", flush=True)
        await service.stop()
        await tools_bus.close()
    finally:
        await system.stop()
    firsts = [r["first_audio_ms"] for r in rows if r["first_audio_ms"] is not None]
    answers = [r["answer_ms"] for r in rows if r["answer_ms"] is not None]
    return {
        "calls": len(rows), "success": sum(r["success"] for r in rows),
        "moved_wrongly": sum(r["moved_wrongly"] for r in rows),
        "booked_extra": sum(r["booked_extra"] for r in rows),
        "cancelled": sum(r["cancelled"] for r in rows),
        "asked_again": sum(bool(r["not_said"]) for r in rows),
        "first_audio_ms_median": statistics.median(firsts) if firsts else None,
        "answer_ms_median": statistics.median(answers) if answers else None,
        "holding_phrases": sum(r["holding_phrase"] for r in rows), "voices": voices, "rows": rows,
    }  # fmt: skip


def plot(result: dict[str, Any], path: Path) -> None:
    plt = pyplot()

    rows = result["rows"]
    fig, ax = plt.subplots(figsize=(9, 4))
    x = range(1, len(rows) + 1)
    ax.bar(
        [i - 0.2 for i in x],
        [r["first_audio_ms"] or 0 for r in rows],
        0.4,
        label="first agent audio (holding phrase)",
    )
    ax.bar([i + 0.2 for i in x], [r["answer_ms"] or 0 for r in rows], 0.4, label="the answer after the tool")
    for i, r in zip(x, rows, strict=True):
        mark, colour = ("ok", "green") if r["success"] else ("x", "grey")
        if r["moved_wrongly"]:
            mark, colour = "wrong", "red"
        ax.text(i, 50, mark, ha="center", color=colour)
    ax.set_xlabel("call")
    ax.set_ylabel("ms after the end of the caller's request")
    title = f"Clinic calls over SIP: {result['success']}/{result['calls']} moved as asked"
    ax.set_title(f"{title}, {result['moved_wrongly']} to a time not asked for")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument(
        "--voices",
        default=",".join(VOICES),
        help="callers' voices, comma-separated: espeak-ng:VOICE, flite:VOICE or a piper .onnx",
    )
    parser.add_argument("--name", default="clinic_calls", help="file name of the figures (JSON, PNG)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(os.environ.get("TMPDIR", "/tmp")) / "voxbus-clinic-bench"
    work.mkdir(exist_ok=True)
    result = asyncio.run(run(args.calls, work, args.voices.split(",")))
    write_json(args.out / f"{args.name}.json", result)
    plot(result, args.out / f"{args.name}.png")
    medians = (
        f"median first audio {result['first_audio_ms_median']} ms, answer {result['answer_ms_median']} ms"
    )
    wrong = f"{result['moved_wrongly']} moved to a time not asked for, {result['asked_again']} asked again"
    wrong += f", {result['booked_extra']} extra bookings, {result['cancelled']} cancelled"
    print(f"{result['success']}/{result['calls']} moved as asked; {wrong}; {medians}")


if __name__ == "__main__":
    main()
