"""Latency benchmark: a scripted conversation over a real SIP call into the whole system, per
model profile, against the engines' own floor on this machine.

The caller is voxbus's pjsua2 caller reacting to what it hears (``voxbus.media.dialogue``), with
the lines of ``--dialogue`` (``bench/dialogues.py``): ``questions`` (ten, among them one that
interrupts the agent, a backchannel and a cough during an answer, and a hesitant turn with a pause
mid-sentence) or ``appointment`` (a patient moving an appointment: long turns with a name, days and
times); the caller's phone echoes the agent back at -20 dB all call long. For each turn, from the
caller's own recording on its 20 ms clock:

- perceived latency = first agent audio heard - end of the caller's speech (known from the script);
- barge-in stop = last agent audio heard - onset of the interrupting speech;

and from the turn's ``turn.metrics`` event, its stage times. Then, in the same run, the same engines
are called directly in this process (whisper on the turn's audio, the LLM to its first clause with
the conversation's prefix evaluated, piper on that clause): the critical-path floor. Writes
``latency.json`` and ``latency.png``.

    python bench/latency.py --profile test --profile default --out bench/results

Settings to compare in one run: each label of ``--variant LABEL:VAR=VALUE`` runs every profile
again with its environment settings (``VOXBUS_...``; repeat a label for several; ``LABEL:`` alone
for the defaults), e.g. the first-clause features off against on:

    python bench/latency.py --profile default --variant before:VOXBUS_AGENT__OPENER_CLAUSES=false \
        --variant before:VOXBUS_TTS__CACHE_ENTRIES=0 --variant after: --caller-voice espeak-ng:en-us+f2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from dialogues import DIALOGUES, QUESTIONS
from latency_plot import STAGES, plot
from ready import system_ready
from report import write_json

from voxbus.bus.embedded import free_port
from voxbus.config import Settings, load_settings
from voxbus.engines.models import PROFILES, model_path, models_dir
from voxbus.engines.tts import PiperEngine, VoiceEngine, voice_engine
from voxbus.logs import setup_logging
from voxbus.media.dialogue import Dialogue, DialoguePlayer, LineTiming, render_line
from voxbus.media.frames import FRAME_MS, to_float
from voxbus.schemas.events import BargeIn, LlmFirstToken, PlayoutDone, SttFinal, TurnMetrics
from voxbus.supervisors.system import System

ECHO_GAIN = 0.1  # the caller's phone returns the agent's voice at -20 dB, 60 ms late
DIALOGUE = QUESTIONS  # the default caller


def answered_lines(timings: list[LineTiming]) -> list[LineTiming]:
    """The lines that end a caller turn the agent answers (a hesitation continues in the next)."""
    return [t for t in timings if t.role in ("question", "interrupt")]


def next_start(answered: list[LineTiming], turn: int) -> float:
    return answered[turn].start_s if turn < len(answered) else float("inf")


def metrics_of_line(events: list[Any], end_ts: float, next_ts: float) -> TurnMetrics | None:
    """The metrics of the turn a line ended: by the first transcript after it, which ends the
    turn's words (a turn grows over the caller's inner pauses: "Great." "And a lot." "Thank you")."""
    final = next((e for e in events if isinstance(e, SttFinal) and e.text and end_ts <= e.ts < next_ts), None)
    if final is None:
        return None
    said = final.text.strip()
    return next(
        (
            m
            for m in events
            if isinstance(m, TurnMetrics) and m.ts >= final.ts and m.user_text.strip().endswith(said)
        ),
        None,
    )


def first_loud_after(loud: np.ndarray, tick: int) -> int | None:
    later = loud[loud >= tick]
    return int(later[0]) if len(later) else None


def last_loud_before_gap(loud: np.ndarray, tick: int, gap_ticks: int = 15) -> int | None:
    """The last loud tick after ``tick`` before the first silence of ``gap_ticks`` (300 ms); the
    tick before ``tick`` if that silence starts there (the agent was quiet already: between two
    clauses, or done), not the end of whatever it says next."""
    later = loud[loud >= tick]
    if not len(later):
        return None
    later = np.concatenate(([tick - 1], later))
    gaps = np.flatnonzero(np.diff(later) > gap_ticks)
    return int(later[gaps[0]] if len(gaps) else later[-1])


async def sip_conversation(
    settings: Settings, caller: VoiceEngine, out: Path, dialogue: Dialogue = QUESTIONS
) -> dict[str, Any]:
    from voxbus.commands import sip_call

    player = DialoguePlayer(dialogue, [render_line(line, caller) for line in dialogue.lines])
    system = System(settings)
    url = await system.start()
    try:
        await system.while_healthy(system_ready(system))
        started = time.monotonic()
        heard, _, events = await system.while_healthy(
            sip_call(url, settings, player, out, echo_gain=ECHO_GAIN, quiet=True)
        )
        wall = time.monotonic() - started
    finally:
        await system.stop()
    return {"heard": heard, "timings": player.timings, "events": events, "wall_s": wall, "player": player}


def turn_rows(run: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    heard, timings, events = run["heard"], run["timings"], run["events"]
    loud = heard.loud_frames()
    t0 = heard.first_tick_ts or 0.0
    answered = answered_lines(timings)
    rows = []
    for turn, line in enumerate(answered, start=1):
        onset = first_loud_after(loud, line.end_tick)
        before = timings[timings.index(line) - 1] if timings.index(line) > 0 else None
        said = (
            f"{before.text} {line.text}" if before is not None and before.role == "hesitation" else line.text
        )
        row: dict[str, Any] = {
            "turn": turn,
            "caller": said,
            "role": line.role,
            "speech_end_s": round(line.end_s, 3),
            "perceived_ms": None if onset is None else (onset - line.end_tick) * FRAME_MS,
        }
        m = metrics_of_line(events, t0 + line.end_s, t0 + next_start(answered, turn))
        if m is not None:
            row |= m.model_dump(
                include={
                    "user_text", "agent_text", "vad_decision_ms", "stt_final_ms", "llm_first_token_ms",
                    "first_clause_ms", "tts_first_frame_ms", "first_audio_ms", "stt_compute_ms",
                    "llm_compute_ms", "tts_compute_ms", "orchestration_ms", "bus_ms", "interrupted",
                    "turn_end", "speculative", "retries", "early_opener",
                }
            )  # fmt: skip
            # what the LLM evaluated before the answer's first token (its cache held the rest)
            first = next((e for e in events if isinstance(e, LlmFirstToken) and e.gen == m.gen), None)
            row["llm_prompt_tokens"] = first.prompt_tokens if first is not None else None
        rows.append(row)
    barges = [e for e in events if isinstance(e, BargeIn)]
    interrupt = next((t for t in timings if t.role == "interrupt"), None)
    checks: dict[str, Any] = {
        "barge_ins": [b.model_dump(include={"decision", "reason", "text", "held_ms"}) for b in barges]
    }
    if interrupt is not None:
        last = last_loud_before_gap(loud, interrupt.start_tick)
        checks["barge_in_stop_ms"] = None if last is None else (last + 1 - interrupt.start_tick) * FRAME_MS
        window = (interrupt.start_s - 0.5, interrupt.end_s + 0.5)
        checks["interrupted"] = any(
            b.decision == "interrupt" and window[0] <= b.onset_ts - heard.first_tick_ts <= window[1]
            for b in barges
        )
    intended = 1 if checks.get("interrupted") else 0
    checks["false_interruptions"] = sum(b.decision == "interrupt" for b in barges) - intended
    backchannel = next((t for t in timings if t.role == "backchannel"), None)
    if backchannel is not None:
        # the answer that was playing when the caller said it must have played to its end
        at = backchannel.start_s + heard.first_tick_ts
        done = [e for e in events if isinstance(e, PlayoutDone) and e.ts > at]
        checks["backchannel_answer_complete"] = bool(done) and done[0].complete
    if any(t.role == "hesitation" for t in timings):  # the questions' "book a table, um ... at seven"
        metrics = [m for m in events if isinstance(m, TurnMetrics)]
        hesitant = next((m for m in metrics if "book" in m.user_text.lower()), None)
        checks["hesitant_turn_whole"] = hesitant is not None and "seven" in hesitant.user_text.lower()
    return rows, checks


def floor(settings: Settings, timings: list[LineTiming], player: DialoguePlayer) -> list[dict[str, float]]:
    """The engines alone, in this process: whisper on each answered turn's audio, the LLM to the
    first clause (its conversation's prefix evaluated beforehand, as voxbus keeps it warm), piper
    to the first audio of that clause."""
    from voxbus.actors.clauses import ClauseSplitter
    from voxbus.engines.llm import LlamaEngine
    from voxbus.engines.stt import WhisperEngine
    from voxbus.schemas.messages import ChatMessage

    whisper = WhisperEngine(model_path(settings, "stt"), settings.stt)
    llm = LlamaEngine(model_path(settings, "llm"), settings.llm)
    piper = PiperEngine(model_path(settings, "tts"), settings.tts)
    agent = settings.agent
    history = [
        ChatMessage(role="system", content=agent.system_prompt),
        ChatMessage(role="assistant", content=agent.greeting),
    ]
    audio_of = {id(t): i for i, t in enumerate(timings)}
    out = []
    for line in answered_lines(timings):
        index = audio_of[id(line)]
        pieces = [player.rendered[index]]
        if index > 0 and timings[index - 1].role == "hesitation":
            pieces.insert(0, player.rendered[index - 1])
        pcm = b"".join(b"".join(p) for p in pieces)
        audio = np.concatenate([np.zeros(3200, np.float32), to_float(pcm), np.zeros(1920, np.float32)])
        heard = whisper.transcribe(audio)
        text, stt_s = heard.text, heard.compute_s
        llm.warm(history)
        messages = [*history, ChatMessage(role="user", content=text)]
        splitter = ClauseSplitter(agent.min_clause_chars)
        started, clause, answer = time.perf_counter(), "", ""
        for piece in llm.stream(messages, agent.max_tokens, agent.temperature):
            answer += piece
            found = splitter.push(piece)
            if found and not clause:
                clause = found[0]
                llm_s = time.perf_counter() - started
        if not clause:
            clause, llm_s = splitter.flush() or answer, time.perf_counter() - started
        started = time.perf_counter()
        next(iter(piper.frames(clause)), None)
        tts_s = time.perf_counter() - started
        history += [ChatMessage(role="user", content=text), ChatMessage(role="assistant", content=answer)]
        parts = {
            "stt_ms": stt_s,
            "llm_first_clause_ms": llm_s,
            "tts_ms": tts_s,
            "floor_ms": stt_s + llm_s + tts_s,
        }
        out.append({key: round(value * 1000, 1) for key, value in parts.items()})
    return out


def percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    """'LABEL:VAR=VALUE' (the value may hold anything) or 'LABEL:' -> (label, environment)."""
    label, _, assignment = text.partition(":")
    name, equals, value = assignment.partition("=")
    if not label or (assignment and (not equals or not name.startswith("VOXBUS_"))):
        raise argparse.ArgumentTypeError(f"--variant {text!r}: LABEL:VOXBUS_VAR=VALUE or LABEL: expected")
    return label, ({name: value} if assignment else {})


def variants_by_label(given: list[tuple[str, dict[str, str]]]) -> list[tuple[str, dict[str, str]]]:
    merged: dict[str, dict[str, str]] = {}
    for label, env in given:
        merged.setdefault(label, {}).update(env)
    return list(merged.items()) or [("", {})]


async def run_profile(
    profile: str,
    out: Path,
    caller_voice: str,
    variant: tuple[str, dict[str, str]] = ("", {}),
    dialogue: str = "questions",
    peers: tuple[str, ...] = (),
    results_name: str = "latency",
) -> dict[str, Any]:
    label, env = variant
    name = f"{profile}-{label}" if label else profile
    os.environ["VOXBUS_PROFILE"] = profile
    os.environ["VOXBUS_DATA_DIR"] = str(out / f"data-{name}")
    os.environ["VOXBUS_SIP__PORT"] = str(free_port())
    os.environ["VOXBUS_SIP__RTP_PORT"] = str(30000 + free_port() % 15000 // 2 * 2)
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)  # the System's processes inherit them
    try:
        settings = load_settings()
        caller = (
            PiperEngine(model_path(settings, "tts"), settings.tts)
            if caller_voice == "piper"
            else voice_engine(caller_voice, settings.tts)
        )
        run = await sip_conversation(settings, caller, out / f"heard-{name}.wav", DIALOGUES[dialogue])
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    # the default results' events keep their old name; other runs' are named after their results
    prefix = "events" if results_name == "latency" else f"events-{results_name}"
    events_file = f"{prefix}-{name}.jsonl"
    with (out / events_file).open("w") as f:
        t0 = run["heard"].first_tick_ts or 0.0
        for event in run["events"]:
            f.write(
                json.dumps({"caller_tick": round((event.ts - t0) * 1000 / FRAME_MS), **event.model_dump()})
                + "\n"
            )
        f.write(json.dumps({"lines": [t.model_dump() for t in run["timings"]]}) + "\n")
    rows, checks = turn_rows(run)
    print(f"  call over ({run['wall_s']:.0f} s); the engines alone, in this process...", flush=True)
    floors = floor(settings, run["timings"], run["player"])
    for row, f in zip(rows, floors, strict=True):
        row["floor"] = f
        if row.get("perceived_ms") is not None:
            compute = sum(row.get(k) or 0.0 for k in ("stt_compute_ms", "llm_compute_ms", "tts_compute_ms"))
            row["perceived_minus_compute_ms"] = round(row["perceived_ms"] - compute, 1)
    perceived = [r["perceived_ms"] for r in rows if r.get("perceived_ms") is not None]
    floor_values = [r["floor"]["floor_ms"] for r in rows]
    median: dict[str, float | None] = {}
    for key, _ in STAGES + [("orchestration_ms", ""), ("bus_ms", ""), ("perceived_minus_compute_ms", "")]:
        values = [r[key] for r in rows if isinstance(r.get(key), int | float)]
        median[key] = round(statistics.median(values), 1) if values else None
    summary = {
        "perceived_p50_ms": percentile(perceived, 50),
        "perceived_p95_ms": percentile(perceived, 95),
        "floor_p50_ms": percentile(floor_values, 50),
        "ratio_to_floor": round(statistics.median(perceived) / statistics.median(floor_values), 2)
        if perceived
        else None,
        "answered": f"{len(perceived)}/{len(rows)}",
        **checks,
    }
    result = {
        "profile": name,
        "settings": env,
        "caller_voice": caller_voice,
        "dialogue": dialogue,
        "models": {k: v.name for k, v in PROFILES[profile].items()},
        "turns": rows,
        "median": median,
        "summary": summary,
        "wall_s": round(run["wall_s"], 1),
    }
    if peers:
        from peer import pipecat_run

        result["peers"] = []
        for turn_end in peers:
            print(f"  the same lines to a Pipecat pipeline with the same models ({turn_end})...", flush=True)
            theirs = pipecat_run(settings, DIALOGUES[dialogue], run["player"], out, turn_end)
            result["peers"].append(theirs)
            ours, their_p50 = summary["perceived_p50_ms"], theirs["perceived_p50_ms"]
            theirs["ratio_voxbus_to_peer"] = round(ours / their_p50, 2) if ours and their_p50 else None
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="append", choices=list(PROFILES), default=[])
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument(
        "--variant", action="append", type=parse_variant, default=[], help="LABEL:VOXBUS_VAR=VALUE"
    )
    parser.add_argument(
        "--caller-voice",
        default="piper",
        help="the caller's voice: 'piper' (the bundled voice), 'espeak-ng:VOICE' (e.g. en-us+f2) "
        "or 'flite:VOICE' (slt, rms, awb)",
    )
    parser.add_argument("--dialogue", choices=list(DIALOGUES), default="questions", help="the caller's lines")
    parser.add_argument(
        "--peer",
        action="append",
        choices=["pipecat", "pipecat-vad"],
        default=[],
        help="also say the answered lines to a Pipecat pipeline with the same models after each call "
        "(needs `make pipecat-venv`) and report voxbus's p50 over Pipecat's: 'pipecat' ends a turn as "
        "Pipecat does by default (Silero VAD, then its Smart Turn model), 'pipecat-vad' on 0.2 s of "
        "silence after the VAD's stop (its quickest speech timeout); repeat for both",
    )
    parser.add_argument("--name", default="latency", help="the results' file name: NAME.json and NAME.png")
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning"],
        default="warning",
        help="the system's log on stderr (debug: each LLM request's prompt tokens and those it evaluated)",
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    setup_logging(args.log_level)
    # the models stay where `make models` put them; each run gets its own NATS data
    os.environ.setdefault("VOXBUS_MODEL_DIR", str(models_dir(load_settings())))
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    results = []
    for profile in args.profile or ["test"]:
        for variant in variants_by_label(args.variant):
            label = f"{profile} {variant[0]}".strip()
            lines = len(DIALOGUES[args.dialogue].lines)
            print(f"profile {label}: {lines} caller lines ({args.dialogue}) over SIP...", flush=True)
            result = asyncio.run(
                run_profile(
                    profile, args.out, args.caller_voice, variant, args.dialogue, tuple(args.peer), args.name
                )
            )
            results.append(result)
            summary = {"median": result["median"], "summary": result["summary"]}
            print(json.dumps(summary, indent=2), flush=True)
    report = {
        "echo_gain": ECHO_GAIN,
        "results": results,
    }
    write_json(args.out / f"{args.name}.json", report)
    plot(results, args.out / f"{args.name}.png")
    print(f"wrote {args.out / args.name}.json and .png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
