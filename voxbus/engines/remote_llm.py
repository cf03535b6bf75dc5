"""An LLM on any OpenAI-compatible server (vLLM, llama.cpp's server, Ollama, a cloud API).

Streaming chat completions over HTTP (httpx). The engine offers the same blocking interface as
the in-process :class:`~voxbus.engines.llm.LlamaEngine`, so the LLM worker does not care which
one it drives:

- barge-in closes the HTTP stream: the server sees the connection go and stops generating;
- a server silent for ``first_token_timeout_s`` (before the first token or between two) is a
  failure, so that the fallback engine can take over while the caller still waits;
- tool calls come back either as the API's ``tool_calls`` deltas or as text (a server that
  renders the template but does not parse calls); both are handed on in voxbus's one canonical
  form, ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``;
- ``warm`` (the prefix-cache trick of the local engine) is a no-op: the servers that can keep a
  prefix (llama.cpp's ``cache_prompt``, vLLM's automatic prefix caching) do it on their own, and a
  cloud API would bill a warm-up as a request.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpx

from voxbus.engines.tool_calls import CLOSE, OPEN, call_start, canonical, undecided_tail
from voxbus.schemas.messages import ChatMessage


class RemoteLlmError(RuntimeError):
    """The server cannot be reached, refused the request, or went silent."""


class RemoteLlmEngine:
    def __init__(
        self,
        url: str,
        model: str,
        api_key: str | None = None,
        first_token_timeout_s: float = 3.0,
        connect_timeout_s: float = 1.0,
        min_tokens: int = 0,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        timeout = httpx.Timeout(first_token_timeout_s, connect=connect_timeout_s)
        self.client = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)
        self.url, self.model, self.min_tokens = url, model, min_tokens

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
        """Yield text pieces; closes the stream within one token once ``cancelled()`` is true.
        Raises :class:`RemoteLlmError` when the server fails (before or during the answer)."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": openai_messages(messages, continue_from),
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
        }
        if tools:
            body["tools"] = tools
        if self.min_tokens:  # the long-answers test setting; llama.cpp's servers know the field
            body["min_tokens"] = self.min_tokens
        try:
            with self.client.stream("POST", "/chat/completions", json=body) as response:
                if response.status_code != 200:
                    detail = response.read().decode(errors="replace")[:200]
                    raise RemoteLlmError(f"{self.url}: HTTP {response.status_code}: {detail}")
                yield from answer_pieces(sse_deltas(response.iter_lines()), cancelled, bool(tools))
        except httpx.HTTPError as exc:
            raise RemoteLlmError(f"{self.url}: {type(exc).__name__}: {exc}") from exc

    def warm(
        self,
        messages: list[ChatMessage],
        tools: list[dict[str, Any]] | None = None,
        session: str = "",
        stop: Callable[[], bool] = lambda: False,
    ) -> bool:
        """Nothing to do: see the module's docstring."""
        return True

    def close(self) -> None:
        self.client.close()


def openai_messages(messages: list[ChatMessage], continue_from: str = "") -> list[dict[str, Any]]:
    """voxbus's history in the chat-completions format: the call's context (a second system
    message) joins the system prompt, and tool calls and responses are paired by id, as the API
    requires. A continued answer goes last as the assistant's (servers that support it go on
    from there; the others answer afresh)."""
    out: list[dict[str, Any]] = []
    pending_ids: list[str] = []
    made = 0
    for message in messages:
        if message.role == "system" and out and out[-1]["role"] == "system":
            out[-1]["content"] += "\n\n" + message.content
        elif message.role == "assistant" and OPEN in message.content:
            words, calls = split_calls(message.content)
            ids = [f"call_{made + i}" for i in range(len(calls))]
            made += len(calls)
            pending_ids.extend(ids)
            out.append(
                {
                    "role": "assistant",
                    "content": words or None,
                    "tool_calls": [
                        {"id": i, "type": "function", "function": {"name": n, "arguments": a}}
                        for i, (n, a) in zip(ids, calls, strict=True)
                    ],
                }
            )
        elif message.role == "tool":
            call_id = pending_ids.pop(0) if pending_ids else f"call_{made}"
            out.append({"role": "tool", "tool_call_id": call_id, "content": message.content})
        else:
            out.append({"role": message.role, "content": message.content})
    if continue_from:
        out.append({"role": "assistant", "content": continue_from})
    return out


def split_calls(text: str) -> tuple[str, list[tuple[str, str]]]:
    """An assistant message's words and its canonical calls as (name, arguments JSON)."""
    words, calls = text.split(OPEN, 1)[0].strip(), []
    for part in text.split(OPEN)[1:]:
        body = part.split(CLOSE, 1)[0]
        try:
            call = json.loads(body)
            calls.append((str(call["name"]), json.dumps(call.get("arguments") or {})))
        except (ValueError, KeyError, TypeError):
            continue  # a malformed call in the history is not worth failing the answer for
    return words, calls


def sse_deltas(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The ``delta`` objects of a chat-completions event stream, up to ``[DONE]``."""
    for line in lines:
        if not line.startswith("data:"):
            continue  # comments, event names, keep-alives
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            event = json.loads(data)
        except ValueError as exc:
            raise RemoteLlmError(f"not JSON in the event stream: {data[:80]!r}") from exc
        if "error" in event:
            raise RemoteLlmError(f"server error in the stream: {str(event['error'])[:200]}")
        for choice in event.get("choices") or []:
            if choice.get("index", 0) == 0 and choice.get("delta"):
                yield choice["delta"]


def answer_pieces(
    deltas: Iterable[dict[str, Any]], cancelled: Callable[[], bool], with_tools: bool
) -> Iterator[str]:
    """Spoken text as it comes, then any tool calls whole and canonical; a call written as text
    (from where it starts) is held back from speech like the local engine does."""
    said, sent = "", 0
    structured: dict[int, dict[str, str]] = {}
    for delta in deltas:
        if cancelled():
            return
        for part in delta.get("tool_calls") or []:
            call = structured.setdefault(part.get("index", len(structured)), {"name": "", "arguments": ""})
            function = part.get("function") or {}
            call["name"] += function.get("name") or ""
            call["arguments"] += function.get("arguments") or ""
        said += delta.get("content") or ""
        if not with_tools:
            if len(said) > sent:
                yield said[sent:]
                sent = len(said)
            continue
        start = call_start(said)
        ready = start if start is not None else len(said) - undecided_tail(said)
        if ready > sent:
            yield said[sent:ready]
            sent = ready
    if cancelled():
        return
    start = call_start(said) if with_tools else None
    if start is not None:
        yield from text_calls(said[start:])
    elif len(said) > sent:
        yield said[sent:]
    for call in structured.values():
        arguments = call["arguments"].strip() or "{}"
        yield canonical(f'{{"name": {json.dumps(call["name"])}, "arguments": {arguments}}}')


def text_calls(text: str) -> Iterator[str]:
    """Calls the server left in the text (``<tool_call>{...}</tool_call>`` or a bare object)."""
    for part in text.replace(OPEN, "\n").split(CLOSE):
        body = part.strip()
        brace = body.find("{")
        if brace >= 0:
            yield canonical(body[brace : body.rfind("}") + 1])
