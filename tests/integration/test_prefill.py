"""Prefill through the whole system: while the caller speaks, partial transcripts bring their words
so far to the LLM worker as the open turn of the conversation (a warm-up), so that the answer's
prompt differs from what is evaluated only where those words end; the turn is answered as ever."""

from __future__ import annotations

import pytest
from nats.aio.msg import Msg

from voxbus.actors.call.early_opener import PEEK_TOKENS, acknowledgement
from voxbus.bus import subjects
from voxbus.bus.connection import Bus
from voxbus.config import Settings, load_settings
from voxbus.lexicons import ENGLISH
from voxbus.media.file_call import FileCall
from voxbus.media.script import CallerScript, Line
from voxbus.media.wav import WavSource
from voxbus.schemas.events import SttPartial, TtsRequested, TurnMetrics
from voxbus.schemas.messages import LlmChunk, LlmRequest

from .helpers import wait_all_serving

pytestmark = pytest.mark.integration
LONG_TURN = CallerScript(
    lines=[
        Line(
            text="I would like to move my appointment from Monday morning to Friday afternoon please.",
            pause_before_s=2.5,
        )
    ],
    tail_s=0.5,
)


@pytest.fixture
def settings(test_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("VOXBUS_STT__PARTIAL_INTERVAL_MS", "400")
    monkeypatch.setenv("VOXBUS_AGENT__MAX_TOKENS", "12")
    return load_settings()


async def test_the_callers_words_are_evaluated_while_they_speak(client: Bus, caller) -> None:  # type: ignore[no-untyped-def]
    await wait_all_serving(client)
    requests: list[LlmRequest] = []

    async def on_request(request: LlmRequest, _msg: Msg) -> None:
        requests.append(request)

    async def on_chunk(chunk: LlmChunk, _msg: Msg) -> None:
        if chunk.peek_of is not None:
            peeks.append(chunk)

    peeks: list[LlmChunk] = []
    await client.subscribe(subjects.LLM_GENERATE, LlmRequest, on_request)
    await client.subscribe(subjects.llm_chunks("*"), LlmChunk, on_chunk)
    wav, _ = caller(LONG_TURN)
    call = FileCall(client, WavSource(wav))
    result = await call.run()

    partials = {e.text.strip() for e in result.events if isinstance(e, SttPartial)}
    assert partials, "no partial transcript while the caller spoke"
    mine = [r for r in requests if r.call_id == call.call_id]
    answer = next(i for i, r in enumerate(mine) if not r.warm_only)
    prefills = [r for r in mine[:answer] if r.warm_only and r.messages[-1].role == "user"]
    assert prefills, "the caller's words were not evaluated before the answer was asked for"
    prompt = mine[answer].messages
    for prefill in prefills:
        # the answer's prompt, with the words heard so far as the caller's turn
        assert prefill.messages[:-1] == prompt[:-1]
        assert prefill.messages[-1].content in partials
    assert prompt[-1].role == "user"
    metrics = [e for e in result.events if isinstance(e, TurnMetrics)]
    assert len(metrics) == 1 and metrics[0].first_audio_ms and not metrics[0].interrupted
    # each warm-up of the words so far also peeked at the answer's first words (agent.early_opener)
    assert all(r.peek_tokens == PEEK_TOKENS for r in prefills)
    words_so_far = {r.messages[-1].content for r in prefills}
    mine_peeked = [p for p in peeks if p.call_id == call.call_id]
    assert mine_peeked and all(p.peek_of in words_so_far for p in mine_peeked)
    # said early only as an acknowledgement the answer then goes on from (whatever the model's words)
    opener = mine[answer].continue_from
    assert metrics[0].early_opener == bool(opener)
    if opener:
        assert acknowledgement(opener, ENGLISH) == opener
        said = [e.text for e in result.events if isinstance(e, TtsRequested)]
        assert said[0] == opener and metrics[0].agent_text.startswith(opener)
