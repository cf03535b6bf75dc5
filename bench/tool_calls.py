"""Tool-call benchmark: does the model pick the right tool with the right arguments?

34 caller utterances in the clinic's context (examples/clinic: its system prompt, greeting and
tools, a caller whose appointment is on Thursday), some after a few turns of conversation; each
needs a given tool (with given arguments) or none. Every candidate model and prompt is scored on
the right tool, the right arguments, and malformed calls (the grammar should make these 0); and
timed: first token (tools offered and not, prompt prefix cached), and the time to a whole call.

    python bench/tool_calls.py --out bench/results [--model NAME ...] [--prompt clinic|plain ...]

Writes tool_calls.json and tool_calls.png.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "clinic"))

from calendar_db import Calendar, CalendarError, resolve_day  # noqa: E402
from calendar_service import build_service  # noqa: E402
from report import pyplot, write_json  # noqa: E402

from voxbus.actors.tools import CALL_TOOLS, ToolCallFilter  # noqa: E402
from voxbus.config import LlmSettings, load_settings  # noqa: E402
from voxbus.engines.llm import LlamaEngine  # noqa: E402
from voxbus.engines.models import CATALOGUE, models_dir  # noqa: E402
from voxbus.schemas.messages import ChatMessage  # noqa: E402
from voxbus.tools.service import compact_schema  # noqa: E402

TODAY = date(2026, 12, 1)  # a Tuesday: the context says so, and relative days resolve from it
CLINIC = tomllib.loads((ROOT / "examples" / "clinic" / "voxbus.toml").read_text())["agents"]["clinic"][
    "agent"
]
FEW_SHOT = (
    " Examples. Caller: Can I come on Monday? You: call list_free_slots with day monday. Caller: Friday "
    "at 11:30 please. You: call reschedule with the appointment_id, day friday and time 11:30. Caller: "
    "Please cancel it. You: call cancel. Caller: Can I speak to someone? You: call transfer_to_human."
)
RULES = (
    "You are Anna, the receptionist of Bright Smile dental clinic, on the phone. Answer in one or two "
    "short sentences, and do not repeat the clinic's name. You do not know which times are free: when "
    "the caller asks what is free, or names a day without a time, call list_free_slots for that day. "
    "When the caller picks a day and time, call reschedule. Never say an appointment was moved unless "
    "reschedule answered."
)
PROMPTS = {
    "clinic": CLINIC["system_prompt"],  # what examples/clinic ships
    "rules": RULES,
    "few-shot": CLINIC["system_prompt"] + FEW_SHOT,
    # before the clinic's prompt said it knows the record: its calls asked callers for "the
    # appointment ID" it had from find_patient (tool_calls_known_record.json: 24 -> 26 of 34)
    "unknown-record": CLINIC["system_prompt"].split(" You know the caller's record")[0],
}
FREE = '{"date": "2026-12-04", "weekday": "Friday", "free": ["09:00", "11:30", "14:00"]}'
OFFERED = [
    ("user", "Could I come on Friday instead?"),
    ("assistant", '<tool_call>{"name": "list_free_slots", "arguments": {"day": "friday"}}</tool_call>'),
    ("tool", FREE),
    ("assistant", "On Friday I have 9:00, 11:30 or 14:00. Which suits you?"),
]
ASKED_DAY = [
    ("user", "I need to move my appointment."),
    ("assistant", "Of course. Which day would suit you?"),
]
ASKED_CANCEL = [
    ("user", "I can't come on Thursday."),
    ("assistant", "Shall I cancel your appointment on Thursday?"),
]
R, L, B, C, T = "reschedule", "list_free_slots", "book", "cancel", "transfer_to_human"
NONE = ("",)  # no tool
GOODBYE = ("", "hang_up")


@dataclass
class Case:
    said: str
    tools: tuple[str, ...]  # acceptable tool names; "" for no tool
    args: dict[str, Any] = field(default_factory=dict)
    history: list[tuple[str, str]] = field(default_factory=list)


def case(said: str, tool: str | tuple[str, ...], history: list | None = None, **args: Any) -> Case:
    return Case(said, (tool,) if isinstance(tool, str) else tool, args, history or [])


def move(said: str, day: str, time: str, history: list | None = None) -> Case:
    return case(said, R, history, appointment_id=12, day=day, time=time)


CASES = [
    move("Please move my appointment to Friday at 11:30.", "friday", "11:30"),
    move("Can you move it to Monday at nine?", "monday", "09:00"),
    move("I need to push my appointment to Wednesday at 2 pm.", "wednesday", "14:00"),
    move("Could you change my check-up to tomorrow at ten thirty?", "tomorrow", "10:30"),
    case("Could I come on Friday instead?", L, day="friday"),
    case("What times do you have free tomorrow?", L, day="tomorrow"),
    case("Is there anything available on Monday?", L, day="monday"),
    case("Do you have an opening on Thursday afternoon?", L, day="thursday"),
    case("Please cancel my appointment.", C, appointment_id=12, cancel=True),
    case("I won't make it on Thursday, just cancel it please.", C, appointment_id=12, cancel=True),
    case("Cancel appointment twelve.", C, appointment_id=12, cancel=True),
    case("Can I talk to a real person?", T),
    case("Put me through to the front desk please.", T),
    case("I want to speak to a human.", T),
    case("What time is my appointment?", NONE),
    case("Is my appointment still on Thursday?", NONE),
    case("Hello?", NONE),
    case("Is the dentist nice?", NONE),
    case("My dog is sick.", NONE),
    case("Thank you, that's all. Goodbye.", GOODBYE),
    case("I'd like to book a cleaning on Tuesday at 10.", B, day="tuesday", time="10:00"),
    case("Can I book a check-up for Friday at 3 pm?", B, day="friday", time="15:00"),
    case("Book me in for Monday at 9:30 please.", B, day="monday", time="09:30"),
    move("Eleven thirty please.", "friday", "11:30", OFFERED),
    move("The first one.", "friday", "09:00", OFFERED),
    move("Two in the afternoon works.", "friday", "14:00", OFFERED),
    case("None of those, what about Monday?", L, OFFERED, day="monday"),
    case("Tuesday.", L, ASKED_DAY, day="tuesday"),
    case("Monday morning if possible.", L, ASKED_DAY, day="monday"),
    move("Friday at eleven thirty.", "friday", "11:30", ASKED_DAY),
    case("Yes please.", C, ASKED_CANCEL, appointment_id=12, cancel=True),
    case("No, keep it.", NONE, ASKED_CANCEL),
    move("Actually, move it to Friday at 11:30 instead.", "friday", "11:30", ASKED_CANCEL),
    case("I'm running late, can you tell the dentist?", ("", T)),
]  # fmt: skip


def clinic_tools() -> list[dict[str, Any]]:
    service = build_service(Calendar(Path(":memory:")))
    wanted = CLINIC["service_tools"]
    served = [
        {"type": "function", "function": {"name": t.name, "description": t.description,
                                          "parameters": compact_schema(t.arguments.model_json_schema())}}
        for name, t in service.tools.items() if name in wanted
    ]  # fmt: skip
    return served + CALL_TOOLS


def context() -> str:
    calendar = Calendar(Path(":memory:"))
    calendar.seed(TODAY)
    record = json.dumps(calendar.patient("+15551234567"), separators=(",", ":"))
    return f"Today is {TODAY:%A} {TODAY}. The caller's number is +15551234567. find_patient: {record}"


def same_value(key: str, got: Any, want: Any) -> bool:
    if key == "day":
        try:
            return resolve_day(str(got), TODAY) == resolve_day(str(want), TODAY)
        except CalendarError:
            return False
    if key == "time":
        try:
            return (
                datetime.strptime(str(got).strip(), "%H:%M").time() == datetime.strptime(want, "%H:%M").time()
            )
        except ValueError:
            return False
    return got == want


def score(case: Case, text: str) -> dict[str, Any]:
    spotted = ToolCallFilter()
    _, calls = spotted.push(text)
    spotted.flush()
    name = calls[0].name if calls else ""
    args = calls[0].arguments if calls else {}
    right_tool = name in case.tools
    right_args = right_tool and all(same_value(k, args.get(k), v) for k, v in case.args.items())
    return {
        "said": case.said, "expected": list(case.tools), "expected_args": case.args, "got": name,
        "args": args, "text": text, "right_tool": right_tool, "right_args": right_args,
        "malformed": bool(spotted.errors),
    }  # fmt: skip


def bundled_llm() -> tuple[LlamaEngine, str]:
    """The default profile's LLM, batched as in a call, and its name."""
    from voxbus.engines.models import PROFILES

    spec = PROFILES["default"]["llm"]
    path = models_dir(load_settings()) / spec.name / spec.entry
    return LlamaEngine(path, LlmSettings(n_ctx=4096)), spec.name


def opening(prompt: str, ctx: str, greeting: str) -> list[ChatMessage]:
    """The conversation before the first case: the system prompt, the call's context and the
    greeting, as an assistant turn (what the agent said) or as a line of the context."""
    said = CLINIC["greeting"]
    if greeting == "context":
        ctx = f'{ctx} You have greeted the caller: "{said}"'
    system = [ChatMessage(role="system", content=PROMPTS[prompt]), ChatMessage(role="system", content=ctx)]
    return system if greeting == "context" else [*system, ChatMessage(role="assistant", content=said)]


def run_candidate(
    model: str, prompt: str, tools: list[dict[str, Any]], ctx: str, greeting: str = "assistant"
) -> dict[str, Any]:
    settings = load_settings()
    path = models_dir(settings) / model / CATALOGUE[model].entry
    engine = LlamaEngine(path, LlmSettings(n_ctx=4096))
    start = opening(prompt, ctx, greeting)
    results = []
    for c in CASES:
        messages = [*start, *(ChatMessage(role=r, content=t) for r, t in c.history)]
        messages.append(ChatMessage(role="user", content=c.said))
        engine.warm(messages[:-1], tools)  # the conversation so far is evaluated while the agent speaks
        started = time.perf_counter()
        first, pieces = None, []
        for piece in engine.stream(messages, 80, 0.0, tools=tools):
            first = first if first is not None else time.perf_counter() - started
            pieces.append(piece)
        row = score(c, "".join(pieces))
        row |= {
            "first_piece_ms": round((first or 0) * 1000),
            "total_ms": round((time.perf_counter() - started) * 1000),
        }
        results.append(row)
        print(
            f"  {'ok ' if row['right_args'] else 'BAD'} {c.said[:48]:48} -> "
            f"{row['got'] or row['text'][:50]!r} {row['args']}"
        )
    ttft = {}
    for label, offered in (("with_tools", tools), ("without_tools", None)):
        times = []  # the conversation so far cached (as in a call), the caller's new words not
        for question in ("What time is my appointment?", "Is the dentist in today?", "Where are you?"):
            messages = [*start, ChatMessage(role="user", content=question)]
            engine.warm(messages[:-1], offered)
            started = time.perf_counter()
            next(iter(engine.stream(messages, 8, 0.0, tools=offered)))
            times.append(time.perf_counter() - started)
        ttft[label] = round(statistics.median(times) * 1000)
    engine.close()
    calls = [r["total_ms"] for r in results if r["got"] and r["got"] != "hang_up"]
    return {
        "model": model, "prompt": prompt, "cases": len(results),
        "right_tool": sum(r["right_tool"] for r in results),
        "right_args": sum(r["right_args"] for r in results),
        "malformed": sum(r["malformed"] for r in results),
        "greeting": greeting,
        "repeats_greeting": sum(CLINIC["greeting"].split(".")[0] in r["text"] for r in results),
        "first_token_ms": ttft, "tool_call_ms_median": round(statistics.median(calls)) if calls else None,
        "results": results,
    }  # fmt: skip


def plot(runs: list[dict[str, Any]], path: Path) -> None:
    plt = pyplot()

    labels = [f"{r['model'].split('-instruct')[0]}\n{r['prompt']} prompt" for r in runs]
    fig, (acc, lat) = plt.subplots(1, 2, figsize=(11, 4))
    x = range(len(runs))
    acc.bar([i - 0.2 for i in x], [100 * r["right_tool"] / r["cases"] for r in runs], 0.4, label="right tool")
    acc.bar(
        [i + 0.2 for i in x],
        [100 * r["right_args"] / r["cases"] for r in runs],
        0.4,
        label="right tool and arguments",
    )
    acc.set_xticks(list(x), labels, fontsize=8)
    acc.set_ylabel(f"% of {runs[0]['cases']} caller utterances")
    acc.set_ylim(0, 100)
    acc.legend(fontsize=8)
    acc.set_title("Tool choice (clinic scenario)")
    lat.bar(
        [i - 0.2 for i in x],
        [r["first_token_ms"]["without_tools"] for r in runs],
        0.4,
        label="first token, no tools",
    )
    lat.bar(
        [i + 0.2 for i in x],
        [r["first_token_ms"]["with_tools"] for r in runs],
        0.4,
        label="first token, tools offered",
    )
    lat.set_xticks(list(x), labels, fontsize=8)
    lat.set_ylabel("ms (prefix cached)")
    lat.legend(fontsize=8)
    lat.set_title("First token with and without tools")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--model", action="append", help="catalogue LLM names (default: the 1.5B and 0.5B)")
    parser.add_argument("--prompt", action="append", choices=sorted(PROMPTS))
    parser.add_argument(
        "--greeting",
        action="append",
        choices=["assistant", "context"],
        help="where the greeting sits: an assistant turn (what voxbus does) or a line of the context",
    )
    parser.add_argument("--name", default="tool_calls", help="file name of the figures (JSON, PNG)")
    args = parser.parse_args()
    models = args.model or ["qwen2.5-coder-1.5b-instruct-q4_k_m", "qwen2.5-coder-0.5b-instruct-q4_k_m"]
    prompts = args.prompt or list(PROMPTS)
    tools, ctx = clinic_tools(), context()
    runs = []
    for model, prompt, greeting in (
        (m, p, g) for m in models for p in prompts for g in args.greeting or ["assistant"]
    ):
        print(f"{model}, {prompt} prompt, greeting as {greeting}:", flush=True)
        runs.append(run_candidate(model, prompt, tools, ctx, greeting))
        r = runs[-1]
        print(f"  right tool {r['right_tool']}/{r['cases']}, right arguments {r['right_args']}, "
              f"malformed {r['malformed']}, greeting repeated {r['repeats_greeting']}, "
              f"first token {r['first_token_ms']}", flush=True)  # fmt: skip
        # written after each candidate: a long run stopped early keeps what it measured
        args.out.mkdir(parents=True, exist_ok=True)
        result = {"today": str(TODAY), "runs": runs}
        write_json(args.out / f"{args.name}.json", result)
        plot(runs, args.out / f"{args.name}.png")


if __name__ == "__main__":
    main()
