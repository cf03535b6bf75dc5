"""Batched decoding (``llm.parallel`` > 1) with the test model: sequences decode together, one
cancelled leaves the others whole, and a call's next turn, a new call's shared prefix and an
agent's prompt being warmed when its first call comes are not evaluated again. Properties of the
decoder, never the model's words: with ``min_tokens`` = ``max_tokens`` = N an answer is whole
exactly when it has N tokens."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from voxbus.config import LlmSettings, Settings
from voxbus.engines.llm import LlamaEngine
from voxbus.engines.llm_batch import Generation, common_prefix
from voxbus.engines.llm_sampling import Sampling
from voxbus.schemas.messages import PREWARM_CALL_ID, ChatMessage, agent_prompt_session

pytestmark = pytest.mark.integration
SYSTEM = ChatMessage(role="system", content="You are the phone agent of a clinic. Be brief and kind.")
N = 24
OpenLlm = Callable[[LlmSettings | None], LlamaEngine]


@pytest.fixture
def engine(settings: Settings, open_llm: OpenLlm) -> LlamaEngine:
    settings.llm.parallel = 2
    settings.llm.min_tokens = 0
    return open_llm(settings.llm)


def ask(engine: LlamaEngine, words: str, session: str, cancelled=lambda: False) -> Generation:  # noqa: ANN001
    prompt, stops = engine.prompt([SYSTEM, ChatMessage(role="user", content=words)])
    tokens = engine.llm.tokenize(prompt.encode(), special=True)
    sampling = Sampling(max_tokens=N, min_tokens=N, temperature=0.7, stops=stops)
    assert engine._batch is not None
    return engine._batch.submit(Generation(session, tokens, sampling, cancelled))


def tokens_of(engine: LlamaEngine, messages: list[ChatMessage]) -> list[int]:
    return engine.llm.tokenize(engine.prompt(messages)[0].encode(), special=True)


def warm_up(engine: LlamaEngine, messages: list[ChatMessage], session: str = PREWARM_CALL_ID) -> Generation:
    """A prompt evaluated ahead: by default an agent's, for all its calls (as voxbus.actors.prewarm
    asks); with a call's ``session``, that call's words so far."""
    nothing = Sampling(max_tokens=0, temperature=0.0)
    assert engine._batch is not None
    return engine._batch.submit(
        Generation(session, tokens_of(engine, messages), nothing, lambda: False, warm_only=True)
    )


def read(generation: Generation, into: list[str]) -> None:
    into.extend(generation)


def test_two_answers_decode_together_and_both_end_whole(engine: LlamaEngine) -> None:
    answers: list[list[str]] = [[], []]
    with engine._batch._wake:  # both in the decoder's inbox before it looks: admitted together
        generations = [
            ask(engine, "What are your opening hours?", "a"),
            ask(engine, "Can I come on Friday?", "b"),
        ]
    readers = [threading.Thread(target=read, args=(g, a)) for g, a in zip(generations, answers, strict=True)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(timeout=120)
    assert [g.state.produced for g in generations] == [N, N]
    assert all("".join(a).strip() for a in answers)
    assert engine._batch.steps_with_several > 0  # they did share decoding steps


def test_a_cancelled_answer_leaves_the_other_whole(engine: LlamaEngine) -> None:
    kept: list[str] = []
    dropped: list[str] = []

    def barge_in() -> bool:  # the caller speaks once three tokens of the answer exist
        return interrupted.state is not None and interrupted.state.produced >= 3

    with engine._batch._wake:
        other = ask(engine, "What are your opening hours?", "a")
        interrupted = ask(engine, "Can I come on Friday?", "b", cancelled=barge_in)
    readers = [
        threading.Thread(target=read, args=(other, kept)),
        threading.Thread(target=read, args=(interrupted, dropped)),
    ]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(timeout=120)
    assert interrupted.state.produced == 3
    assert "".join(kept).strip()
    assert other.state.produced == N


def test_a_calls_next_turn_and_a_new_calls_prompt_reuse_what_is_evaluated(engine: LlamaEngine) -> None:
    batch = engine._batch
    first = [SYSTEM, ChatMessage(role="user", content="Hello, I need to move my appointment.")]
    answer = "".join(engine.stream(first, 16, 0.0, session="a"))
    before = batch.prompt_tokens_evaluated
    second = [
        *first,
        ChatMessage(role="assistant", content=answer),
        ChatMessage(role="user", content="To Friday."),
    ]
    "".join(engine.stream(second, 4, 0.0, session="a"))
    whole = len(tokens_of(engine, second))
    assert batch.prompt_tokens_evaluated - before < whole // 2  # only the new words and the answer's end
    before = batch.prompt_tokens_evaluated
    other = [SYSTEM, ChatMessage(role="user", content="Is the clinic open on Sunday?")]
    "".join(engine.stream(other, 4, 0.0, session="b"))
    system_part = len(tokens_of(engine, [SYSTEM]))
    whole = len(tokens_of(engine, other))
    assert batch.prompt_tokens_evaluated - before <= whole - system_part + 8  # the system prompt copied


def test_a_turn_evaluated_ahead_leaves_only_its_last_words(engine: LlamaEngine) -> None:
    batch = engine._batch
    said = "Hello, I need to move my appointment from Monday to Friday afternoon, my dog is sick."
    heard_so_far = "Hello, I need to move my appointment from Monday to"  # a partial transcript
    engine.warm([SYSTEM, ChatMessage(role="user", content=heard_so_far)], session="a")
    warmed = engine.llm.tokenize(
        engine.prompt([SYSTEM, ChatMessage(role="user", content=heard_so_far)])[0].encode(), special=True
    )
    whole = engine.llm.tokenize(
        engine.prompt([SYSTEM, ChatMessage(role="user", content=said)])[0].encode(), special=True
    )
    common = next(i for i, (a, b) in enumerate(zip(warmed, whole, strict=False)) if a != b)
    before = batch.prompt_tokens_evaluated
    "".join(engine.stream([SYSTEM, ChatMessage(role="user", content=said)], 4, 0.0, session="a"))
    assert batch.prompt_tokens_evaluated - before == len(whole) - common  # the words after the partial


def test_a_warm_up_outdated_by_its_calls_request_stops_and_hands_over_its_sequence(
    engine: LlamaEngine,
) -> None:
    batch = engine._batch
    assert batch is not None
    before = batch.prompt_tokens_evaluated
    with batch._wake:  # both in the decoder's inbox before it looks
        warm = warm_up(engine, [SYSTEM, ChatMessage(role="user", content="I need to move my")], "a")
        answer = ask(engine, "I need to move my appointment to Friday.", "a")
    assert "".join(answer).strip() and answer.state.produced == N
    assert list(warm) == [] and warm.state.pending  # stopped before its prompt was evaluated
    assert warm.seq is answer.seq  # the request took the call's own sequence
    real = len(
        tokens_of(
            engine, [SYSTEM, ChatMessage(role="user", content="I need to move my appointment to Friday.")]
        )
    )
    assert batch.prompt_tokens_evaluated - before == real  # the warm-up's prompt was not evaluated as well


def test_a_full_kv_cache_forgets_the_least_recently_used_idle_call(
    settings: Settings, open_llm: OpenLlm
) -> None:
    settings.llm.parallel, settings.llm.n_ctx, settings.llm.min_tokens = 2, 256, 0
    engine = open_llm(settings.llm)  # room for about 768 tokens
    assert engine._batch is not None
    words = [
        "apple",
        "banana",
        "cherry",
        "dragon",
        "eagle",
        "falcon",
        "garden",
        "harbor",
        "island",
        "jungle",
        "kettle",
        "lemon",
        "mango",
    ]
    for call in range(8):  # eight calls of ~190 tokens each, nothing shared but the template
        topic = " ".join(words[(call + k) % len(words)] for k in range(150))
        system = ChatMessage(role="system", content=f"Call {call}. {topic}")
        prompt, stops = engine.prompt([system, ChatMessage(role="user", content="Say something.")])
        tokens = engine.llm.tokenize(prompt.encode(), special=True)
        sampling = Sampling(max_tokens=N, min_tokens=N, temperature=0.7, stops=stops)
        generation = engine._batch.submit(Generation(f"call-{call}", tokens, sampling, lambda: False))
        assert "".join(generation).strip()
        assert generation.state.produced == N
    assert engine._batch.evicted > 0


DROPPED = """
import sys
from voxbus.config import load_settings
from voxbus.engines.llm import LlamaEngine
from voxbus.engines.models import model_path
from voxbus.schemas.messages import PREWARM_CALL_ID, ChatMessage, agent_prompt_session

settings = load_settings()
settings.llm.parallel, settings.llm.min_tokens = 2, 64
question = [ChatMessage(role="user", content="Tell me a long story.")]
for _ in range(3):
    engine = LlamaEngine(model_path(settings, "llm"), settings.llm)
    next(iter(engine.stream(question, 64, 0.0)))  # the answer's first piece; the rest left unread
    del engine  # while the decoding thread is still on that answer
print("survived")
"""


def test_an_engine_dropped_without_close_while_it_decodes_does_not_crash(settings: Settings) -> None:
    """The Llama object's own finaliser freed the model while the decoding thread was still on
    an answer nobody read: a segmentation fault (bench/tool_calls.py, two runs in two). In a child
    process, so that a crash is this test's failure, not the end of the test run."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", DROPPED], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "survived" in done.stdout, (done.returncode, done.stderr[-2000:])


def test_an_agents_first_call_takes_over_the_warm_up_of_its_prompt(engine: LlamaEngine) -> None:
    batch = engine._batch
    assert batch is not None
    before = batch.prompt_tokens_evaluated
    with batch._wake:  # both in the decoder's inbox before it looks
        warm = warm_up(engine, [SYSTEM])
        answer = ask(engine, "I need to move my appointment to Friday.", "call-1")
    assert "".join(answer).strip() and answer.state.produced == N
    assert list(warm) == [] and warm.state.pending  # stopped: the call evaluates the prompt itself
    real = tokens_of(
        engine, [SYSTEM, ChatMessage(role="user", content="I need to move my appointment to Friday.")]
    )
    assert batch.prompt_tokens_evaluated - before == len(real)  # nothing evaluated twice


def test_another_agents_warm_up_goes_on(engine: LlamaEngine) -> None:
    batch = engine._batch
    assert batch is not None
    other = ChatMessage(role="system", content="You take orders for a pizzeria. Ask for the address first.")
    with batch._wake:
        warm = warm_up(engine, [other])
        answer = ask(engine, "I need to move my appointment to Friday.", "call-1")
    assert "".join(answer).strip() and answer.state.produced == N
    assert list(warm) == [] and not warm.state.pending  # evaluated whole
    assert batch.warm_tokens_beside_answers == 0  # once no answer waited for a step


def test_two_agents_prompts_stay_evaluated_side_by_side(engine: LlamaEngine) -> None:
    """Every agent's prompt is warmed for its calls (as voxbus.actors.prewarm asks, each agent
    on its own session): the second warmed does not replace the first, whose call then
    evaluates only what follows the prompt."""
    batch = engine._batch
    assert batch is not None
    pizzeria = ChatMessage(role="system", content="You take orders for a pizzeria. Ask for the address.")
    for agent in (SYSTEM, pizzeria):
        assert list(warm_up(engine, [agent], agent_prompt_session(agent.content))) == []
    before = batch.prompt_tokens_evaluated
    words = [SYSTEM, ChatMessage(role="user", content="I need to move my appointment to Friday.")]
    assert "".join(engine.stream(words, 4, 0.0, session="call-1")).strip()
    prompt_part = common_prefix(tokens_of(engine, [SYSTEM]), tokens_of(engine, words))
    assert batch.prompt_tokens_evaluated - before == len(tokens_of(engine, words)) - prompt_part


def test_an_answer_to_the_words_a_peek_evaluated_starts_from_its_first_token(engine: LlamaEngine) -> None:
    """The caller's words heard in full before the turn was decided were peeked at: the answer
    to them takes the peek's first token instead of evaluating the prompt's last one again."""
    batch = engine._batch
    assert batch is not None
    words = [SYSTEM, ChatMessage(role="user", content="I need to move my appointment to Friday.")]
    first = engine.peek(words, 1, session="call-1")
    before = batch.prompt_tokens_evaluated
    answer = "".join(engine.stream(words, 6, 0.7, session="call-1"))
    assert batch.prompt_tokens_evaluated == before  # no step before the first token
    assert engine.prompt_tokens_evaluated("call-1") == 0  # as llm.first_token reports it
    assert answer.startswith(first.strip())
    other = [SYSTEM, ChatMessage(role="user", content="I need to move my appointment to Monday.")]
    engine.peek(other, 1, session="call-1")
    before = batch.prompt_tokens_evaluated
    "".join(
        engine.stream(
            [*other[:1], ChatMessage(role="user", content="Monday, please.")], 2, 0.7, session="call-1"
        )
    )
    assert batch.prompt_tokens_evaluated > before  # other words: evaluated as ever
    assert engine.prompt_tokens_evaluated("call-1") == batch.prompt_tokens_evaluated - before


def test_another_calls_words_evaluated_ahead_go_on(engine: LlamaEngine) -> None:
    """Two calls of one agent share its prompt: a call's request does not stop the other call's
    warm-up of its caller's words so far (only that call's own request makes it outdated)."""
    batch = engine._batch
    assert batch is not None
    ahead = [SYSTEM, ChatMessage(role="user", content="Hello, I would like to move my appointment")]
    with batch._wake:
        warm = warm_up(engine, ahead, "call-2")
        answer = ask(engine, "Hello, I would like to book a cleaning.", "call-1")
    assert "".join(answer).strip() and answer.state.produced == N
    assert list(warm) == [] and not warm.state.pending  # evaluated whole
    assert batch.warm_tokens_beside_answers == 0  # once no answer waited for a step


def test_two_warm_ups_of_one_prompt_evaluate_it_once(engine: LlamaEngine) -> None:
    """An agent's prompt warmed for its calls and a call's opening warmed at the same moment (a
    tool service came up just before the call): the second waits for the first and copies it."""
    batch = engine._batch
    assert batch is not None
    before = batch.prompt_tokens_evaluated
    opening = [SYSTEM, ChatMessage(role="assistant", content="Hello, this is the clinic.")]
    with batch._wake:
        agents = warm_up(engine, [SYSTEM])
        calls = warm_up(engine, opening, "call-1")
    assert list(agents) == [] and list(calls) == []
    assert not agents.state.pending and not calls.state.pending  # both whole
    first, second = tokens_of(engine, [SYSTEM]), tokens_of(engine, opening)
    shared = common_prefix(first, second)
    assert batch.prompt_tokens_evaluated - before == len(first) + len(second) - shared


def test_a_calls_request_drops_its_warm_up_not_yet_begun(engine: LlamaEngine) -> None:
    batch = engine._batch
    assert batch is not None
    other = ChatMessage(role="system", content="You take orders for a pizzeria. Ask for the address first.")
    with batch._wake:
        running = warm_up(engine, [other])  # another agent's: goes on, and keeps the next one waiting
        ahead = warm_up(engine, [SYSTEM, ChatMessage(role="user", content="I need to move")], "call-1")
        answer = ask(engine, "I need to move my appointment to Friday.", "call-1")
    assert "".join(answer).strip() and answer.state.produced == N
    assert list(ahead) == [] and ahead.state is None  # never placed
    assert list(running) == [] and not running.state.pending


def ask_during_a_warm_up_step(engine: LlamaEngine, words: str, session: str) -> Generation:
    """``ask`` while one of a warm-up's steps is in flight (a step cannot end while its lock is held)."""
    batch = engine._batch
    assert batch is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with batch._abort._lock:
            if batch._abort._step is not None:
                return ask(engine, words, session)
        time.sleep(0.001)
    raise AssertionError("no warm-up step was seen in flight")


LONG_WORDS = " ".join(["Hello, I would like to move my appointment"] * 60)  # several steps


def test_a_warm_up_step_its_calls_request_has_no_use_for_is_stopped_in_flight(engine: LlamaEngine) -> None:
    """The caller's words so far were evaluated ahead, whisper then wrote them otherwise: the
    request stops the warm-up's step at once instead of waiting for it, and the KV cache keeps
    exactly what the decoder believes it holds (llama.cpp drops a stopped step's cells)."""
    batch = engine._batch
    assert batch is not None
    warm = warm_up(engine, [SYSTEM, ChatMessage(role="user", content=LONG_WORDS)], "a")
    answer = ask_during_a_warm_up_step(engine, "Good morning, can I book a cleaning?", "a")
    assert "".join(answer).strip() and answer.state.produced == N
    assert list(warm) == [] and warm.state.pending  # stopped, then outdated by the request
    assert batch.warm_steps_stopped == 1
    memory = batch.ctx.memory
    for seq in (warm.seq, answer.seq):
        assert batch._lib.llama_memory_seq_pos_max(memory, seq.id) == len(seq.tokens) - 1


def test_a_warm_up_step_that_the_request_goes_on_from_is_not_stopped(engine: LlamaEngine) -> None:
    batch = engine._batch
    assert batch is not None
    warm_up(engine, [SYSTEM, ChatMessage(role="user", content=LONG_WORDS)], "a")
    answer = ask_during_a_warm_up_step(engine, LONG_WORDS, "a")  # the same words: the step is of use
    assert "".join(answer).strip() and answer.state.produced == N
    assert batch.warm_steps_stopped == 0
