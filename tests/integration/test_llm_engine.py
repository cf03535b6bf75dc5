"""The local LLM engine with the test model: ``llm.min_tokens`` keeps an answer going."""

from __future__ import annotations

import pytest

from voxbus.config import Settings
from voxbus.schemas.messages import ChatMessage

pytestmark = pytest.mark.integration
ASK = [
    ChatMessage(role="system", content="Answer in one word."),
    ChatMessage(role="user", content="Say yes."),
]


def test_min_tokens_keeps_the_answer_from_ending_early(settings: Settings, open_llm) -> None:  # noqa: ANN001
    settings.llm.min_tokens = 0  # whatever the environment says (make test-long sets it)
    brief = open_llm(settings.llm)
    assert len(list(brief.stream(ASK, max_tokens=60, temperature=0.0))) < 30
    settings.llm.min_tokens = 40
    long = open_llm(settings.llm)
    assert len(list(long.stream(ASK, max_tokens=60, temperature=0.0))) >= 40
