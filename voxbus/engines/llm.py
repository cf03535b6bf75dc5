"""The local LLM: llama.cpp through llama-cpp-python, model resident, streaming, cancellable.

The prompt is rendered with the chat template stored in the GGUF file, so any instruct model
works. llama-cpp-python reuses the longest common token prefix with what is already evaluated, and
a RAM cache keeps the state of other calls' prefixes, so the system prompt and history of a
call stay warm between its turns. With ``llm.parallel`` > 1 the generations of several calls are
decoded together instead, each call in its own KV sequence (:mod:`voxbus.engines.llm_batch`).
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from voxbus.config import LlmSettings
from voxbus.engines.call_writer import write_call
from voxbus.engines.llm_batch import BatchDecoder, Generation
from voxbus.engines.llm_sampling import Sampling
from voxbus.engines.promises import promise, undecided
from voxbus.engines.tool_calls import CLOSE, OPEN, call_grammar, call_start, undecided_tail
from voxbus.schemas.messages import ChatMessage

TOOL_CALL_MAX_TOKENS = 256
PEEK_END = re.compile(r"\w[,.!?;:]")  # a peek ends at its first word group's punctuation
NEXT_TURN = "\u2063next turn\u2063"  # stands for the caller's words when a warm-up renders their turn
# a warm-up gives way to a real request within one chunk's evaluation (smaller chunks evaluate
# less efficiently: fewer tokens per matrix product)
WARM_CHUNK_TOKENS = 64


class LlamaEngine:
    def __init__(self, model_path: Path, settings: LlmSettings) -> None:
        from llama_cpp import Llama, LlamaRAMCache
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.parallel = settings.parallel
        self.seed = settings.seed
        self.llm = Llama(
            model_path=str(model_path),
            # batched: the Llama object only lends its weights and vocabulary; its context is unused
            n_ctx=settings.n_ctx if self.parallel == 1 else 256,
            n_threads=settings.n_threads,
            n_threads_batch=settings.n_threads,
            seed=settings.seed,
            verbose=False,
        )
        self._batch: BatchDecoder | None = None
        if self.parallel == 1:
            self.llm.set_cache(LlamaRAMCache(capacity_bytes=settings.cache_bytes))
        else:
            self._batch = BatchDecoder(self.llm._model, settings.n_ctx, self.parallel, settings.n_threads)
        meta = self.llm.metadata
        template = meta.get("tokenizer.chat_template")
        if not template:
            raise ValueError(f"{model_path}: the GGUF has no chat template; use an instruct model")
        vocab = self.llm._model
        eos = vocab.token_get_text(self.llm.token_eos())
        bos = vocab.token_get_text(self.llm.token_bos()) if self.llm.token_bos() >= 0 else ""
        self._formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        self._eos_text = eos
        self._turn_end = self._system_turn_end()
        self.min_tokens = settings.min_tokens
        # batched: a grammar checks the likeliest token alone first (llm_sampling.GrammarCheck);
        # False: against every token each step, as before (bench/tool_call_speed.py compares them)
        self.grammar_check_first = True
        # a call's fixed words put in, the model writing only names and values (call_writer);
        # False: the whole call decoded under the grammar (bench/tool_call_speed.py compares them)
        self.write_calls_in_pieces = True

    def close(self) -> None:
        """Stop the decoding thread and free its context, then the model (in that order: see
        BatchDecoder.close). Idempotent."""
        batch, self._batch = getattr(self, "_batch", None), None
        if batch is not None:
            batch.close()
        if hasattr(self, "llm"):
            self.llm.close()

    def __del__(self) -> None:
        # An engine dropped without close(): the Llama object's own finaliser would free the model
        # while the decoding thread may still be decoding an answer nobody reads (a generator left
        # open), a segmentation fault in libllama (reproduced with bench/tool_calls.py). Stop the
        # thread first, here, while this engine still holds the model.
        self.close()

    def prompt(
        self, messages: list[ChatMessage], continue_from: str = "", tools: list[dict[str, Any]] | None = None
    ) -> tuple[str, list[str]]:
        context = messages[1].content if len(messages) > 1 and messages[1].role == "system" else None
        if context is not None and self._turn_end:
            messages = [messages[0], *messages[2:]]
        rendered = self._formatter(
            messages=[{"role": m.role, "content": m.content} for m in messages], tools=tools or None
        )
        if context is not None and self._turn_end:
            rendered.prompt = with_context(rendered.prompt, context, self._turn_end)
        stops = rendered.stop if isinstance(rendered.stop, list) else [rendered.stop or ""]
        stops = [s for s in [*stops, self._eos_text, "<|im_end|>"] if s]
        return rendered.prompt + continue_from, list(dict.fromkeys(stops))

    def _system_turn_end(self) -> str:
        """What closes the system turn in this model's template ("<|im_end|>" in ChatML), found by
        rendering a probe; empty if the template has no system turn of its own."""
        probe = self._formatter(
            messages=[{"role": "system", "content": "@S@"}, {"role": "user", "content": "@U@"}]
        )
        text = probe.prompt
        if "@S@" not in text or "@U@" not in text:
            return ""
        gap = text[text.index("@S@") + 3 : text.index("@U@")]
        end = gap.split("\n", 1)[0]
        return end if end.strip() else ""

    def stream(
        self,
        messages: list[ChatMessage],
        max_tokens: int,
        temperature: float,
        continue_from: str = "",
        cancelled: Callable[[], bool] = lambda: False,
        tools: list[dict[str, Any]] | None = None,
        session: str = "",
    ) -> Iterator[str]:
        """Yield text pieces; stops within one token once ``cancelled()`` is true. Blocking.

        With ``tools``, a tool call is decoded under a grammar of the offered tools and yielded as
        it is decoded, opening tag first, in canonical form once joined (see
        :mod:`voxbus.engines.tool_calls`); the answer ends there. The call actor learns that a
        call is coming, and which tool, long before the call is whole: a small model takes
        seconds to write the arguments, and the caller hears the holding phrase meanwhile.
        ``session`` (the call) keeps a call's turns in one KV sequence when decoding is batched."""
        prompt, stops = self.prompt(messages, continue_from, tools)
        said, sent = "", 0
        completion = self._complete(prompt, stops, max_tokens, temperature, None, session, cancelled)
        for text in completion:
            if cancelled():
                return
            said += text
            start, callable_tools = None, tools or []
            if tools:
                start = call_start(said)
                if start is None and (promised := promise(said, sent, tools)) is not None:
                    start, callable_tools = promised  # "I'll move it": said, so done (engines.promises)
            if start is not None:
                completion.close()  # batched: frees the call's sequence for the tool call
                if start > sent:
                    yield said[sent:start]
                yield from self._tool_call(prompt + said[:start], stops, callable_tools, cancelled, session)
                return
            ready = len(said) - (max(undecided_tail(said), undecided(said)) if tools else 0)
            if ready > sent:
                yield said[sent:ready]
                sent = ready
        if len(said) > sent:
            yield said[sent:]

    def _complete(
        self,
        prompt: str,
        stops: list[str],
        max_tokens: int,
        temperature: float,
        grammar: Any = None,
        session: str = "",
        cancelled: Callable[[], bool] = lambda: False,
    ) -> Iterator[str]:
        if self._batch is not None:
            sampling = Sampling(
                max_tokens=max_tokens,
                temperature=temperature,
                stops=stops,
                min_tokens=self.min_tokens,
                grammar=grammar,
                grammar_check_first=self.grammar_check_first,
                seed=self.seed,
            )
            tokens = self.llm.tokenize(prompt.encode(), special=True)
            yield from self._batch.submit(Generation(session, tokens, sampling, cancelled))
            return
        for chunk in self.llm.create_completion(
            prompt,
            max_tokens=max_tokens,
            temperature=temperature,
            stop=stops,
            stream=True,
            grammar=grammar,
            logits_processor=self._answer_at_least(prompt, stops)
            if self.min_tokens and not grammar
            else None,
        ):
            text = chunk["choices"][0]["text"]
            if text:
                yield text

    def _tool_call(
        self,
        before: str,
        stops: list[str],
        tools: list[dict[str, Any]],
        cancelled: Callable[[], bool],
        session: str,
    ) -> Iterator[str]:
        """The call, piece by piece: ``canonical(body)`` once joined."""
        yield OPEN + "\n"  # as in the prompt the call is decoded from (see tool_calls.canonical)
        if self.write_calls_in_pieces:
            decode = functools.partial(self._decode_piece, stops=stops, session=session, cancelled=cancelled)
            yield from write_call(before + OPEN + "\n", tools, decode)
            if not cancelled():
                yield "\n" + CLOSE
            return
        began = False
        for text in self._complete(
            before + OPEN + "\n", stops, TOOL_CALL_MAX_TOKENS, 0.0, call_grammar(tools), session, cancelled
        ):
            if cancelled():
                return
            piece = text if began else text.lstrip()
            began = began or bool(piece)
            if piece:
                yield piece
        yield "\n" + CLOSE

    def _decode_piece(
        self,
        prompt: str,
        grammar: Any,
        max_tokens: int,
        done: Callable[[str], bool],
        stops: list[str],
        session: str,
        cancelled: Callable[[], bool],
    ) -> Iterator[str]:
        """Greedy tokens after ``prompt`` under ``grammar``, until ``done(what it wrote)`` (not
        waiting for the step that would only end it) or the grammar is satisfied."""
        said = ""
        completion = self._complete(prompt, stops, max_tokens, 0.0, grammar, session, cancelled)
        try:
            for piece in completion:
                if cancelled():
                    return
                said += piece
                yield piece
                if done(said):
                    return
        finally:
            completion.close()  # batched: the decoder drops the rest at its next step

    def _answer_at_least(self, prompt: str, stops: list[str]) -> Any:
        """A logits processor that keeps the answer from ending before ``llm.min_tokens``: the
        end-of-turn tokens are ruled out until then (a test setting: long answers on purpose)."""
        from llama_cpp import LogitsProcessorList

        prompt_tokens = len(self.llm.tokenize(prompt.encode(), special=True))
        ends = {self.llm.token_eos()}
        for stop in stops:
            tokens = self.llm.tokenize(stop.encode(), add_bos=False, special=True)
            if len(tokens) == 1:
                ends.add(tokens[0])
        end_ids = sorted(ends)

        def hold_off_the_end(input_ids: Any, scores: Any) -> Any:
            if len(input_ids) - prompt_tokens < self.min_tokens:
                scores[end_ids] = -float("inf")
            return scores

        return LogitsProcessorList([hold_off_the_end])

    def next_turn_prefix(self, messages: list[ChatMessage], tools: list[dict[str, Any]] | None = None) -> str:
        """The prompt of ``messages`` as the caller's next turn will begin it: with the template's
        header of a user turn ("<|im_start|>user\n" in ChatML), which a warm-up can evaluate
        ahead, saving its tokens (~25 ms each on two cores) after the caller stops. Where the
        conversation already ends with the caller's words (a partial transcript), the prompt as is."""
        if messages and messages[-1].role == "user":
            return self.prompt(messages, tools=tools)[0]
        rendered, _ = self.prompt([*messages, ChatMessage(role="user", content=NEXT_TURN)], tools=tools)
        cut = rendered.find(NEXT_TURN)
        return rendered[:cut] if cut > 0 else self.prompt(messages, tools=tools)[0]

    def warm(
        self,
        messages: list[ChatMessage],
        tools: list[dict[str, Any]] | None = None,
        session: str = "",
        stop: Callable[[], bool] = lambda: False,
    ) -> bool:
        """Evaluate a conversation's opening (system prompt, tools, greeting) so that a call's
        first request only evaluates what follows it. It gives way once ``stop()`` is true (a
        real request is waiting: an opening of several hundred tokens takes seconds), and what it
        had evaluated stays, a prefix the next request reuses; batched, it also runs only in steps
        that no answer waits for (:mod:`voxbus.engines.llm_batch`), so ``stop()`` matters where
        warm-ups hold every slot of the worker and a request waits for one. True if all of it was
        evaluated. Blocking."""
        prompt = self.next_turn_prefix(messages, tools)
        tokens = self.llm.tokenize(prompt.encode(), special=True)
        if self._batch is None:
            return evaluate_prefix(self.llm, tokens, stop)
        sampling = Sampling(max_tokens=0, temperature=0.0)
        generation = self._batch.submit(Generation(session, tokens, sampling, stop, warm_only=True))
        for _ in generation:
            pass
        return generation.state is not None and not generation.state.pending

    def prompt_tokens_evaluated(self, session: str) -> int | None:
        """How many prompt tokens the last request of ``session`` evaluated before its first token
        (what the cache did not hold); None where unknown (decoding one at a time)."""
        return self._batch.evaluated_for.get(session) if self._batch is not None and session else None

    def peek(
        self,
        messages: list[ChatMessage],
        max_tokens: int,
        tools: list[dict[str, Any]] | None = None,
        session: str = "",
        stop: Callable[[], bool] = lambda: False,
        wanted: tuple[str, ...] = (),
    ) -> str:
        """Evaluate ``messages`` (ending with the caller's words so far) as a warm-up does, and
        the first tokens of the answer to them, greedy: at most ``max_tokens``, up to the first
        punctuation, none of a tool call (an answer that opens with one peeks as the bare
        :data:`~voxbus.engines.tool_calls.OPEN` tag); with ``wanted``, only while the answer so far may still
        become one of those words, and no further once it is one. Batched, the first token costs
        nothing (it is sampled from the prompt's last step) and each other one a step no answer
        waits for; ``stop()`` ends it with what it has. Blocking."""
        prompt, stops = self.prompt(messages, tools=tools)
        said = ""
        if self._batch is None:
            if not evaluate_prefix(self.llm, self.llm.tokenize(prompt.encode(), special=True), stop):
                return ""
            pieces: Iterator[str] = self._complete(prompt, stops, max_tokens, 0.0, None, session, stop)
        else:
            tokens = self.llm.tokenize(prompt.encode(), special=True)
            sampling = Sampling(max_tokens=max_tokens, temperature=0.0, stops=stops, seed=self.seed)
            pieces = iter(self._batch.submit(Generation(session, tokens, sampling, stop, warm_only=True)))
        try:
            for piece in pieces:
                said += piece
                if OPEN in said or call_start(said) is not None or PEEK_END.search(said) or stop():
                    break
                if wanted and not may_become(said, wanted):
                    break
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()  # batched: the decoder drops the rest at its next step
        return peeked(said)


def peeked(said: str) -> str:
    """What a peek reports of the answer's first tokens: its words before any tool call, or
    :data:`~voxbus.engines.tool_calls.OPEN` where it opens with one (the holding phrase's cue)."""
    start = call_start(said)
    if start is None:
        return said
    return said[:start] if said[:start].strip() else OPEN


def may_become(said: str, wanted: tuple[str, ...]) -> bool:
    """Whether more tokens may still make ``said`` one of ``wanted`` (case aside): it begins one
    and is not one already ("Of" of "Of course"; not "Sure", which is whole, nor "The")."""
    said = said.strip().lower()
    return any(w.lower().startswith(said) and w.lower() != said for w in wanted)


def evaluate_prefix(llm: Any, tokens: list[int], stop: Callable[[], bool]) -> bool:
    """Evaluate ``tokens`` into the context of ``llm`` (a llama_cpp.Llama), as its own completion
    would: from the longest prefix that its context or its RAM cache holds, then a chunk at a
    time, checking ``stop()`` before each; the whole is saved in the cache. True if all was."""
    from llama_cpp import Llama

    def held() -> int:
        return Llama.longest_token_prefix(llm.input_ids[: llm.n_tokens].tolist(), tokens)  # type: ignore[no-any-return]

    have = held()
    if have == len(tokens):
        return True
    saved = None
    if llm.cache is not None:
        with contextlib.suppress(KeyError):  # none of its states begins like these tokens
            saved = llm.cache[tokens]  # the longest prefix of them it holds
    if saved is not None and Llama.longest_token_prefix(saved.input_ids.tolist(), tokens) > have:
        llm.load_state(saved)
        have = held()
    for start in range(have, len(tokens), WARM_CHUNK_TOKENS):
        if stop():
            return False
        llm.n_tokens = start  # what followed the common prefix goes (eval clears its cells)
        llm.eval(tokens[start : start + WARM_CHUNK_TOKENS])
    if llm.cache is not None:
        llm.cache[tokens] = llm.save_state()
    return True


def with_context(prompt: str, context: str, turn_end: str) -> str:
    """The call's context (a second system message) joined to the end of the system turn, after
    the tools the template renders there: the prefix (system prompt and tools) stays the same
    for every call, so the LLM keeps it evaluated across calls."""
    at = prompt.find(turn_end)
    return prompt if at < 0 else f"{prompt[:at]}\n\n{context}{prompt[at:]}"
