"""The latency benchmark's chart: each turn's critical path as stacked stages, in ms after the
caller stopped speaking, with the engines' floor and any peer's figures for the same lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from report import pyplot

# each stage's key in a turn's row (ms after the caller's last sound) and its label on the chart
STAGES = [
    ("vad_decision_ms", "end of turn decided (pause)"),
    ("stt_final_ms", "STT final"),
    ("llm_first_token_ms", "LLM first token"),
    ("first_clause_ms", "LLM first clause"),
    ("tts_first_frame_ms", "TTS first frame"),
    ("first_audio_ms", "first frame on the gateway's clock"),
    ("perceived_ms", "SIP leg to the caller's ear"),
]


def plot(results: list[dict[str, Any]], path: Path) -> None:
    plt = pyplot()

    fig, axes = plt.subplots(1, len(results), figsize=(7 * len(results), 5.5), squeeze=False)
    colours = ["#c6dbef", "#6baed6", "#fdae6b", "#f16913", "#74c476", "#31a354", "#9e9ac8"]
    for ax, result in zip(axes[0], results, strict=True):
        turns = result["turns"]
        xs = list(range(1, len(turns) + 1))
        bottoms = [0.0] * len(turns)
        for (key, label), colour in zip(STAGES, colours, strict=True):
            ends = [max(t.get(key) or bottoms[i], bottoms[i]) for i, t in enumerate(turns)]
            heights = [e - b for e, b in zip(ends, bottoms, strict=True)]
            ax.bar(xs, heights, bottom=bottoms, color=colour, label=label, width=0.7)
            bottoms = ends
        ax.plot(
            xs, [t["floor"]["floor_ms"] for t in turns], "k_", markersize=24, mew=2, label="engines' floor"
        )
        for peer, marker in zip(result.get("peers", []), ["rx", "m+", "r1"], strict=False):
            ys = [r["perceived_ms"] if r["perceived_ms"] is not None else np.nan for r in peer["turns"]]
            label = f"{peer['peer']} ({peer['turn_end']}), the same lines, no SIP leg"
            ax.plot(xs[: len(ys)], ys, marker, markersize=10, mew=2, label=label)
        for x, t in zip(xs, turns, strict=True):
            tags = ("S" if t.get("speculative") else "") + ("I" if t.get("role") == "interrupt" else "")
            if tags:
                ax.annotate(tags, (x, (t.get("perceived_ms") or 0) + 30), ha="center", fontsize=8)
        s = result["summary"]
        versus = "".join(
            f"; {p['ratio_voxbus_to_peer']}x Pipecat {p['turn_end']}" for p in result.get("peers", [])
        )
        ax.set_title(
            f"{result['profile']}: perceived p50 {s['perceived_p50_ms']} / "
            f"p95 {s['perceived_p95_ms']} ms, {s['ratio_to_floor']}x floor{versus}\n"
            f"barge-in stop {s.get('barge_in_stop_ms')} ms, "
            f"false interruptions {s['false_interruptions']}",
            fontsize=10,
        )
        ax.set_xlabel("caller turn (I: interrupted the agent, S: answer started at a pause)")
        ax.set_ylabel("ms after the caller stopped speaking (SIP, caller's ear)")
        ax.set_xticks(xs)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.savefig(path, dpi=110)
