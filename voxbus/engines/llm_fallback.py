"""A remote LLM with the local model behind it.

The remote server answers while it is up. When it fails (unreachable, an HTTP error, silent past
its first-token timeout, or gone mid-answer), the local model answers instead, going on after the
text the server had already sent, so the caller hears one answer, not a restart. After a failure
the remote server is left alone for ``retry_after_s``: a server that is down must not cost every
turn its timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from voxbus.config import Settings
from voxbus.engines.remote_llm import RemoteLlmEngine, RemoteLlmError
from voxbus.schemas.messages import ChatMessage
from voxbus.secrets import read_secret


class LlmEngine(Protocol):
    """What the LLM worker drives: the in-process engine, the remote one, or this pair."""

    def stream(
        self,
        messages: list[ChatMessage],
        max_tokens: int,
        temperature: float,
        continue_from: str = "",
        cancelled: Callable[[], bool] = ...,
        tools: list[dict[str, Any]] | None = None,
        session: str = "",
    ) -> Iterator[str]: ...

    def warm(
        self,
        messages: list[ChatMessage],
        tools: list[dict[str, Any]] | None = None,
        session: str = "",
        stop: Callable[[], bool] = lambda: False,
    ) -> bool: ...


FallbackReport = Callable[[str, int], None]  # (why the server failed, characters it had sent)


class FallbackLlmEngine:
    def __init__(
        self,
        remote: RemoteLlmEngine,
        local: LlmEngine,
        retry_after_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.remote, self.local = remote, local
        self.retry_after_s, self.clock = retry_after_s, clock
        self.remote_down_until = 0.0
        self.on_fallback: FallbackReport = lambda _reason, _chars: None

    def remote_up(self) -> bool:
        return self.clock() >= self.remote_down_until

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
        said = ""
        if self.remote_up():
            try:
                for piece in self.remote.stream(
                    messages, max_tokens, temperature, continue_from, cancelled, tools
                ):
                    said += piece
                    yield piece
                return
            except RemoteLlmError as exc:
                if cancelled():
                    return
                self.remote_down_until = self.clock() + self.retry_after_s
                self.on_fallback(str(exc), len(said))
        yield from self.local.stream(
            messages, max_tokens, temperature, continue_from + said, cancelled, tools, session
        )

    def warm(
        self,
        messages: list[ChatMessage],
        tools: list[dict[str, Any]] | None = None,
        session: str = "",
        stop: Callable[[], bool] = lambda: False,
    ) -> bool:
        # the local model's cache matters only while it answers: warming it all the time would
        # take the cores from speech synthesis for nothing
        if self.remote_up():
            return True
        return self.local.warm(messages, tools, session, stop)


def llm_engine_for(settings: Settings) -> LlmEngine:
    """The engine the configuration asks for (blocking: may load the local model).

    Raises ValueError (a missing API key, a bad setting) or ModelMissing, with one line saying what."""
    from voxbus.engines.llm import LlamaEngine
    from voxbus.engines.models import model_path

    models = settings.models
    if models.llm_url is None:
        return LlamaEngine(model_path(settings, "llm"), settings.llm)
    key = None
    if models.llm_api_key_env or models.llm_api_key_file:
        key = read_secret("models.llm_url's API key", models.llm_api_key_env, models.llm_api_key_file)
    remote = RemoteLlmEngine(
        models.llm_url,
        models.llm_model,
        key,
        first_token_timeout_s=settings.llm.remote_first_token_timeout_s,
        connect_timeout_s=settings.llm.remote_connect_timeout_s,
        min_tokens=settings.llm.min_tokens,
    )
    if settings.llm.fallback == "none":
        return remote
    local = LlamaEngine(model_path(settings, "llm"), settings.llm)
    return FallbackLlmEngine(remote, local, settings.llm.remote_retry_after_s)
