"""Latency benchmark: a scripted conversation through the whole system, per model profile.

For each turn: perceived latency = first agent frame played on the call timeline minus the end of
the caller's speech (known exactly from the generated WAV), and the stage times of the turn's
``turn.metrics`` event (VAD decision, STT final, LLM first token, first clause, TTS first frame),
all measured from the same end of speech. Writes ``latency.json`` and ``latency.png``.

    python bench/latency.py --profile test --profile default --out bench/results
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from voxbus.config import load_settings
from voxbus.engines.models import PROFILES, model_path, models_dir
from voxbus.engines.tts import PiperEngine
from voxbus.logs import setup_logging
from voxbus.media.script import CallerScript, Line, render
from voxbus.supervisors.system import System

SCRIPT = CallerScript(
    lines=[
        Line(text="What is the capital of France?", pause_before_s=3.0),
        Line(text="How many days are there in a week?", pause_before_s=7.0),
        Line(text="Can you name a colour of the sky?", pause_before_s=7.0),
        Line(text="What do bees make?", pause_before_s=7.0),
        Line(text="Which planet do we live on?", pause_before_s=7.0),
        Line(text="What is two plus three?", pause_before_s=7.0),
    ],
    tail_s=0.5,
)
STAGES = [
    ("vad_decision_ms", "VAD decides speech ended"),
    ("stt_final_ms", "STT final transcript"),
    ("llm_first_token_ms", "LLM first token"),
    ("first_clause_ms", "first clause to TTS"),
    ("tts_first_frame_ms", "TTS first frame"),
    ("first_audio_ms", "first frame played"),
]


async def run_profile(profile: str, out: Path) -> dict[str, object]:
    from voxbus.commands import run_file_call, turn_latencies

    os.environ["VOXBUS_PROFILE"] = profile
    os.environ["VOXBUS_DATA_DIR"] = str(out / f"data-{profile}")
    settings = load_settings()
    caller = out / f"caller-{profile}.wav"
    spoken = render(SCRIPT, PiperEngine(model_path(settings, "tts"), settings.tts), caller)
    system = System(settings)
    url = await system.start()
    try:
        started = time.monotonic()
        result = await system.while_healthy(run_file_call(url, caller, out / f"reply-{profile}.wav"))
        wall = time.monotonic() - started
    finally:
        await system.stop()
    turns = turn_latencies(result.events, [s.end_s for s in spoken], result.start_ts)
    summary: dict[str, float | None] = {}
    for key in ["perceived_ms", *(k for k, _ in STAGES), "orchestration_ms"]:
        values = [t[key] for t in turns if isinstance(t.get(key), int | float)]
        summary[key] = round(statistics.median(values), 1) if values else None
    return {
        "profile": profile,
        "models": {k: v.name for k, v in PROFILES[profile].items()},
        "turns": turns,
        "median": summary,
        "answered": f"{len(turns)}/{len(spoken)}",
        "wall_s": round(wall, 1),
    }


def plot(results: list[dict[str, object]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 5), squeeze=False)
    colours = ["#9ecae1", "#6baed6", "#fd8d3c", "#f16913", "#74c476", "#31a354"]
    for ax, result in zip(axes[0], results, strict=True):
        turns = result["turns"]  # type: ignore[index]
        xs = list(range(1, len(turns) + 1))
        bottoms = [0.0] * len(turns)
        for (key, label), colour in zip(STAGES, colours, strict=True):
            ends = [t.get(key) or bottoms[i] for i, t in enumerate(turns)]
            heights = [max(0.0, e - b) for e, b in zip(ends, bottoms, strict=True)]
            ax.bar(xs, heights, bottom=bottoms, color=colour, label=label)
            bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
        perceived = [t.get("perceived_ms") for t in turns]
        ax.plot(xs, perceived, "k_", markersize=22, mew=2, label="perceived (from the script)")
        median = result["median"]["perceived_ms"]  # type: ignore[index]
        ax.set_title(f"profile {result['profile']}: median perceived {median:.0f} ms")
        ax.set_xlabel("caller turn")
        ax.set_ylabel("ms after the caller stopped speaking")
        ax.set_xticks(xs)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="append", choices=list(PROFILES), default=[])
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    setup_logging("warning")
    # the models stay where `make models` put them; each run gets its own NATS data
    os.environ.setdefault("VOXBUS_MODEL_DIR", str(models_dir(load_settings())))
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    results = []
    for profile in args.profile or ["test"]:
        print(f"profile {profile}: {len(SCRIPT.lines)} caller turns through the system...", flush=True)
        result = asyncio.run(run_profile(profile, args.out))
        results.append(result)
        print(json.dumps(result["median"], indent=2), flush=True)
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
        },
        "results": results,
    }
    (args.out / "latency.json").write_text(json.dumps(report, indent=2))
    plot(results, args.out / "latency.png")
    print(f"wrote {args.out / 'latency.json'} and {args.out / 'latency.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
