"""Sampling one generation of a batch: its sampler chains, its stop strings and its text.

The chains are llama.cpp's own samplers (``llama_sampler_sample`` applies the chain to one batch
row's logits and accepts the token, so a grammar advances with it), built with the settings
that ``Llama.create_completion`` uses by default, so that an answer reads the same whether it
was decoded alone or in a batch.

Under a grammar (a tool call) decoding is greedy, and llama.cpp's grammar sampler checks every
token of the vocabulary against the grammar at each step (152k for Qwen): :class:`GrammarCheck`
checks the likeliest token alone first and the whole vocabulary only when it does not fit, as
llama.cpp's own ``common_sampler`` does. The token is the same either way (the likeliest of those
the grammar allows); ``bench/tool_call_speed.py`` measures what it saves.
"""

from __future__ import annotations

import codecs
import ctypes
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Sampling(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    max_tokens: int = Field(ge=0)
    temperature: float = Field(ge=0)
    stops: list[str] = []
    min_tokens: int = Field(default=0, ge=0, description="end tokens ruled out until this many")
    grammar: Any = None  # a LlamaGrammar: greedy decoding under it
    grammar_check_first: bool = True  # the likeliest token checked alone first (GrammarCheck)
    seed: int = 7


class StopScanner:
    """Cuts generated text at the first stop string, and holds back a tail that may be the
    beginning of one (so that "<|im_" is never sent before "end|>" shows it was a stop)."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = [s for s in stops if s]
        self.text = ""
        self.sent = 0

    def feed(self, piece: str) -> tuple[str, bool]:
        """The text that is safe to send now, and whether a stop string ended the answer."""
        self.text += piece
        # a stop never starts in text already sent: its beginning would have been held back
        found = [at for s in self.stops if (at := self.text.find(s, self.sent)) >= 0]
        if found:
            at = min(found)
            out, self.sent = self.text[self.sent : at], len(self.text)
            return out, True
        ready = max(len(self.text) - self._undecided(), self.sent)
        out, self.sent = self.text[self.sent : ready], ready
        return out, False

    def rest(self) -> str:
        out, self.sent = self.text[self.sent :], len(self.text)
        return out

    def _undecided(self) -> int:
        longest = max((len(s) for s in self.stops), default=0)
        for k in range(min(longest - 1, len(self.text)), 0, -1):
            tail = self.text[-k:]
            if any(s.startswith(tail) for s in self.stops):
                return k
        return 0


def sampler_chain(model: Any, sampling: Sampling, hold_off: list[int] | None = None) -> Any:
    """A llama.cpp sampler chain: under a grammar greedy, else create_completion's defaults
    (top-k 40, top-p 0.95, min-p 0.05, then temperature); ``hold_off`` tokens ruled out."""
    from llama_cpp._internals import LlamaSampler

    chain = LlamaSampler()
    if hold_off:
        chain.add_logit_bias(model.n_vocab(), dict.fromkeys(hold_off, float("-inf")))
    if sampling.grammar is not None:
        chain.add_grammar(model, sampling.grammar)
    if sampling.grammar is not None or sampling.temperature == 0:
        chain.add_greedy()
        return chain
    chain.add_top_k(40)
    chain.add_typical(1.0, 1)
    chain.add_top_p(0.95, 1)
    chain.add_min_p(0.05, 1)
    chain.add_temp(sampling.temperature)
    chain.add_dist(sampling.seed)
    return chain


class GrammarCheck:
    """Greedy decoding under a grammar, the cheap way: the likeliest token of the row is checked
    against the grammar alone; only a token the grammar rules out sends the step through the
    whole chain (the grammar applied to every token, then greedy)."""

    def __init__(self, chain: Any) -> None:
        import llama_cpp
        from llama_cpp._internals import LlamaSampler

        self.chain = chain  # the grammar first, then greedy (sampler_chain)
        self.grammar = llama_cpp.llama_sampler_chain_get(chain.sampler, 0)
        self.likeliest = LlamaSampler()
        self.likeliest.add_greedy()
        self.one = (llama_cpp.llama_token_data * 1)()
        self.candidates = llama_cpp.llama_token_data_array(data=self.one, size=1, selected=-1, sorted=False)

    def sample(self, ctx: Any, row: int) -> int:
        import llama_cpp

        token = self.likeliest.sample(ctx, row)
        if self._fits(token):
            llama_cpp.llama_sampler_accept(self.chain.sampler, token)  # the grammar advances
            return token
        return self.chain.sample(ctx, row)

    def _fits(self, token: int) -> bool:
        import llama_cpp

        self.one[0].id, self.one[0].logit, self.one[0].p = token, 0.0, 0.0
        self.candidates.size, self.candidates.selected = 1, -1
        llama_cpp.llama_sampler_apply(self.grammar, ctypes.byref(self.candidates))
        return self.one[0].logit != float("-inf")


def end_of_generation_tokens(model: Any) -> list[int]:
    """Every token llama.cpp treats as the end of a generation (end of sequence, of turn, ...)."""
    import llama_cpp

    return [t for t in range(model.n_vocab()) if llama_cpp.llama_vocab_is_eog(model.vocab, t)]


def end_tokens(model: Any, stops: list[str], eog: list[int]) -> list[int]:
    """The tokens that end an answer: ``eog`` and the stop strings of one token."""
    ends = set(eog)
    for stop in stops:
        tokens = model.tokenize(stop.encode(), add_bos=False, special=True)
        if len(tokens) == 1:
            ends.add(tokens[0])
    return sorted(ends)


class GenerationState:
    """What the decoding thread keeps for one generation between steps."""

    def __init__(self, pending: list[int], sampling: Sampling, model: Any, room: int, eog: list[int]) -> None:
        self.pending = pending  # prompt tokens not evaluated yet
        self.row: int | None = None  # the batch row whose logits give the next token
        self.next_token = -1  # sampled, not yet evaluated
        self.last_token = -1  # the last sampled, whether the generation goes on or not
        self.produced = 0
        self.max_tokens = max(0, min(sampling.max_tokens, room))
        self.min_tokens = sampling.min_tokens if sampling.grammar is None else 0
        self.model = model
        self.chain = sampler_chain(model, sampling)
        grammar_first = sampling.grammar is not None and sampling.grammar_check_first
        self.check = GrammarCheck(self.chain) if grammar_first else None
        ends = end_tokens(model, sampling.stops, eog) if self.min_tokens else []
        self.hold = sampler_chain(model, sampling, ends) if ends else None
        self.scanner = StopScanner(sampling.stops)
        self.utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def advance(self, ctx: Any) -> tuple[list[str], bool]:
        """Sample the next token from this generation's row: the text it adds, and whether the
        answer is over (an end token, a stop string, or max_tokens)."""
        if self.check is not None:
            token = self.check.sample(ctx, self.row)
        else:
            chain = self.hold if self.hold is not None and self.produced < self.min_tokens else self.chain
            token = chain.sample(ctx, self.row)
        return self._took(token)

    def adopt(self, token: int) -> tuple[list[str], bool]:
        """The first token given, not sampled: a peek sampled it (greedy) from this very prompt's
        last logits, which the answer would otherwise evaluate again for a step. As ``advance``."""
        import llama_cpp

        llama_cpp.llama_sampler_accept(self.chain.sampler, token)  # its history, as if sampled
        return self._took(token)

    def _took(self, token: int) -> tuple[list[str], bool]:
        import llama_cpp

        self.produced += 1
        self.last_token = token
        if llama_cpp.llama_vocab_is_eog(self.model.vocab, token):
            return self._flush(), True
        text = self.utf8.decode(self.model.detokenize([token]))
        out, stopped = self.scanner.feed(text)
        pieces = [out] if out else []
        if stopped:
            return pieces, True
        if self.produced >= self.max_tokens:
            return pieces + self._flush(), True
        self.next_token = token
        return pieces, False

    def _flush(self) -> list[str]:
        rest = self.scanner.feed(self.utf8.decode(b"", final=True))[0] + self.scanner.rest()
        return [rest] if rest else []
