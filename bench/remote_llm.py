"""The cost of the HTTP hop: the same model in process and behind an OpenAI-compatible server.

One model (the profile's LLM), the agent's system prompt, 10 caller questions. Each question is
answered by the in-process engine and by llama-cpp-python's server on loopback (same threads, same
greedy decoding; the order alternates so that neither always goes first on a warm cache). Then the
server is killed and the fallback pair answers: the time to a first token when the server is down.

    python bench/remote_llm.py --profile default --out bench/results

Writes remote_llm.json and remote_llm.png.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from report import pyplot, write_json

from voxbus.config import load_settings
from voxbus.engines.llm import LlamaEngine
from voxbus.engines.llm_fallback import FallbackLlmEngine, LlmEngine
from voxbus.engines.llm_server import LlmServer
from voxbus.engines.models import model_path
from voxbus.engines.remote_llm import RemoteLlmEngine
from voxbus.schemas.messages import ChatMessage

QUESTIONS = [
    "Hi, I'd like to move my appointment to Friday morning.",
    "What are your opening hours on Saturday?",
    "Can you tell me how long a cleaning usually takes?",
    "My name is Peter Walsh, I have a booking next Tuesday.",
    "Is there parking near the clinic?",
    "Do I need to bring anything to my first visit?",
    "Could you call me back later this afternoon?",
    "What's the earliest slot you have next week?",
    "I think I'm going to be ten minutes late today.",
    "Thanks a lot, that's all I needed.",
]
DOWN_QUESTIONS = [  # not asked before: the local model's cache holds only the system prompt
    "Can I bring my daughter to the same appointment?",
    "Do you take card payments at the desk?",
    "I lost the reminder letter, when was my visit again?",
    "Who is the dentist on duty on Monday?",
]
TOKENS = 24


def timed(engine: LlmEngine, messages: list[ChatMessage]) -> tuple[float, float]:
    """(seconds to the first piece, seconds to the whole answer)."""
    started = time.perf_counter()
    first = None
    pieces: Iterator[str] = engine.stream(messages, TOKENS, 0.0)
    for _ in pieces:
        first = first if first is not None else time.perf_counter() - started
    return first or 0.0, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", default="default", choices=["default", "test"])
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    settings = load_settings(profile=args.profile)
    model = model_path(settings, "llm")
    system = ChatMessage(role="system", content=settings.agent.system_prompt)
    local = LlamaEngine(model, settings.llm)
    with tempfile.TemporaryDirectory() as folder:
        server = LlmServer(model, Path(folder) / "server.log", threads=settings.llm.n_threads)
        server.wait_ready()
        remote = RemoteLlmEngine(server.url, "bench", first_token_timeout_s=30)
        engines: dict[str, LlmEngine] = {"in-process": local, "server": remote}
        for engine in engines.values():  # the system prompt evaluated once in each, as in service
            timed(engine, [system, ChatMessage(role="user", content="Hello.")])
        rows: dict[str, list[tuple[float, float]]] = {name: [] for name in engines}
        for i, question in enumerate(QUESTIONS):
            order = list(engines) if i % 2 == 0 else list(engines)[::-1]
            for name in order:
                rows[name].append(timed(engines[name], [system, ChatMessage(role="user", content=question)]))
                print(f"{name:10} {rows[name][-1][0] * 1000:6.0f} ms first, {rows[name][-1][1]:5.2f} s all")
        server.stop()
    fallback = FallbackLlmEngine(RemoteLlmEngine(server.url, "bench"), local)
    down = [timed(fallback, [system, ChatMessage(role="user", content=q)]) for q in DOWN_QUESTIONS]

    def median_ms(values: list[float]) -> float:
        return round(statistics.median(values) * 1000, 1)

    result = {
        "profile": args.profile,
        "model": model.name,
        "questions": len(QUESTIONS),
        "tokens": TOKENS,
        "first_token_ms": {name: median_ms([r[0] for r in rows[name]]) for name in rows},
        "answer_ms": {name: median_ms([r[1] for r in rows[name]]) for name in rows},
        "server_down_first_token_ms": median_ms([r[0] for r in down]),
        "per_question_first_token_ms": {name: [round(r[0] * 1000, 1) for r in rows[name]] for name in rows},
    }
    first = result["first_token_ms"]
    result["server_over_in_process"] = round(first["server"] / first["in-process"], 2)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "remote_llm.json", result)
    plot(result, args.out / "remote_llm.png")
    print(json.dumps({k: v for k, v in result.items() if k != "per_question_first_token_ms"}, indent=2))


def plot(result: dict, path: Path) -> None:  # type: ignore[type-arg]
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(7, 4))
    per = result["per_question_first_token_ms"]
    ax.boxplot([per["in-process"], per["server"]], tick_labels=["in-process", "OpenAI-compatible server"])
    ax.axhline(
        result["server_down_first_token_ms"], color="tab:red", linestyle="--", label="server down: fallback"
    )
    ax.set_ylabel("first token (ms)")
    ax.set_title(f"{result['model']}: the HTTP hop (medians {result['first_token_ms']})", fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
