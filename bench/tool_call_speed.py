"""Tool-call decoding speed: how long the clinic's agent takes to write a call, once it has begun it.

A small model writes a call's JSON a token at a time under a grammar of the offered tools
(voxbus/engines/tool_calls.py); the caller waits through it (the holding phrase, then silence) for
the calendar's answer. Three ways, each request decoded all three ways in turn, interleaved:

- in pieces (shipped, ``voxbus/engines/call_writer.py``): the words the schema fixes (``{"name": "``,
  the keys) evaluated as prompt, the model decoding only the name and each value;
- whole, the likeliest token checked first: the call decoded under the whole grammar, which
  checks the likeliest token alone before the vocabulary (``GrammarCheck``,
  ``voxbus/engines/llm_sampling.py``);
- whole, every token checked: llama.cpp's grammar sampler over all 152k tokens at each step.

Offline, the bundled model, batched as in a call, for each of ``bench/tool_calls.py``'s cases
that a tool answers (the conversation so far evaluated first, as in a call): the time from the
call's opening tag to its end, its tokens, and whether the ways wrote the same call (its name and
arguments; the two whole ways must agree token for token).

    python bench/tool_call_speed.py --out bench/results

Writes tool_call_speed.json and tool_call_speed.png.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import pyplot, write_figures  # noqa: E402
from tool_calls import CASES, bundled_llm, clinic_tools, context, opening  # noqa: E402

from voxbus.engines.llm import LlamaEngine  # noqa: E402
from voxbus.engines.tool_calls import CLOSE, OPEN  # noqa: E402
from voxbus.schemas.messages import ChatMessage  # noqa: E402

WAYS = {  # engine settings of each way
    "in pieces": {"write_calls_in_pieces": True, "grammar_check_first": True},
    "whole, likeliest checked first": {"write_calls_in_pieces": False, "grammar_check_first": True},
    "whole, every token checked": {"write_calls_in_pieces": False, "grammar_check_first": False},
}
BASELINE = "whole, every token checked"
COLOURS = ("tab:green", "tab:olive", "tab:gray")


def timed_call(
    engine: LlamaEngine, messages: list[ChatMessage], tools: list[dict[str, Any]]
) -> dict[str, Any]:
    """One request: when its call opened, when it ended (ms after the request), and the call."""
    engine.warm(messages[:-1], tools)  # the conversation so far, evaluated while the agent spoke
    opened, text = None, ""
    for piece in engine.stream(messages, 80, 0.0, tools=tools, session="bench"):
        if opened is None and OPEN in text + piece:
            opened = time.perf_counter()
        text += piece
    ended = time.perf_counter()
    body = text[text.find(OPEN) :] if OPEN in text else ""
    tokens = len(engine.llm.tokenize(body.encode(), add_bos=False, special=True)) if body else 0
    call_ms = (ended - opened) * 1000 if opened is not None else None
    return {"call": body, "parsed": parsed(body), "tokens": tokens, "call_ms": call_ms}


def parsed(body: str) -> Any:
    """The call's name and arguments (None: no call, or not JSON)."""
    inner = body.removeprefix(OPEN).removesuffix(CLOSE).strip()
    try:
        return json.loads(inner) if inner else None
    except ValueError:
        return None


def run(engine: LlamaEngine) -> list[dict[str, Any]]:
    tools, start = clinic_tools(), opening("clinic", context(), "assistant")
    rows = []
    for case in CASES:
        if not any(case.tools):
            continue  # a request no tool answers
        history = [ChatMessage(role=r, content=t) for r, t in case.history]  # type: ignore[arg-type]
        messages = [*start, *history, ChatMessage(role="user", content=case.said)]
        row: dict[str, Any] = {"said": case.said}
        for label, way in WAYS.items():
            for attribute, value in way.items():
                setattr(engine, attribute, value)
            row[label] = timed_call(engine, messages, tools)
        calls = [row[label] for label in WAYS]
        row["same_call"] = all(c["parsed"] == calls[-1]["parsed"] for c in calls)
        if all(c["call_ms"] is not None for c in calls):
            times = " / ".join(f"{c['call_ms']:5.0f}" for c in calls)
            same = "same" if row["same_call"] else "DIFFERENT"
            print(f"  {times} ms  {same:9} {calls[0]['call'][12:70]!r}  {case.said[:40]}", flush=True)
        rows.append(row)
    return rows


def called(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if all(r[label]["call_ms"] is not None for label in WAYS)]


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    made = called(rows)
    out: dict[str, Any] = {"cases": len(rows), "calls": len(made)}
    if not made:
        return out
    out["same_call"] = sum(r["same_call"] for r in made)
    for label in WAYS:
        per_token = [r[label]["call_ms"] / max(r[label]["tokens"], 1) for r in made]
        ratios = [r[label]["call_ms"] / r[BASELINE]["call_ms"] for r in made]
        out[label] = {
            "call_ms_median": round(statistics.median(r[label]["call_ms"] for r in made)),
            "ms_per_token_median": round(statistics.median(per_token), 1),
            "ratio_to_every_token_median": round(statistics.median(ratios), 2),
        }
    return out


def plot(figures: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    made = called(figures["rows"])
    fig, ax = plt.subplots(figsize=(10, 4))
    width = 0.8 / len(WAYS)
    for n, (label, colour) in enumerate(zip(WAYS, COLOURS, strict=True)):
        xs = [i + (n - 1) * width for i in range(len(made))]
        ax.bar(xs, [r[label]["call_ms"] for r in made], width=width, color=colour, label=label)
    ax.set_xlabel("clinic request (bench/tool_calls.py) answered with a call")
    ax.set_ylabel("ms from the call's opening tag to its end")
    medians = " / ".join(str(figures["summary"][label]["call_ms_median"]) for label in WAYS)
    ax.set_title(f"Writing a tool call: median {medians} ms")
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
