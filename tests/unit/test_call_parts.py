"""The call actor's parts that hold no turn-taking: a generation's stream of text, the
conversation's history and prompt, and the turn metrics."""

from __future__ import annotations

from voxbus.actors.call.conversation import INTERRUPTED_MARK, Conversation
from voxbus.actors.call.generation import Generation
from voxbus.actors.call.metrics import turn_metrics
from voxbus.actors.call.outbound import Outbound
from voxbus.clock import ManualClock
from voxbus.config import AgentSettings
from voxbus.schemas.base import Accepted
from voxbus.schemas.events import Event, LlmRequested, SttFinal
from voxbus.schemas.messages import CallState, LlmChunk


def chunk(text: str, done: bool = False, worker: str = "llm-1", request_no: int = 1) -> LlmChunk:
    return LlmChunk(call_id="c", gen=1, seq=0, text=text, done=done, worker_id=worker, request_no=request_no)


def answer() -> Generation:
    generation = Generation.start(1, 1, "answer", 12, now=0.0)
    generation.llm.worker, generation.llm.request_no = "llm-1", 1  # as Outbound.request_llm sets them
    return generation


def test_streamed_text_becomes_clauses_and_tool_calls_never_reach_speech() -> None:
    generation = answer()
    first = generation.take(chunk("Sure, I can help. "), now=1.0)
    assert first.clauses == [("Sure,", False), ("I can help.", False)]  # an opener, then its sentence
    call = '<tool_call>{"name": "transfer_to_human", "arguments": {}}</tool_call>'
    rest = generation.take(chunk(f"One moment.{call}", done=True), 2.0)
    assert rest.clauses == [("One moment.", True)]
    assert [c.name for c in rest.tool_calls] == ["transfer_to_human"]
    assert generation.text == "Sure, I can help. One moment." and generation.llm.done
    assert "<tool_call>" in generation.llm.raw  # a retry continues after all of it


def test_chunks_from_a_worker_given_up_on_are_refused() -> None:
    generation = answer()
    assert generation.llm.accepts(chunk("Hi"))
    assert not generation.llm.accepts(chunk("Hi", worker="llm-2"))
    generation.take(chunk("Hi.", done=True), 1.0)
    assert not generation.llm.accepts(chunk(" more"))


def test_chunks_of_a_request_asked_again_are_refused_even_from_the_same_worker() -> None:
    """A retry that reaches the same worker (or its restarted process, same id): the first
    request's stream, if it goes on, must not mix with the second's."""
    generation = answer()
    generation.take(chunk("<tool_call>"), 1.0)
    generation.llm.request_no = 2  # asked again, continuing after what it has
    assert not generation.llm.accepts(chunk('{"name'))
    assert generation.llm.accepts(chunk('{"name', request_no=2))


def test_a_chunk_with_no_text_says_the_worker_is_alive_and_nothing_else() -> None:
    generation = answer()
    taken = generation.take(chunk(""), now=15.0)
    assert taken.clauses == [] and taken.tool_calls == [] and generation.llm.raw == ""
    assert not generation.llm.streamed  # the first-token timeout still applies
    assert generation.llm.retry_reason(16.0, 2.0, 20.0) is None
    assert generation.llm.retry_reason(36.0, 2.0, 20.0) == "worker llm-1 silent for 21.0 s"


def test_an_llm_request_is_retried_when_nobody_took_it_or_the_worker_went_quiet() -> None:
    generation = Generation.start(1, 1, "answer", 12, now=10.0)
    assert generation.llm.retry_reason(10.2, 2.0) is None
    assert generation.llm.retry_reason(10.3, 2.0) == "no worker accepted"
    generation.llm.worker = "llm-1"
    assert generation.llm.retry_reason(12.5, 2.0, 20.0) is None  # evaluating a long prompt: no chunk yet
    assert generation.llm.retry_reason(30.5, 2.0, 20.0) == "worker llm-1 silent for 20.5 s"
    generation.llm.streamed = True  # it has streamed: a pause of 2 s is a dead worker
    assert generation.llm.retry_reason(11.9, 2.0) is None
    assert generation.llm.retry_reason(12.5, 2.0) == "worker llm-1 silent for 2.5 s"


def test_speculative_clauses_wait_until_the_turn_ends() -> None:
    generation = answer()
    generation.speculative = True
    assert generation.hold("Sure.", False) and generation.hold("Bye.", True)
    final = SttFinal(call_id="c", text=" Book it ", start_ms=0, end_ms=0, compute_s=0.2, ts=5.0)
    generation.commit(2, final, arrived=5.01)
    assert not generation.hold("More.", False)
    assert generation.release() == [("Sure.", False), ("Bye.", True)] and generation.release() == []
    assert generation.user_text == "Book it" and generation.turn == 2


def test_what_the_caller_heard_comes_from_the_frames_played() -> None:
    generation = answer()
    for text in ["Paris is the capital.", "It lies on the Seine river."]:
        generation.tts_request("c", text, last=False, now=1.0)
    generation.clause_frames = {0: 50, 1: 60}
    assert [r for r in generation.clause_texts] == [0, 1] and "first_clause" in generation.timeline.marks
    assert generation.heard(80 * 20) == "Paris is the capital. It lies on"
    assert generation.heard(None) == ""
    assert generation.words_played(1000, 1600) == "It lies on"
    generation.tts_request("c", "Its bridges are old.", last=True, now=2.0)  # not synthesised yet
    assert generation.words_played(2000, 3000) == "river. Its bridges are old."


def conversation(keep: int = 24) -> Conversation:
    return Conversation(CallState(call_id="c", owner="a"), AgentSettings(history_messages=keep))


def test_a_withdrawn_turn_leaves_the_history() -> None:
    talk = conversation()
    talk.add_answer("Hello, how can I help you?")
    assert talk.open_turn("I'd like to book.") == 1
    talk.withdraw_turn()
    assert talk.turn == 0 and [m.role for m in talk.history] == ["assistant"]
    talk.withdraw_turn()  # the agent spoke last: nothing to withdraw
    assert len(talk.history) == 1


def test_an_interrupted_answer_keeps_what_was_heard_and_is_shown_cut_off() -> None:
    talk = conversation()
    talk.open_turn("Tell me a story.")
    index = talk.add_answer("Once upon a time there was a knight.")
    talk.open_turn("Stop.")
    talk.cut_answer(index, "Once upon a time")
    assert [m.content for m in talk.history] == ["Tell me a story.", "Stop.", "Once upon a time"]
    prompt = talk.prompt(pending="And now?")
    assert prompt[0].role == "system" and prompt[-2].content == "Once upon a time" + INTERRUPTED_MARK
    assert prompt[-1].content == "And now?"


def test_the_prompt_window_keeps_the_system_prompt_and_drops_history_in_halves() -> None:
    talk = conversation(keep=4)
    for n in range(5):
        talk.open_turn(f"question {n}")
    prompt = talk.prompt()
    assert prompt[0].role == "system"
    assert [m.content for m in prompt[1:]] == ["question 2", "question 3", "question 4"]


def test_turn_metrics_measure_from_the_end_of_speech() -> None:
    generation = answer()
    generation.speech_end_ts = 100.0
    marks = {"vad_decision": 100.2, "stt_final": 100.3, "llm_first_token": 100.6, "first_clause": 100.7}
    generation.timeline.marks.update(marks, tts_first_frame=100.8, first_audio=100.9)
    generation.timeline.compute.update(stt=0.1, llm=0.25, tts=0.08)
    metrics = turn_metrics("c", generation, interrupted=False)
    assert metrics.first_audio_ms == 900.0 and metrics.vad_decision_ms == 200.0
    # 700 ms after the VAD: 430 ms in the engines, 100 decoding the first clause, 170 elsewhere
    assert metrics.orchestration_ms == 170.0
    generation.held_back = True
    assert turn_metrics("c", generation, interrupted=True).orchestration_ms is None


def test_a_generation_stopped_unheard_leaves_nothing_heard() -> None:
    generation = answer()
    generation.text = "Paris is the capital."
    assert generation.heard_at_end() == ""  # superseded before a frame was played
    generation.timeline.marks["first_audio"] = 1.0
    assert generation.heard_at_end() == "Paris is the capital."


class AcceptingLater:
    """A bus whose LLM worker accepts after 20 ms, and which keeps what the call emits."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock, self.emitted = clock, []

    async def request(self, subject: str, message: object, reply: type, timeout: float) -> Accepted:
        self.clock.advance(0.020)
        return Accepted(worker_id="llm-1", role="llm")

    def emit(self, event: Event) -> None:
        self.emitted.append(event)


async def test_llm_requested_is_stamped_when_the_request_went_out() -> None:
    """Not when the acceptance came back: a worker whose first token needed no step (a peek's)
    stamps llm.first_token before that, and the events must read in the order of their causes."""
    clock = ManualClock()
    sent_at = clock.time()
    bus = AcceptingLater(clock)
    outbound = Outbound(bus, clock, "c", AgentSettings())  # type: ignore[arg-type]
    generation = Generation.start(1, 1, "answer", 12, now=0.0)
    await outbound.request_llm(generation, [])
    (requested,) = bus.emitted
    assert isinstance(requested, LlmRequested) and requested.worker_id == "llm-1"
    assert requested.ts == sent_at and generation.llm.worker == "llm-1"
