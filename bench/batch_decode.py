"""Batched decoding: how much several answers decoded together cost against one alone.

For B = 1, 2, 3, 4 answers decoded at once by the engine of ``llm.parallel`` = 4 (each a clinic
caller's question after the agent's system prompt, 64 tokens each: the end is held off until
then, so every answer has the same length), the wall time from the first token to the last and
so the tokens per second of all answers together and of each one; and the same B answers decoded
one after another by the same engine, as one-at-a-time serving does. A step of B tokens reads
the weights once: the ratio "one after another / together" is the gain on this machine's memory
and cores.

    python bench/batch_decode.py --model qwen2.5-coder-1.5b-instruct-q4_k_m \\
        --model qwen2.5-coder-0.5b-instruct-q4_k_m --out bench/results

Writes batch_decode.json and batch_decode.png.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from report import pyplot, write_json  # noqa: E402

from voxbus.config import LlmSettings, load_settings  # noqa: E402
from voxbus.engines.llm import LlamaEngine  # noqa: E402
from voxbus.engines.llm_batch import Generation  # noqa: E402
from voxbus.engines.llm_sampling import Sampling  # noqa: E402
from voxbus.engines.models import models_dir  # noqa: E402
from voxbus.schemas.messages import ChatMessage  # noqa: E402

TOKENS = 64
SYSTEM = (
    "You are Anna, the receptionist of Bright Smile dental clinic, on the phone. Answer in one or "
    "two short sentences. Opening hours: Monday to Friday, 8 to 18."
)
QUESTIONS = [
    "Hi, I need to move my appointment, my dog is sick.",
    "Do you have anything free on Friday morning?",
    "How much does a cleaning cost?",
    "Can I bring my daughter to the same appointment?",
]


def prompt_tokens(engine: LlamaEngine, question: str) -> tuple[list[int], list[str]]:
    prompt, stops = engine.prompt(
        [ChatMessage(role="system", content=SYSTEM), ChatMessage(role="user", content=question)]
    )
    return engine.llm.tokenize(prompt.encode(), special=True), stops


def together(engine: LlamaEngine, questions: list[int]) -> float:
    """Seconds from the first token of any answer to the last token of all the answers."""
    assert engine._batch is not None
    first: list[float] = []
    generations = []
    with engine._batch._wake:  # all in the decoder's inbox before it looks
        for index in questions:
            tokens, stops = prompt_tokens(engine, QUESTIONS[index])
            sampling = Sampling(max_tokens=TOKENS, min_tokens=TOKENS, temperature=0.7, stops=stops)
            generations.append(engine._batch.submit(Generation(f"b{index}", tokens, sampling, lambda: False)))

    def read(generation: Generation) -> None:
        for _ in generation:
            if not first:
                first.append(time.perf_counter())

    readers = [threading.Thread(target=read, args=(g,)) for g in generations]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join()
    assert all(g.state is not None and g.state.produced == TOKENS for g in generations)
    return time.perf_counter() - first[0]


def measure(model: str, repeats: int) -> dict[str, Any]:
    folder = models_dir(load_settings()) / model
    path = next(folder.glob("*.gguf"))
    rows: list[dict[str, Any]] = []
    engine = LlamaEngine(path, LlmSettings(parallel=4))
    together(engine, [0])  # warm-up: first use of the context
    for b in range(1, 5):
        at_once, in_turn = [], []
        for _ in range(repeats):  # interleaved: a drift of the machine's speed hits both alike
            at_once.append(together(engine, list(range(b))))
            in_turn.append(sum(together(engine, [index]) for index in range(b)))
        t_together, t_in_turn = statistics.median(at_once), statistics.median(in_turn)
        tokens = b * (TOKENS - 1)  # the first token of each answer comes with its prompt
        row = {
            "answers": b,
            "together_s": round(t_together, 2),
            "one_after_another_s": round(t_in_turn, 2),
            "together_tokens_per_s": round(tokens / t_together, 1),
            "per_answer_tokens_per_s": round((TOKENS - 1) / t_together, 1),
            "one_after_another_tokens_per_s": round(tokens / t_in_turn, 1),
            "gain": round(t_in_turn / t_together, 2),
        }
        print(f"  {model} B={b}: {row}", flush=True)
        rows.append(row)
    return {"model": model, "rows": rows}


def plot(results: list[dict[str, Any]], path: Path) -> None:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for result in results:
        bs = [r["answers"] for r in result["rows"]]
        line = ax.plot(bs, [r["together_tokens_per_s"] for r in result["rows"]], "o-",
                       label=f"{result['model']}: decoded together")[0]  # fmt: skip
        ax.plot(bs, [r["one_after_another_tokens_per_s"] for r in result["rows"]], "s--",
                color=line.get_color(), label=f"{result['model']}: one after another")  # fmt: skip
        ax.plot(bs, [r["per_answer_tokens_per_s"] for r in result["rows"]], "x:",
                color=line.get_color(), label=f"{result['model']}: each answer, together")  # fmt: skip
    ax.axhline(4, color="grey", linestyle=":", label="speech: ~4 tokens/s")
    ax.set_xlabel("answers decoded at once")
    ax.set_ylabel("tokens per second")
    ax.set_xticks([1, 2, 3, 4])
    ax.set_title(f"Batched decoding on {os.cpu_count()} cores")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=[], help="a model folder in the model dir")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    models = args.model or ["qwen2.5-coder-1.5b-instruct-q4_k_m"]
    results = [measure(model, args.repeats) for model in models]
    args.out.mkdir(parents=True, exist_ok=True)
    report = {
        "tokens_per_answer": TOKENS,
        "repeats": args.repeats,
        "results": results,
    }
    write_json(args.out / "batch_decode.json", report)
    plot(results, args.out / "batch_decode.png")
    print(f"wrote {args.out / 'batch_decode.json'} and {args.out / 'batch_decode.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
