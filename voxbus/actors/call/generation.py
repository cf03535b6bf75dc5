"""One agent utterance in flight: an answer to a caller turn, or the greeting.

A :class:`Generation` is a record with no I/O. It owns the stream of LLM text for its generation
id (:class:`LlmStream`: which worker, which attempt, everything received so far), cuts the text
into clauses for TTS, keeps tool calls away from speech, holds its clauses back while it is
*speculative* (the caller's turn is still open), counts the frames of each synthesised clause so
that :meth:`Generation.heard` can tell what the caller actually heard, and records its
:class:`~voxbus.actors.call.metrics.Timeline`. The call actor sends the requests it asks for.

Its life: speculative -> answering -> speaking -> done, or cancelled at any point (withdrawn,
superseded, interrupted); the greeting starts at speaking.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from voxbus.actors.call.metrics import Timeline
from voxbus.actors.call.repeats import OpeningRepeat
from voxbus.actors.clauses import ClauseSplitter
from voxbus.actors.tools import CALL_CONTROL, ToolCall, ToolCallFilter
from voxbus.actors.turns import heard_part
from voxbus.media.frames import FRAME_MS
from voxbus.schemas.events import SttFinal
from voxbus.schemas.messages import CallControl, LlmChunk, TtsRequest

Kind = Literal["answer", "greeting"]
# the agent's first frame takes ~150 ms to reach the caller's ear and a person ~200 ms to react to
# a sound: speech that begins sooner after it was already under way (a caller going on after a
# pause the agent took for their turn's end, its answer's first frame played 70 ms before)
REACTION_S = 0.3


@dataclass
class LlmStream:
    """The LLM's side of a generation. A retry asks any worker to continue after ``raw``; chunks
    of a request the generation gave up on are refused (a restarted worker, or the same one asked
    again, has the same id: the request number tells them apart), so a retry is idempotent."""

    last_progress: float  # monotonic s: when the worker last showed life (or was asked)
    worker: str | None = None
    attempt: int = 1
    request_no: int = 0  # the request whose chunks are taken (LlmRequest.request_no)
    raw: str = ""  # everything the LLM said, tool calls included
    streamed: bool = False  # a chunk of this request has arrived
    done: bool = False
    tools: ToolCallFilter = field(default_factory=ToolCallFilter)

    def accepts(self, chunk: LlmChunk) -> bool:
        return not self.done and chunk.worker_id == self.worker and chunk.request_no == self.request_no

    def retry_reason(self, now: float, timeout_s: float, first_token_timeout_s: float = 20.0) -> str | None:
        """Why the generation must be asked again (None: wait). A request nobody took is asked
        again after 250 ms; a worker that took it and went quiet after ``timeout_s`` once it has
        streamed, or after ``first_token_timeout_s`` before its first chunk (evaluating a long
        prompt that is not cached yet takes seconds: asking again then only queues the same work)."""
        quiet = now - self.last_progress
        if self.worker is None and quiet > 0.25:
            return "no worker accepted"
        limit = timeout_s if self.streamed else max(timeout_s, first_token_timeout_s)
        if quiet > limit:
            return f"worker {self.worker} silent for {quiet:.1f} s"
        return None


@dataclass
class Taken:
    """What one LLM chunk gave: clauses ready for TTS (text, last), tool calls, unreadable tools."""

    clauses: list[tuple[str, bool]]
    tool_calls: list[ToolCall]
    errors: list[str]


@dataclass
class Generation:
    gen: int
    turn: int
    kind: Kind
    splitter: ClauseSplitter
    llm: LlmStream
    user_text: str = ""  # the caller's words it answers
    speech_end_ts: float | None = None  # capture time of the end of those words
    turn_end: str = ""  # how the caller's turn ended (SttFinal.end_reason)
    text: str = ""  # what it says, tool calls left out
    speculative: bool = False  # the caller's turn is still open: clauses wait in ``held``
    held_back: bool = False  # it was speculative: the LLM started before the turn ended
    opener_chars: int = 0  # the early opener's length: said before the LLM was asked
    held: list[tuple[str, bool]] = field(default_factory=list)
    clauses: int = 0  # clauses sent to TTS
    clause_texts: dict[int, str] = field(default_factory=dict)
    clause_frames: dict[int, int] = field(default_factory=dict)
    tts_worker: str | None = None
    after_playout: list[CallControl] = field(default_factory=list)  # call control once played
    history_index: int | None = None  # where its answer sits in the history, once complete
    timeline: Timeline = field(default_factory=Timeline)
    # served tools: calls made, calls not answered yet, calls held while speculative, LLM rounds
    tools_started: int = 0
    round_calls: int = 0  # tool calls the LLM made in this round
    tools_pending: int = 0
    tools_deferred: list[ToolCall] = field(default_factory=list)
    tool_rounds: int = 0
    waiting_for_tools: bool = False  # the LLM ended on tool calls not answered yet
    tools_since: float | None = None  # monotonic s: the LLM began its first served tool call
    call_opened: float | None = None  # monotonic s: the LLM opened its first call, of any tool
    holding_said: bool = False
    early_hold: bool = False  # the holding phrase was said as the turn ended (a peeked tool call)
    early_responses: list[dict[str, Any]] = field(default_factory=list)  # before the LLM's end
    answer_from: int = 0  # where this LLM round's text starts in ``text``
    calls_made: set[str] = field(default_factory=set)  # served calls (name and arguments) so far
    repeated_call: bool = False  # this round repeated one of them: not made again
    to_ask: list[str] = field(default_factory=list)  # values a call of this round lacked: asked for
    tools_said: list[str] = field(default_factory=list)  # this round's answers worded by the tools
    round_needs_llm: bool = False  # a call of this round answered without wording the answer
    not_again: str = ""  # the greeting's first sentence: an LLM round that opens with it loses it
    opening: OpeningRepeat = field(init=False)  # this round's guard against ``not_again``

    def __post_init__(self) -> None:
        self.opening = OpeningRepeat(self.not_again)

    @classmethod
    def start(
        cls,
        gen: int,
        turn: int,
        kind: Kind,
        min_clause_chars: int,
        now: float,
        openers: bool = True,
        not_again: str = "",
        first_words: int = 0,
        group_starts: frozenset[str] = frozenset(),
    ) -> Generation:
        splitter = ClauseSplitter(min_clause_chars, openers, first_words, group_starts)
        return cls(gen=gen, turn=turn, kind=kind, splitter=splitter, llm=LlmStream(now), not_again=not_again)

    @property
    def heard_any(self) -> bool:
        """Has a frame of it been played to the caller?"""
        return "first_audio" in self.timeline.marks

    def answered_by(self, ts: float) -> bool:
        """Could speech of the caller's that began at ``ts`` (capture time) be their reaction to it?
        Not if it began within :data:`REACTION_S` of its first frame being played: the caller was
        going on with their own turn, not answering what they had barely started to hear."""
        first = self.timeline.marks.get("first_audio")
        return first is not None and ts - first >= REACTION_S

    def commit(self, turn: int, final: SttFinal, arrived: float) -> None:
        """The caller's turn ended: this generation answers it, its clauses may go out."""
        self.turn, self.user_text = turn, final.text.strip()
        self.speculative = False
        self.turn_end = final.end_reason
        self.timeline.marks["stt_final"] = final.ts
        self.timeline.bus_s += max(arrived - final.ts, 0.0)
        self.timeline.compute["stt"] = final.compute_s

    def say_opener(self, opener: str) -> None:
        """Its first words were chosen ahead (``early_opener``): they are said, and the LLM
        continues after them as if it had written them."""
        self.text = self.llm.raw = opener
        self.opener_chars = len(opener)

    def take(self, chunk: LlmChunk, now: float) -> Taken:
        """Add a chunk of LLM text (already checked with :meth:`LlmStream.accepts`)."""
        llm = self.llm
        llm.last_progress = now
        if not chunk.text and not chunk.done:
            return Taken([], [], [])  # the worker is at it: alive, nothing said yet
        llm.raw += chunk.text
        spoken, calls = llm.tools.push(chunk.text)
        decoding = llm.tools.decoding
        # words stream token by token; a call's arguments come after seconds of constrained
        # decoding, in which the worker is busy, not gone: the first-token timeout applies there
        llm.streamed = decoding is None
        if decoding is not None and self.call_opened is None:
            self.call_opened = now  # a call's opening tag: which tool shows some tokens later
        if decoding and decoding not in CALL_CONTROL and self.tools_since is None:
            # a served tool's call is being written: the caller has waited since its opening
            self.tools_since = self.call_opened
        if chunk.done:
            spoken += llm.tools.flush()
        spoken = self.opening.push(spoken) + (self.opening.flush() if chunk.done else "")
        errors = list(llm.tools.errors)
        llm.tools.errors.clear()
        self.text += spoken
        clauses = [(clause, False) for clause in self.splitter.push(spoken)]
        if chunk.done:
            llm.done = True
            clauses.append((self.splitter.flush(), True))
        return Taken(clauses, calls, errors)

    def wait_for_tools(self, clauses: list[tuple[str, bool]], now: float) -> list[tuple[str, bool]]:
        """The LLM ended on served tool calls: the answer goes on once they answer, so what it
        said so far does not end it."""
        if not (self.llm.done and (self.round_calls or self.tools_deferred or self.repeated_call)):
            return clauses
        self.waiting_for_tools = True
        if self.tools_since is None:
            self.tools_since = now
        return [(text, False) for text, _last in clauses if text]

    @property
    def awaiting_tools(self) -> bool:
        return self.waiting_for_tools

    @property
    def waits_on_tool(self) -> bool:
        """It waits on a served tool (its call being written, or the tool running), or said the
        holding phrase for one: what the caller says into the silence then is a turn of theirs,
        answered once this generation is over (see ``TurnTaking.spoke_on_hold``)."""
        return self.tools_since is not None or self.holding_said

    def next_round(self, now: float) -> None:
        """The tools answered: the LLM is asked again, and says what follows from them."""
        self.llm = LlmStream(now, request_no=self.llm.request_no)
        self.answer_from = len(self.text)
        self.tool_rounds += 1
        self.round_calls = 0
        self.waiting_for_tools = False
        self.repeated_call = False
        self.to_ask = []
        self.tools_said = []
        self.round_needs_llm = False
        self.opening = OpeningRepeat(self.not_again)

    def round_text(self) -> str:
        """What the LLM said in this round, tool calls included (for the history)."""
        return self.llm.raw

    def hold(self, text: str, last: bool) -> bool:
        """Keep a clause back while speculative (True); it is said only if the turn ends with
        these words."""
        if self.speculative:
            self.held.append((text, last))
        return self.speculative

    def release(self) -> list[tuple[str, bool]]:
        held, self.held = self.held, []
        return held

    def tts_request(self, call_id: str, text: str, last: bool, now: float) -> TtsRequest:
        """The next clause to synthesise; the first one marks ``first_clause``."""
        index = self.clauses
        self.clause_texts[index] = text
        if index == 0:
            self.timeline.marks["first_clause"] = now
        self.clauses += 1
        return TtsRequest(call_id=call_id, gen=self.gen, turn=self.turn, index=index, text=text, last=last)

    def spoken(self) -> list[tuple[str, int]]:
        """(clause, frames) of every clause synthesised so far, in order."""
        return [
            (self.clause_texts[i], f) for i, f in sorted(self.clause_frames.items()) if i in self.clause_texts
        ]

    def heard(self, played_ms: int | None) -> str:
        """The words the caller heard when ``played_ms`` of its audio had been played."""
        return heard_part(self.spoken(), (played_ms or 0) // FRAME_MS)

    def heard_at_end(self) -> str:
        """What the caller heard of it when it is stopped with no playout report: all of it once
        its audio started (a call ended mid-answer), nothing if none was played (superseded)."""
        return self.text if self.heard_any else ""

    def words_played(self, from_ms: int, to_ms: int) -> str:
        """The words of its audio between ``from_ms`` and ``to_ms``. A clause whose length is not
        known yet (its synthesis not done) counts as played to its end."""
        said = " ".join(self.clause_texts[i] for i in sorted(self.clause_texts)).split()
        start = len(self.heard(max(from_ms, 0)).split())
        known_ms = sum(self.clause_frames.values()) * FRAME_MS
        end = len(said) if to_ms >= known_ms else len(self.heard(to_ms).split())
        return " ".join(said[start:end])
