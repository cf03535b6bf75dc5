"""The LLM on an OpenAI-compatible server: llama-cpp-python's own server, started here on loopback
with the test model; barge-in closes its stream, and when it dies the local model answers."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from voxbus.bus.connection import Bus
from voxbus.config import Settings, load_settings
from voxbus.engines.llm_fallback import FallbackLlmEngine
from voxbus.engines.llm_server import LlmServer
from voxbus.engines.models import model_path
from voxbus.engines.remote_llm import RemoteLlmEngine
from voxbus.media.file_call import FileCall
from voxbus.media.script import CallerScript, Line
from voxbus.media.wav import WavSource
from voxbus.schemas.events import Event, LlmFallback, LlmFirstToken, TurnMetrics
from voxbus.schemas.messages import ChatMessage

from .helpers import wait_all_serving

pytestmark = pytest.mark.integration
QUESTION = [ChatMessage(role="system", content="Answer briefly."), ChatMessage(role="user", content="Hi!")]


def says(server: LlmServer, text: str, within_s: float = 20.0) -> bool:
    """Whether the server's log shows ``text`` (within a while)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if text in server.log.read_text(errors="replace"):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def llm_server(
    test_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LlmServer]:
    server = LlmServer(model_path(load_settings(), "llm"), tmp_path / "llm-server.log")
    try:
        server.wait_ready()
        monkeypatch.setenv("VOXBUS_MODELS__LLM_URL", server.url)
        # answers of 40 tokens at least, in the server and in the local model: a server killed
        # at the first token is killed mid-answer, whatever the test model has to say
        monkeypatch.setenv("VOXBUS_LLM__MIN_TOKENS", "40")
        yield server
    finally:
        server.stop()


@pytest.fixture
def settings(llm_server: LlmServer) -> Settings:
    return load_settings()


def test_a_conversation_and_a_barge_in_that_closes_the_stream(llm_server: LlmServer) -> None:
    engine = RemoteLlmEngine(llm_server.url, "test")
    first = "".join(engine.stream(QUESTION, 24, 0.0))
    assert first.strip()
    follow_up = [
        *QUESTION,
        ChatMessage(role="assistant", content=first),
        ChatMessage(role="user", content="And?"),
    ]
    assert "".join(engine.stream(follow_up, 24, 0.0)).strip()

    long = RemoteLlmEngine(llm_server.url, "test", min_tokens=300)  # an answer far longer than the test
    received: list[str] = []
    for piece in long.stream(QUESTION, 400, 0.0, cancelled=lambda: len(received) >= 3):
        received.append(piece)
    assert len(received) == 3
    assert says(llm_server, "Disconnected from client"), "the server did not see the stream closed"


def test_the_server_killed_mid_answer_the_local_model_finishes_it(
    llm_server: LlmServer,
    settings: Settings,
    open_llm,  # noqa: ANN001
) -> None:
    remote = RemoteLlmEngine(llm_server.url, "test", min_tokens=200)
    engine = FallbackLlmEngine(remote, open_llm(settings.llm))
    reports: list[tuple[str, int]] = []
    engine.on_fallback = lambda reason, chars: reports.append((reason, chars))
    pieces: list[str] = []
    for piece in engine.stream(QUESTION, 40, 0.0):
        pieces.append(piece)
        if len(pieces) == 2:
            llm_server.stop()  # mid-answer: the server had 200 tokens at least to go
    assert len(pieces) > 2, "the local model did not go on"
    [(reason, chars)] = reports
    # the server's pieces already on their way when it died still arrive (a CI run got two more):
    # the fallback counts every one, and the local model goes on after the last
    assert len("".join(pieces[:2])) <= chars < len("".join(pieces)) and "127.0.0.1" in reason


async def test_a_caller_hears_an_answer_when_the_server_dies(
    llm_server: LlmServer,
    client: Bus,
    caller,  # type: ignore[no-untyped-def]
) -> None:
    assert os.environ["VOXBUS_MODELS__LLM_URL"] == llm_server.url
    await wait_all_serving(client)
    wav, _ = caller(CallerScript(lines=[Line(text="What is the capital of France?", pause_before_s=1.5)]))

    def kill_at_first_token(event: Event) -> None:
        if isinstance(event, LlmFirstToken) and llm_server.running():
            llm_server.stop()

    result = await FileCall(client, WavSource(wav), on_event=kill_at_first_token).run()
    fallbacks = [e for e in result.events if isinstance(e, LlmFallback)]
    assert fallbacks and fallbacks[0].turn == 1, [e.type for e in result.events]
    [metrics] = [e for e in result.events if isinstance(e, TurnMetrics)]
    assert metrics.agent_text.strip() and metrics.first_audio_ms
