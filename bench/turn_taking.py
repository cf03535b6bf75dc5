"""Turn-taking quality benchmark: does the agent stop at once when the caller cuts in, and go on
untroubled when the caller only says "uh-huh", coughs or the line crackles?

Real SIP calls (PCMU) into the whole system, with voxbus's reacting pjsua2 caller in voices other
than the agent's, the caller's phone echoing the agent back at -20 dB all call long. Each call asks
for answers long enough to talk over ("Tell me about ...") and, once each answer is heard, either
cuts in or makes a sound that must not interrupt:

- **interruptions** (``--interruptions``, 20 by default): short ("Stop.", "Wait.") and long ("Sorry,
  stop. What time do you open?"), with a loud onset or a soft one (-12 dB);
- **non-interruptions** (``--others``, 30): backchannels ("Uh-huh.", "Mm-hmm.", "Right."), coughs
  and line noises (clicks, crackle, a hum), at 0.4-1.6 s into the answer.

Measured from the outside, on the caller's own 20 ms clock and recording:

- barge-in stop = the last agent audio heard - the onset of the interruption (target p95 <= 300 ms);
- for the others: whether the call actor decided ``interrupt`` (a false interruption; target 0),
  how long the agent's audio was held (``playout.held`` -> ``playout.resumed`` on the gateway; target
  p95 <= 300 ms) and the longest silence the caller heard around it (natural pauses between the
  agent's clauses included, so read it beside the hold).

Items where the agent had stopped speaking before the caller's sound began are reported and left
out of the figures (nothing to interrupt). Answers are capped at 40 tokens (``agent.max_tokens``) so
that the 50 situations (ten calls of five) take about half an hour; what is judged does not
depend on their length.
Writes ``turn_taking.json`` and ``turn_taking.png``.

    python bench/turn_taking.py --profile default --out bench/results
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from latency import ECHO_GAIN, last_loud_before_gap, percentile  # noqa: E402
from ready import system_ready  # noqa: E402
from report import event_lines, pyplot, write_json  # noqa: E402

from voxbus.bus.embedded import free_port  # noqa: E402
from voxbus.config import load_settings  # noqa: E402
from voxbus.engines.models import PROFILES, models_dir  # noqa: E402
from voxbus.engines.tts import voice_engine  # noqa: E402
from voxbus.logs import setup_logging  # noqa: E402
from voxbus.media.dialogue import Dialogue, DialogueLine, DialoguePlayer, LineTiming, cough, render_line  # noqa: E402
from voxbus.media.frames import FRAME_BYTES, FRAME_MS  # noqa: E402
from voxbus.schemas.events import (  # noqa: E402
    BargeIn,
    CallStarted,
    PlayoutDone,
    PlayoutHeld,
    PlayoutResumed,
    PlayoutStarted,
)
from voxbus.supervisors.system import System  # noqa: E402

VOICES = ["espeak-ng:en-us+f2", "espeak-ng:en-gb+m3"]  # not the agent's piper voice
PER_CALL = 5
SOFT_GAIN = 0.25  # -12 dB: a caller who starts quietly, or far from the phone
SPEAKING_BEFORE_MS = 300  # agent audio within this before the onset: the agent was speaking
# silence after which the agent counts as stopped: longer than a pause between its clauses (a
# clause still being synthesised), shorter than the caller's words plus the next answer's latency
STOPPED_GAP_MS = 700
GOES_ON_S = 0.2  # the agent's answer must go on this long after the onset to be spoken over
TOPICS = [
    "the history of Rome", "how bees make honey", "the planet Mars", "how a car engine works",
    "the life of a lighthouse keeper", "how bread is baked", "the oceans of the world",
    "the history of the telephone", "how trains work", "the city of Paris", "volcanoes",
    "how rain forms", "the Great Wall of China", "elephants", "how a bicycle works",
    "the moon landing", "coffee and where it grows", "the history of chess", "penguins",
    "how a library is organised", "the Amazon river", "how glass is made", "the pyramids of Egypt",
    "the seasons of the year", "how a violin is played", "dinosaurs", "the history of the bicycle",
    "how cheese is made", "the Northern Lights", "the invention of paper", "whales",
    "how bridges are built", "the history of the post office", "tea and where it grows",
    "how a clock works", "the solar system", "the history of maps", "how plants grow",
    "the city of Tokyo", "how a sailing boat works", "the history of music", "owls",
    "how a dam works", "the Sahara desert", "the history of the calendar", "honeybees in winter",
    "how a piano works", "the history of football", "how snow forms", "the Roman roads",
]  # fmt: skip
SHORT_STOPS = ["Stop.", "Wait.", "Hold on.", "Sorry, stop.", "No, wait."]
LONG_STOPS = [
    "Sorry, stop. What time do you open tomorrow?",
    "Wait, wait. Can I book for Friday instead?",
    "Hold on, I only need your address please.",
    "Sorry to cut in, how much does it cost?",
    "Stop please, can you tell me about parking?",
]
BACKCHANNELS = ["Uh-huh.", "Mm-hmm.", "Yeah.", "Okay.", "Right.", "I see.", "Sure.", "Yes.", "Got it."]
NOISES = ["cough", "click", "crackle", "hum"]


def line_noise(kind: str, seed: int) -> bytes:
    """Sounds of a phone line and a room that are not speech: 16 kHz mono int16."""
    rng = np.random.default_rng(seed)
    if kind == "cough":
        return cough(seconds=float(rng.uniform(0.2, 0.45)), seed=seed)
    if kind == "click":  # a handset knocked, a button pressed: 20 ms
        n = 320
        pcm = rng.normal(0, 9000, n) * np.exp(-np.linspace(0, 8, n))
    elif kind == "crackle":  # a bad line: sparse impulses over 400 ms
        n = 6400
        pcm = np.zeros(n)
        hits = rng.integers(0, n - 40, size=int(rng.integers(8, 20)))
        for hit in hits:
            pcm[hit : hit + 40] += rng.normal(0, 7000, 40) * np.exp(-np.linspace(0, 5, 40))
    else:  # hum: mains interference, 500 ms
        n = 8000
        t = np.arange(n) / 16000
        pcm = 4000 * (np.sin(2 * np.pi * 50 * t) + 0.5 * np.sin(2 * np.pi * 150 * t))
    return np.clip(pcm, -32767, 32767).astype(np.int16).tobytes()


def to_frames(pcm: bytes, gain: float = 1.0) -> list[bytes]:
    if gain != 1.0:
        pcm = (np.frombuffer(pcm, dtype=np.int16) * gain).astype(np.int16).tobytes()
    pcm += bytes(-len(pcm) % FRAME_BYTES)
    return [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]


def plan(interruptions: int, others: int, seed: int) -> list[dict[str, Any]]:
    """The situations, in a shuffled order: what the caller does over each answer."""
    if interruptions + others > len(TOPICS):
        raise ValueError(f"at most {len(TOPICS)} situations: each answer is about a topic of its own")
    rng = random.Random(seed)
    items: list[dict[str, Any]] = []
    for i in range(interruptions):
        long = i % 2 == 1
        text = (LONG_STOPS if long else SHORT_STOPS)[(i // 2) % 5]
        onset = "soft" if (i // 2) % 2 else "loud"
        items.append(
            {"kind": "interruption", "class": f"{'long' if long else 'short'}, {onset}", "text": text}
        )
    for i in range(others):
        if i % 2 == 0:
            items.append(
                {"kind": "other", "class": "backchannel", "text": BACKCHANNELS[(i // 2) % len(BACKCHANNELS)]}
            )
        else:
            noise = NOISES[(i // 2) % len(NOISES)]
            items.append({"kind": "other", "class": noise, "text": f"noise:{noise}"})
    rng.shuffle(items)
    topics = rng.sample(TOPICS, len(items))
    for item, topic in zip(items, topics, strict=True):
        item["question"] = f"Tell me about {topic}."
        item["gap_s"] = round(rng.uniform(0.4, 1.6), 2)
    return items


def dialogue_of(items: list[dict[str, Any]]) -> Dialogue:
    lines = []
    for item in items:
        lines.append(DialogueLine(text=item["question"]))
        role = (
            "interrupt"
            if item["kind"] == "interruption"
            else ("backchannel" if item["class"] == "backchannel" else "noise")
        )
        lines.append(DialogueLine(text=item["text"], when="during_reply", gap_s=item["gap_s"], role=role))
    lines.append(DialogueLine(text="Thank you, that is all."))
    return Dialogue(lines=lines, settle_s=4.0)


def render(items: list[dict[str, Any]], dialogue: Dialogue, engine: Any, seed: int) -> list[list[bytes]]:
    """The audio of each line: a question and a situation per item, then the goodbye."""
    lines = dialogue.lines
    rendered = []
    for k, item in enumerate(items):
        question, situation = lines[2 * k], lines[2 * k + 1]
        rendered.append(render_line(question, engine))
        if item["text"].startswith("noise:"):
            rendered.append(to_frames(line_noise(item["class"], seed * 1000 + k)))
        else:
            gain = SOFT_GAIN if item["class"].endswith("soft") else 1.0
            rendered.append(to_frames(b"".join(render_line(situation, engine)), gain))
    rendered.append(render_line(lines[-1], engine))
    return rendered


def was_speaking(loud: np.ndarray, tick: int) -> bool:
    before = loud[(loud < tick) & (loud >= tick - SPEAKING_BEFORE_MS // FRAME_MS)]
    return len(before) > 0


def playing_at(events: list[Any], t0: float, at_s: float) -> bool:
    """A generation of the agent was playing at ``at_s`` on the caller's clock: started, not done
    (its audio may be between two clauses, but it is the agent's turn to speak)."""
    started = {e.gen for e in events if isinstance(e, PlayoutStarted) and e.ts - t0 <= at_s}
    done = {e.gen for e in events if isinstance(e, PlayoutDone) and e.ts - t0 <= at_s}
    return bool(started - done)


def longest_quiet_ms(loud: np.ndarray, start: int, end: int) -> int:
    """The longest run of silence between two loud ticks inside [start, end] (ms)."""
    inside = loud[(loud >= start) & (loud <= end)]
    if len(inside) < 2:
        return 0
    return int((np.diff(inside).max() - 1) * FRAME_MS)


def score(
    timing: LineTiming, item: dict[str, Any], loud: np.ndarray, events: list[Any], t0: float
) -> dict[str, Any]:
    """One situation, from the caller's recording and the call's events (their ``ts`` in epoch s,
    ``t0`` the caller's tick 0)."""
    row: dict[str, Any] = {"kind": item["kind"], "class": item["class"], "text": item["text"]}
    start_s, end_s = timing.start_s, timing.end_s
    row["start_s"], row["end_s"] = round(start_s, 2), round(end_s, 2)
    # an answer that ended by itself as the caller began was not cut into: nothing to stop or hold
    row["agent_speaking"] = playing_at(events, t0, start_s) and playing_at(events, t0, start_s + GOES_ON_S)
    row["audio_before_onset"] = was_speaking(loud, timing.start_tick)  # not between two clauses
    barges = [e for e in events if isinstance(e, BargeIn) and start_s - 0.3 <= e.onset_ts - t0 <= end_s + 0.5]
    row["decisions"] = [f"{b.decision}: {b.reason}" for b in barges]
    row["heard"] = [b.text for b in barges]
    interrupted = any(b.decision == "interrupt" for b in barges)
    if item["kind"] == "interruption":
        last = last_loud_before_gap(loud, timing.start_tick, STOPPED_GAP_MS // FRAME_MS)
        row["stopped"] = interrupted
        row["stop_ms"] = None if last is None else (last + 1 - timing.start_tick) * FRAME_MS
        return row
    row["false_interruption"] = interrupted
    window = (start_s - 0.1, end_s + 1.5)
    holds = [e for e in events if isinstance(e, PlayoutHeld) and window[0] <= e.ts - t0 <= window[1]]
    held_ms = 0.0
    for hold in holds:
        resumed = next(
            (e for e in events if isinstance(e, PlayoutResumed) and e.gen == hold.gen and e.ts >= hold.ts),
            None,
        )
        if resumed is not None:
            held_ms = max(held_ms, (resumed.ts - hold.ts) * 1000)
    row["held_ms"] = round(held_ms, 1)
    end_tick = timing.end_tick + int(1500 / FRAME_MS)
    row["longest_quiet_ms"] = longest_quiet_ms(
        loud, timing.start_tick - SPEAKING_BEFORE_MS // FRAME_MS, end_tick
    )
    return row


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    cuts = [r for r in rows if r["kind"] == "interruption" and r["agent_speaking"]]
    others = [r for r in rows if r["kind"] == "other" and r["agent_speaking"]]
    stops = [r["stop_ms"] for r in cuts if r["stop_ms"] is not None]
    # an interruption taken for a backchannel "stops" when the answer ends: judged ones apart
    judged = [r["stop_ms"] for r in cuts if r["stop_ms"] is not None and r["stopped"]]
    holds = [r["held_ms"] for r in others]
    quiet = [r["longest_quiet_ms"] for r in others]
    backchannel_holds = [r["held_ms"] for r in others if r["class"] == "backchannel"]
    return {
        "interruptions": len(cuts),
        "interruptions_stopped": sum(r["stopped"] for r in cuts),
        "barge_in_stop_p50_ms": percentile(stops, 50),
        "barge_in_stop_p95_ms": percentile(stops, 95),
        "barge_in_stop_max_ms": max(stops) if stops else None,
        "stopped_stop_p50_ms": percentile(judged, 50),
        "stopped_stop_p95_ms": percentile(judged, 95),
        "others": len(others),
        "false_interruptions": sum(r["false_interruption"] for r in others),
        "held_p50_ms": percentile(holds, 50),
        "held_p95_ms": percentile(holds, 95),
        "held_max_ms": max(holds) if holds else None,
        # the target's figure: noises are mostly never held, and would halve the median
        "backchannel_held_p50_ms": percentile(backchannel_holds, 50),
        "backchannel_held_p95_ms": percentile(backchannel_holds, 95),
        "longest_quiet_p50_ms": percentile(quiet, 50),
        "longest_quiet_p95_ms": percentile(quiet, 95),
        "left_out_agent_silent": sum(not r["agent_speaking"] for r in rows),
    }


async def one_call(
    url: str, settings: Any, voice: str, items: list[dict[str, Any]], out: Path, seed: int, echo_gain: float
) -> list[dict[str, Any]]:
    from voxbus.commands import sip_call

    dialogue = dialogue_of(items)
    player = DialoguePlayer(dialogue, render(items, dialogue, voice_engine(voice, settings.tts), seed))
    user = f"turns{seed}"
    heard, _, events = await sip_call(
        url,
        settings,
        player,
        out / f"heard-turns-{seed}.wav",
        echo_gain=echo_gain,
        quiet=True,
        caller_user=user,
    )
    call_id = next((e.call_id for e in events if isinstance(e, CallStarted) and user in e.caller), None)
    mine = [e for e in events if getattr(e, "call_id", None) == call_id]
    loud, t0 = heard.loud_frames(), heard.first_tick_ts or 0.0
    with (out / f"events-turns-{seed}.jsonl").open("w") as f:  # for a closer look at any situation
        f.writelines(event_lines(mine, t0))
        f.write(json.dumps({"lines": [t.model_dump() for t in player.timings]}) + "\n")
    situations = [t for t in player.timings if t.role != "question"]
    rows = []
    for timing, item in zip(situations, items, strict=False):
        row = score(timing, item, loud, mine, t0)
        rows.append({"voice": voice, "gap_s": item["gap_s"], **row})
    return rows


async def run(
    profile: str, interruptions: int, others: int, out: Path, seed: int, echo_gain: float = ECHO_GAIN
) -> dict[str, Any]:
    os.environ.update(
        {
            "VOXBUS_PROFILE": profile,
            "VOXBUS_DATA_DIR": str(out / f"data-turns-{profile}"),
            "VOXBUS_SIP__PORT": str(free_port()),
            "VOXBUS_SIP__RTP_PORT": str(30000 + free_port() % 15000 // 2 * 2),
            "VOXBUS_AGENT__MAX_TOKENS": "40",
        }
    )
    settings = load_settings()
    items = plan(interruptions, others, seed)
    # voxbus's SIP caller ends a call after 300 s: five situations (with long answers) fit in that
    calls = [items[i : i + PER_CALL] for i in range(0, len(items), PER_CALL)]
    system = System(settings)
    url = await system.start()
    rows: list[dict[str, Any]] = []
    started = time.monotonic()
    try:
        await system.while_healthy(system_ready(system))
        for index, share in enumerate(calls):
            voice = VOICES[index % len(VOICES)]
            print(f"  call {index + 1}/{len(calls)}: {voice}, {len(share)} situations...", flush=True)
            call = one_call(url, settings, voice, share, out, seed * 100 + index, echo_gain)
            rows += await system.while_healthy(call)
    finally:
        await system.stop()
    return {
        "profile": profile,
        "rows": rows,
        "summary": summarise(rows),
        "wall_s": round(time.monotonic() - started, 1),
    }


def plot(result: dict[str, Any], path: Path) -> None:
    plt = pyplot()

    rows = [r for r in result["rows"] if r["agent_speaking"]]
    cuts = [r for r in rows if r["kind"] == "interruption"]
    others = [r for r in rows if r["kind"] == "other"]
    s = result["summary"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 5.5))
    colours = {
        "short, loud": "#08519c",
        "short, soft": "#6baed6",
        "long, loud": "#a63603",
        "long, soft": "#fd8d3c",
    }
    for i, r in enumerate(cuts):
        left.bar(i, r["stop_ms"] or 0, color=colours.get(r["class"], "grey"), label=r["class"])
        if not r["stopped"]:
            left.annotate("not\nstopped", (i, (r["stop_ms"] or 0) + 20), ha="center", fontsize=7)
    left.axhline(300, color="k", ls="--", lw=1, label="target p95 300 ms")
    handles = dict(zip(*reversed(left.get_legend_handles_labels()), strict=False))
    left.legend(handles.values(), handles.keys(), fontsize=8)
    left.set_title(
        f"interruptions: barge-in stop p50 {s['barge_in_stop_p50_ms']} / p95 {s['barge_in_stop_p95_ms']} ms, "
        f"{s['interruptions_stopped']}/{s['interruptions']} stopped",
        fontsize=10,
    )
    left.set_ylabel("ms from the caller's onset to the last agent audio heard")
    left.set_xlabel("interruption")
    kinds = {
        "backchannel": "#31a354",
        "cough": "#756bb1",
        "click": "#969696",
        "crackle": "#636363",
        "hum": "#bcbddc",
    }
    for i, r in enumerate(others):
        right.bar(i, r["held_ms"], color=kinds.get(r["class"], "grey"), label=r["class"])
        right.plot(i, r["longest_quiet_ms"], "k_", markersize=10)
        if r["false_interruption"]:
            right.annotate("X", (i, r["held_ms"] + 20), ha="center", color="red")
    right.axhline(300, color="k", ls="--", lw=1)
    handles = dict(zip(*reversed(right.get_legend_handles_labels()), strict=False))
    right.legend(handles.values(), handles.keys(), fontsize=8)
    right.set_title(
        f"backchannels and noises: {s['false_interruptions']} false interruptions of {s['others']}, "
        f"agent held p95 {s['held_p95_ms']} ms\n(bars: audio held; ticks: longest silence heard, "
        "natural pauses included)",
        fontsize=10,
    )
    right.set_ylabel("ms")
    right.set_xlabel("backchannel or noise")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=list(PROFILES), default="default")
    parser.add_argument("--interruptions", type=int, default=20)
    parser.add_argument("--others", type=int, default=30, help="backchannels and noises")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument(
        "--echo-gain", type=float, default=ECHO_GAIN, help="the caller's phone echo (0: a line with none)"
    )
    parser.add_argument("--name", default="turn_taking", help="the result files' name")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    setup_logging("warning")
    os.environ.setdefault("VOXBUS_MODEL_DIR", str(models_dir(load_settings())))
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    print(
        f"profile {args.profile}: {args.interruptions} interruptions, {args.others} others over SIP...",
        flush=True,
    )
    result = asyncio.run(
        run(args.profile, args.interruptions, args.others, args.out, args.seed, args.echo_gain)
    )
    report = {
        "echo_gain": args.echo_gain,
        "soft_gain": SOFT_GAIN,
        "voices": VOICES,
        **result,
    }
    write_json(args.out / f"{args.name}.json", report)
    plot(result, args.out / f"{args.name}.png")
    print(json.dumps(result["summary"], indent=2))
    print(f"wrote {args.out / args.name}.json and .png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
