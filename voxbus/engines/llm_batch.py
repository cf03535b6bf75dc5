"""Several calls' answers decoded together on one llama.cpp context (``llm.parallel`` > 1).

One decoding step of a small model streams all of its weights from memory once; two or more
sequences in one batch share that read, so on a CPU two answers cost less than twice one (the
pattern of llama.cpp's examples/batched and examples/parallel). Each call keeps its own KV
sequence across its turns, so its system prompt, history and last answer stay evaluated; a new
call's prompt copies the longest evaluated prefix of any other sequence (the agent's system prompt
and tool descriptions), which costs nothing in a unified KV cache: the cells gain a sequence id.

One thread owns the context, the batch and the samplers (llama.cpp's objects are not thread-safe);
other threads submit a :class:`Generation` and read its pieces from a queue. A step puts the next
token of every decoding sequence in the batch, then prompt tokens of the others up to a budget
that keeps a step short: a new caller's prompt delays the other calls' next token by one small
chunk, not by a whole prompt. Warm-ups (prompts evaluated ahead) run only in steps that no answer
waits for: on two cores a step's cost grows with every token in it (measured: 1 token 88 ms, 8
tokens 627 ms, 32 tokens 1.2 s), so a warm-up chunk beside an answer's next token made that token
up to ten times slower; a caller waited 9 s for the first token of an answer while the agents'
prompts were being warmed. A warm-up's step in flight when a request comes that has no use for
what it evaluates is stopped at once (:mod:`voxbus.engines.llm_abort`).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from voxbus.engines.llm_abort import StepAbort, WarmStep, route_llama_log
from voxbus.engines.llm_sampling import GenerationState, Sampling, end_of_generation_tokens
from voxbus.logs import get_logger
from voxbus.schemas.messages import is_agent_prompt_session

log = get_logger(__name__)

DECODING_CHUNK = 32  # prompt tokens per step while other sequences are decoding
IDLE_CHUNK = 128  # prompt tokens per step when nobody is waiting for a next token
BATCH_TOKENS = 512
_END = object()


class Generation:
    """One request: its prompt, how to sample, and the queue its text pieces arrive on."""

    def __init__(
        self,
        session: str,
        prompt: list[int],
        sampling: Sampling,
        cancelled: Callable[[], bool],
        warm_only: bool = False,
    ) -> None:
        self.session, self.prompt, self.sampling = session, prompt, sampling
        self.cancelled, self.warm_only = cancelled, warm_only
        self._out: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = threading.Event()
        self.state: GenerationState | None = None  # the decoding thread's own, from here on
        self.seq: _Sequence | None = None

    @property
    def peeking(self) -> bool:
        """A warm-up that also samples the answer's first tokens (``max_tokens`` of them): the
        first from its prompt's last step, at no cost; the others in steps no answer waits for."""
        return self.warm_only and self.sampling.max_tokens > 0

    def __iter__(self) -> Iterator[str]:
        """The text, piece by piece, until the answer ends (blocking)."""
        try:
            while (item := self._out.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.close()

    def close(self) -> None:
        """The reader wants no more: the decoding thread drops it at its next step."""
        self._closed.set()

    def stopped(self) -> bool:
        return self._closed.is_set() or self.cancelled()

    def put(self, item: Any) -> None:
        self._out.put(item)

    def end(self, error: BaseException | None = None) -> None:
        if error is not None:
            self._out.put(error)
        self._out.put(_END)


class _Sequence:
    """A KV sequence and an exact mirror of the tokens evaluated into it."""

    def __init__(self, seq_id: int) -> None:
        self.id = seq_id
        self.tokens: list[int] = []
        self.session = ""
        self.busy = False
        self.used = 0.0
        # a peek's first token and the tokens it was sampled after (its prompt): an answer to the
        # very same prompt starts from it instead of evaluating the prompt's last token again
        self.sampled: tuple[tuple[int, ...], int] | None = None


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class BatchDecoder:
    def __init__(self, model: Any, n_ctx: int, parallel: int, n_threads: int) -> None:
        import llama_cpp
        from llama_cpp._internals import LlamaContext
        from llama_cpp._utils import suppress_stdout_stderr

        self._lib = llama_cpp
        self.model = model
        self.n_ctx = n_ctx  # the most one sequence may hold
        n_seq = 2 * parallel + 2  # room for idle calls' histories and the agents' prompts
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx * (parallel + 1)
        params.n_batch = params.n_ubatch = BATCH_TOKENS
        params.n_seq_max = n_seq
        params.kv_unified = True  # prefixes shared between sequences without copies
        params.n_threads = params.n_threads_batch = n_threads
        with suppress_stdout_stderr(disable=False):  # llama.cpp's own log lines, as Llama does
            self.ctx = LlamaContext(model=model, params=params, verbose=False)
        self._batch = llama_cpp.llama_batch_init(BATCH_TOKENS, 0, 1)
        self.seqs = [_Sequence(i) for i in range(n_seq)]
        self.eog = end_of_generation_tokens(model)
        self.steps_with_several = 0  # decoding steps that advanced two or more answers at once
        self.prompt_tokens_evaluated = 0
        self.warm_tokens_beside_answers = 0  # warm-up tokens in a step an answer waited for: 0
        self.evicted = 0  # idle sequences forgotten to make room
        self.warm_steps_stopped = 0  # warm-up steps stopped in flight for an answer (llm_abort)
        # per session, the prompt tokens its last request evaluated before its first token: what
        # the cache did not hold (llm.first_token's prompt_tokens)
        self.evaluated_for: dict[str, int] = {}
        self._abort = StepAbort(llama_cpp, self.ctx.ctx)
        route_llama_log(llama_cpp)
        self._inbox: list[Generation] = []
        self._waiting: list[Generation] = []
        self._running: list[Generation] = []
        self._wake = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="llama-batch", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the decoding thread and free the context, before the model it was made from is
        freed: a context outliving its model, freed later by the garbage collector on whatever
        thread it runs, is a crash in native code at a random moment."""
        with self._wake:
            self._closing = True
            self._wake.notify()
        self._thread.join()

    def submit(self, generation: Generation) -> Generation:
        if len(generation.prompt) >= self.n_ctx:
            raise ValueError(
                f"the prompt has {len(generation.prompt)} tokens; the context holds {self.n_ctx}"
            )
        with self._wake:
            self._inbox.append(generation)
            self._wake.notify()
        if not generation.warm_only:  # it would wait for a warm-up's step: stop one it has no use for
            prompt = generation.prompt
            self._abort.stop_if(lambda step: common_prefix(step.evaluated, prompt) < len(step.evaluated))
        return generation

    # --- the decoding thread ---

    def _run(self) -> None:
        try:
            self._serve()
        finally:
            closed = RuntimeError("the LLM engine was closed")
            for generation in self._running + self._waiting + self._inbox:
                generation.end(closed)
            self._lib.llama_batch_free(self._batch)
            self.ctx.close()

    def _serve(self) -> None:
        while True:
            with self._wake:
                while not (self._inbox or self._running or self._waiting or self._closing):
                    self._wake.wait()
                if self._closing:
                    return
                self._waiting += self._inbox
                self._inbox.clear()
            try:
                self._step()
            except Exception as exc:  # the context may be inconsistent: start from nothing
                log.exception("batched decoding failed; all sequences cleared")
                for generation in self._running:
                    generation.end(exc)
                self._running.clear()
                self._lib.llama_memory_clear(self.ctx.memory, True)
                for seq in self.seqs:
                    seq.tokens, seq.busy, seq.session = [], False, ""

    def _step(self) -> None:
        for generation in [g for g in self._running if g.stopped()]:
            self._finish(generation)
        for generation in [g for g in self._waiting if g.stopped()]:
            self._waiting.remove(generation)
            generation.end()
        self._admit()
        for generation in [g for g in self._running if g.warm_only and not g.peeking and not g.state.pending]:
            self._finish(generation)  # its whole prompt was evaluated already
        rows = self._fill()
        if not rows:
            return
        warm = rows[0][0] if len(rows) == 1 and rows[0][0].warm_only else None  # one runs, alone
        self._abort.begin(WarmStep(warm.session, tuple(warm.seq.tokens)) if warm else None)
        rc = self._lib.llama_decode(self.ctx.ctx, self._batch)
        if self._abort.end() and rc == 2:  # llama.cpp dropped the step's cells: its tokens wait again
            self._undo(rows)
            self.warm_steps_stopped += 1
            log.debug("warm-up step stopped for an answer", session=warm.session if warm else "")
            return
        if rc == 1:  # no room in the KV cache; nothing was evaluated
            self._undo(rows)
            self._make_room()
            return
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc}")
        self.prompt_tokens_evaluated += sum(len(part) for _, _, part in rows)
        if any(not g.warm_only for g, _, _ in rows):
            self.warm_tokens_beside_answers += sum(len(part) for g, _, part in rows if g.warm_only)
        self.steps_with_several += sum(1 for g in self._running if g.state.row is not None) > 1
        for generation in list(self._running):
            self._sample(generation)

    def _admit(self) -> None:
        """Place what waits, in order, as sequences allow; a warm-up only while no other runs:
        two warm-ups of one agent's prompt side by side (a call's opening and the agent's prompt
        with newly served tools) evaluated the same several hundred tokens twice, while one after
        the other the second copies what the first evaluated."""
        for generation in list(self._waiting):
            if generation not in self._waiting:
                continue  # a warm-up dropped by a request placed before it (below)
            if generation.warm_only and any(g.warm_only for g in self._running):
                continue
            if not generation.warm_only:
                for warm in self._outdated_by(generation):
                    self._finish(warm)
                if generation.session:  # its call's words ahead, not begun: now pointless
                    for warm in [g for g in self._waiting if g.warm_only and g.session == generation.session]:
                        self._waiting.remove(warm)
                        warm.end()
            seq = self._sequence_for(generation.session)
            if seq is None:
                return  # every sequence is decoding: the others wait their turn
            self._waiting.remove(generation)
            ended = self._place(generation, seq)
            self._running.append(generation)
            if ended:
                self._finish(generation)

    def _outdated_by(self, request: Generation) -> list[Generation]:
        """The warm-ups a real request makes pointless; they stop where they got to, and the
        request takes it from there (copying what they evaluated) instead of both evaluating the
        same tokens side by side: a warm-up of the request's own call (its words evaluated
        ahead), and one whose prompt the request shares for the most part (an agent's prompt
        with its tools, being warmed when the agent's first call comes)."""
        outdated = []
        for warm in (g for g in self._running if g.warm_only):
            own = bool(request.session) and warm.session == request.session
            agents = is_agent_prompt_session(warm.session)  # (another call's words ahead are its own)
            if own or (agents and 2 * common_prefix(warm.prompt, request.prompt) > len(warm.prompt)):
                outdated.append(warm)
        return outdated

    def _sequence_for(self, session: str) -> _Sequence | None:
        idle = [s for s in self.seqs if not s.busy]
        own = next((s for s in idle if session and s.session == session), None)
        if own is not None or not idle:
            return own
        return min(idle, key=lambda s: (bool(s.tokens), s.used))  # empty first, then oldest

    def _place(self, generation: Generation, seq: _Sequence) -> bool:
        """Give the generation ``seq``, keeping the longest prefix of its prompt that is already
        evaluated there or (copied) in another sequence; at least one token is left to evaluate,
        whose logits give the first new token, unless a peek sampled that token on this very
        prompt. True if that token already ended it."""
        prompt = generation.prompt
        limit = len(prompt) - (0 if generation.warm_only and not generation.peeking else 1)
        adopted = self._peeked_first(generation, seq)
        if adopted is not None:
            limit = len(prompt)  # nothing left to evaluate: the first token is the peek's
        kept = min(common_prefix(seq.tokens, prompt), limit)
        source, shared = max(
            ((s, common_prefix(s.tokens, prompt)) for s in self.seqs if s is not seq),
            key=lambda pair: pair[1],
        )
        memory = self.ctx.memory
        if min(shared, limit) > kept:
            kept = min(shared, limit)
            self._lib.llama_memory_seq_rm(memory, seq.id, -1, -1)
            self._lib.llama_memory_seq_cp(memory, source.id, seq.id, 0, kept)
            seq.tokens = source.tokens[:kept]
        else:
            self._lib.llama_memory_seq_rm(memory, seq.id, kept, -1)
            del seq.tokens[kept:]
        for other in self.seqs:
            if other is not seq and other.session == generation.session:
                other.session = ""
        seq.busy, seq.session = True, generation.session
        generation.state = GenerationState(
            prompt[kept:], generation.sampling, self.model, self.n_ctx - len(prompt), self.eog
        )
        if not generation.warm_only and generation.session:
            self.evaluated_for.pop(generation.session, None)  # newest last, the oldest forgotten
            self.evaluated_for[generation.session] = len(prompt) - kept
            if len(self.evaluated_for) > 4 * len(self.seqs):
                del self.evaluated_for[next(iter(self.evaluated_for))]
        # what a request costs before its first token: for whoever measures the prefix reuse
        log.debug(
            "prompt placed",
            session=generation.session,
            warm_only=generation.warm_only,
            tokens=len(prompt),
            to_evaluate=len(prompt) - kept,
        )
        generation.seq = seq
        if adopted is None:
            return False
        pieces, done = generation.state.adopt(adopted)
        for piece in pieces:
            generation.put(piece)
        return done

    def _peeked_first(self, generation: Generation, seq: _Sequence) -> int | None:
        """The token a peek sampled first on exactly this request's prompt, still held by ``seq``
        (the caller's words heard in full before the turn was decided: the peek evaluated them,
        and the answer's first token need not wait for a step of its own)."""
        if generation.warm_only or generation.sampling.grammar is not None or seq.sampled is None:
            return None
        after, token = seq.sampled
        prompt = generation.prompt
        return token if list(after) == prompt and seq.tokens[: len(prompt)] == prompt else None

    def _fill(self) -> list[tuple[Generation, int, list[int]]]:
        """The next batch: one token of each decoding generation, then prompt chunks. Returns
        what each generation put in (to undo when the decode finds no room)."""
        rows: list[tuple[Generation, int, list[int]]] = []
        batch, n = self._batch, 0

        def put(token: int, seq: _Sequence, logits: bool) -> None:
            nonlocal n
            batch.token[n], batch.pos[n], batch.n_seq_id[n] = token, len(seq.tokens), 1
            batch.seq_id[n][0], batch.logits[n] = seq.id, logits
            seq.tokens.append(token)
            n += 1

        answering = any(not g.warm_only for g in self._running)
        decoding = [
            g
            for g in self._running
            if not g.state.pending and (not g.warm_only or (g.peeking and not answering))
        ]
        prefilling = sorted((g for g in self._running if g.state.pending), key=lambda g: g.warm_only)
        for generation in self._running:
            generation.state.row = None
        for generation in decoding:
            seq = generation.seq
            rows.append((generation, len(seq.tokens), []))
            generation.state.row = n
            put(generation.state.next_token, seq, True)
        budget = DECODING_CHUNK if decoding else IDLE_CHUNK
        for generation in prefilling:
            if budget <= 0 or (generation.warm_only and answering):
                break  # a warm-up only in steps that no answer waits for (see the module's doc)
            state, seq = generation.state, generation.seq
            part = state.pending[:budget]
            del state.pending[: len(part)]
            budget -= len(part)
            rows.append((generation, len(seq.tokens), part))
            wants_logits = not state.pending and (not generation.warm_only or generation.peeking)
            for k, token in enumerate(part):
                put(token, seq, wants_logits and k == len(part) - 1)
            state.row = n - 1 if wants_logits else None
        batch.n_tokens = n
        return rows

    def _undo(self, rows: list[tuple[Generation, int, list[int]]]) -> None:
        for generation, length, part in rows:
            del generation.seq.tokens[length:]
            generation.state.pending[:0] = part
            generation.state.row = None

    def _make_room(self) -> None:
        """Forget the least recently used idle sequence; with none, the newest request fails."""
        idle = [s for s in self.seqs if not s.busy and s.tokens]
        if idle:
            seq = min(idle, key=lambda s: s.used)
            self._lib.llama_memory_seq_rm(self.ctx.memory, seq.id, -1, -1)
            seq.tokens, seq.session = [], ""
            self.evicted += 1
            return
        newest = self._running[-1]
        self._finish(newest, MemoryError("the LLM's KV cache is full"))

    def _sample(self, generation: Generation) -> None:
        state = generation.state
        if state.row is None:
            if generation.warm_only and not generation.peeking and not state.pending:
                self._finish(generation)
            return
        first = state.produced == 0
        pieces, done = state.advance(self.ctx)
        if first and generation.peeking and state.last_token not in self.eog:
            generation.seq.sampled = (tuple(generation.seq.tokens), state.last_token)
        for piece in pieces:
            generation.put(piece)
        if done:
            self._finish(generation)

    def _finish(self, generation: Generation, error: BaseException | None = None) -> None:
        seq = generation.seq
        seq.busy, seq.used = False, time.monotonic()
        self._running.remove(generation)
        generation.end(error)
