"""Tool-call decoding speed: how long the clinic's agent takes to write a call, once it has begun it.

A small model writes a call's JSON a token at a time under a grammar of the offered tools
(voxbus/engines/tool_calls.py); the caller waits through it (the holding phrase, then silence) for
the calendar's answer. llama.cpp's grammar sampler checks every token of the vocabulary at each
step (152k for Qwen); ``GrammarCheck`` (voxbus/engines/llm_sampling.py) checks the likeliest token
alone first. Offline, the bundled model, batched as in a call: for each of ``bench/tool_calls.py``'s
cases that the model answers with a call, the same request decoded both ways, interleaved (the
conversation so far evaluated first, as in a call): the time from the call's opening tag to its
end, its tokens, and whether both ways wrote the same call (they must: the same greedy token).

    python bench/tool_call_speed.py --out bench/results

Writes tool_call_speed.json and tool_call_speed.png.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import pyplot, write_figures  # noqa: E402
from tool_calls import CASES, bundled_llm, clinic_tools, context, opening  # noqa: E402

from voxbus.engines.llm import LlamaEngine  # noqa: E402
from voxbus.engines.tool_calls import OPEN  # noqa: E402
from voxbus.schemas.messages import ChatMessage  # noqa: E402

WAYS = {"likeliest checked first": True, "every token checked": False}


def timed_call(
    engine: LlamaEngine, messages: list[ChatMessage], tools: list[dict[str, Any]]
) -> dict[str, Any]:
    """One request: when its call opened, when it ended (ms after the request), and the call."""
    engine.warm(messages[:-1], tools)  # the conversation so far, evaluated while the agent spoke
    started = time.perf_counter()
    opened, text = None, ""
    for piece in engine.stream(messages, 80, 0.0, tools=tools, session="bench"):
        if opened is None and OPEN in text + piece:
            opened = time.perf_counter()
        text += piece
    ended = time.perf_counter()
    body = text[text.find(OPEN) :] if OPEN in text else ""
    tokens = len(engine.llm.tokenize(body.encode(), add_bos=False, special=True)) if body else 0
    call_ms = (ended - opened) * 1000 if opened is not None else None
    return {"call": body, "tokens": tokens, "call_ms": call_ms, "total_ms": (ended - started) * 1000}


def run(engine: LlamaEngine) -> list[dict[str, Any]]:
    tools, start = clinic_tools(), opening("clinic", context(), "assistant")
    rows = []
    for case in CASES:
        if not any(case.tools):
            continue  # a request no tool answers
        history = [ChatMessage(role=r, content=t) for r, t in case.history]  # type: ignore[arg-type]
        messages = [*start, *history, ChatMessage(role="user", content=case.said)]
        row: dict[str, Any] = {"said": case.said}
        for label, check_first in WAYS.items():
            engine.grammar_check_first = check_first
            row[label] = timed_call(engine, messages, tools)
        first, every = (row[label] for label in WAYS)
        row["same_call"] = first["call"] == every["call"]
        if first["call_ms"] is not None and every["call_ms"] is not None:
            print(
                f"  {first['tokens']:3} tokens  {first['call_ms']:6.0f} / {every['call_ms']:6.0f} ms"
                f"  {'same' if row['same_call'] else 'DIFFERENT'}  {case.said[:50]}",
                flush=True,
            )
        rows.append(row)
    return rows


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    called = [r for r in rows if all(r[label]["call_ms"] is not None for label in WAYS)]
    out: dict[str, Any] = {
        "cases": len(rows),
        "calls": len(called),
        "same_call": sum(r["same_call"] for r in called),
    }
    for label in WAYS:
        out[label] = {
            "call_ms_median": round(statistics.median(r[label]["call_ms"] for r in called))
            if called
            else None,
            "ms_per_token_median": round(
                statistics.median(r[label]["call_ms"] / max(r[label]["tokens"], 1) for r in called), 1
            )
            if called
            else None,
        }
    if called:
        ratios = [
            r["likeliest checked first"]["call_ms"] / r["every token checked"]["call_ms"] for r in called
        ]
        out["ratio_median"] = round(statistics.median(ratios), 2)
    return out


def plot(figures: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    called = [r for r in figures["rows"] if all(r[label]["call_ms"] is not None for label in WAYS)]
    fig, ax = plt.subplots(figsize=(9, 4))
    x = range(len(called))
    for offset, (label, colour) in zip(
        (-0.2, 0.2), zip(WAYS, ("tab:green", "tab:gray"), strict=True), strict=True
    ):
        ax.bar(
            [i + offset for i in x],
            [r[label]["call_ms"] for r in called],
            width=0.4,
            color=colour,
            label=label,
        )
    ax.set_xlabel("clinic request (bench/tool_calls.py) answered with a call")
    ax.set_ylabel("ms from the call's opening tag to its end")
    s = figures["summary"]
    ax.set_title(
        "Writing a tool call under the grammar: median "
        f"{s['likeliest checked first']['call_ms_median']} vs {s['every token checked']['call_ms_median']} ms"
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--name", default="tool_call_speed")
    args = parser.parse_args()
    engine, model = bundled_llm()
    try:
        rows = run(engine)
    finally:
        engine.close()
    figures = {"model": model, "summary": summary(rows), "rows": rows}
    write_figures(args.out, args.name, figures, plot)
    print(figures["summary"])


if __name__ == "__main__":
    main()
