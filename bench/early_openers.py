"""Early-opener benchmark: how often does the LLM open its answer to the caller's words so far with
an acknowledgement, and does it open the answer to their whole words the same way?

The call actor says the LLM's opener the moment a turn ends when the peek on the last partial
transcript was an acknowledgement ("Sure,": ``agent.early_opener``, voxbus/actors/call/early_opener.py).
Offline and deterministic (greedy decoding, the bundled model): for each caller line, the peek on
the line less its last ``--cut`` words (a partial transcript a word or two behind) and on the whole
line, with

- the clinic's agent (examples/clinic: its prompt, context, greeting and tools) on the 34 lines of
  ``bench/tool_calls.py``, some after a few turns of conversation;
- the general assistant (``agent.system_prompt``) on the appointment and question dialogues of
  ``bench/dialogues.py``.

Counted: lines whose peek on the words so far is said early (an acknowledgement, the words going on
from it), and of those, the whole line's own opener: the same, another acknowledgement, or none
(the opener said was not the one the whole words would have got). For the clinic's agent, which
serves tools, a peek that opens with a tool call says the holding phrase early
(``agent.early_hold``): counted apart, as "holding, a call follows" where the answer to the whole
line opens with a call too, and "holding, no call" where it does not (the caller hears "One
moment, let me check." before an answer that checks nothing).

    python bench/early_openers.py --out bench/results

Writes early_openers.json and early_openers.png.
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dialogues import DIALOGUES  # noqa: E402
from report import pyplot, write_figures  # noqa: E402
from tool_calls import CASES, bundled_llm, clinic_tools, context, opening  # noqa: E402

from voxbus.actors.call.early_opener import PEEK_TOKENS, acknowledgement, goes_on_from  # noqa: E402
from voxbus.config import AgentSettings  # noqa: E402
from voxbus.engines.llm import LlamaEngine  # noqa: E402
from voxbus.engines.tool_calls import OPEN  # noqa: E402
from voxbus.lexicons import ENGLISH  # noqa: E402
from voxbus.schemas.messages import ChatMessage  # noqa: E402


def peek(engine: LlamaEngine, messages: list[ChatMessage], tools: list[dict[str, Any]] | None) -> str:
    return engine.peek(messages, PEEK_TOKENS, tools, "bench")


def judge(engine: LlamaEngine, start: list[ChatMessage], said: str, cut: int, tools: Any) -> dict[str, Any]:
    words = said.split()
    so_far = " ".join(words[: max(len(words) - cut, 1)])
    early = peek(engine, [*start, ChatMessage(role="user", content=so_far)], tools)
    whole = peek(engine, [*start, ChatMessage(role="user", content=said)], tools)
    goes_on = goes_on_from(so_far, said)
    opener = acknowledgement(early, ENGLISH) if goes_on else None
    own = acknowledgement(whole, ENGLISH)
    if goes_on and tools and early == OPEN:
        opener = "(holding phrase)"
        verdict = "holding, a call follows" if whole == OPEN else "holding, no call"
    elif opener is None:
        verdict = "not said early"
    elif own is not None and own.rstrip(",.!").lower() == opener.rstrip(",.!").lower():
        verdict = "the same"
    elif own is not None:
        verdict = "another acknowledgement"
    else:
        verdict = "not its own opener"
    return {
        "said": said,
        "so_far": so_far,
        "peek": early,
        "whole": whole,
        "opener": opener,
        "verdict": verdict,
    }


def lines_of(dialogue: str) -> list[str]:
    return [line.text for line in DIALOGUES[dialogue].lines if line.role in ("question", "interrupt")]


def run(engine: LlamaEngine, cut: int) -> list[dict[str, Any]]:
    rows = []
    tools, start = clinic_tools(), opening("clinic", context(), "assistant")
    for case in CASES:
        history = [ChatMessage(role=r, content=t) for r, t in case.history]  # type: ignore[arg-type]
        row = judge(engine, [*start, *history], case.said, cut, tools)
        rows.append({"agent": "clinic", **row})
    general = [ChatMessage(role="system", content=AgentSettings().system_prompt)]
    for dialogue in ("appointment", "questions"):
        for said in lines_of(dialogue):
            rows.append({"agent": f"general ({dialogue})", **judge(engine, general, said, cut, None)})
    for row in rows:
        print(f"  {row['verdict']:24} {row['peek']!r:16} {row['whole']!r:16} {row['said'][:60]}")
    return rows


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for agent in sorted({r["agent"] for r in rows}):
        mine = [r for r in rows if r["agent"] == agent]
        verdicts = collections.Counter(r["verdict"] for r in mine)
        out[agent] = {"lines": len(mine), **verdicts}
    return out


def plot(figures: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    kinds = [
        "the same",
        "another acknowledgement",
        "not its own opener",
        "holding, a call follows",
        "holding, no call",
        "not said early",
    ]
    colours = ["tab:green", "tab:olive", "tab:red", "tab:blue", "tab:orange", "tab:gray"]
    agents = list(figures["summary"])
    fig, ax = plt.subplots(figsize=(8, 3.5))
    left = [0] * len(agents)
    for kind, colour in zip(kinds, colours, strict=True):
        counts = [figures["summary"][a].get(kind, 0) for a in agents]
        ax.barh(agents, counts, left=left, color=colour, label=kind)
        left = [x + c for x, c in zip(left, counts, strict=True)]
    ax.set_xlabel("caller lines")
    ax.set_title(f"Said early on the words so far (last {figures['cut']} words not heard yet)")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--cut", type=int, default=2, help="words of each line not heard yet")
    parser.add_argument("--name", default="early_openers")
    args = parser.parse_args()
    engine, model = bundled_llm()
    try:
        rows = run(engine, args.cut)
    finally:
        engine.close()
    figures = {"cut": args.cut, "model": model, "summary": summary(rows), "rows": rows}
    write_figures(args.out, args.name, figures, plot)
    print(figures["summary"])


if __name__ == "__main__":
    main()
