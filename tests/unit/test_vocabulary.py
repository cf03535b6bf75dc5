"""An agent's vocabulary: from its profile to the STT session, refused when too long, and placed
in whisper's prompt after the fillers."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from voxbus.config import Settings, SttSettings
from voxbus.engines.stt import priming
from voxbus.profiles import Profiles
from voxbus.schemas.messages import VOCABULARY_MAX_WORDS, SttSession

ROOT = Path(__file__).resolve().parents[2]


def test_the_vocabulary_follows_the_fillers_in_whisper_s_prompt() -> None:
    stt = SttSettings()
    assert priming(stt, "en") == stt.prompt
    assert priming(stt, "en", ["Doctor Patel", " check-up ", ""]) == f"{stt.prompt} Doctor Patel, check-up."
    assert priming(stt, None, ["Anna"]) == "Anna."  # a language not known yet: no fillers


def test_an_stt_session_refuses_a_vocabulary_too_long_for_whisper_s_prompt() -> None:
    assert SttSession(call_id="c", vocabulary=["Anna"]).vocabulary == ["Anna"]
    with pytest.raises(ValidationError, match="at most 40 characters"):
        SttSession(call_id="c", vocabulary=["x" * 41])
    with pytest.raises(ValidationError):
        SttSession(call_id="c", vocabulary=["word"] * (VOCABULARY_MAX_WORDS + 1))


def test_the_clinic_agent_carries_its_vocabulary_and_the_base_agent_none() -> None:
    import tomllib

    settings = Settings.model_validate(tomllib.loads((ROOT / "examples/clinic/voxbus.toml").read_text()))
    profiles = Profiles(settings)
    assert profiles.base.vocabulary == []
    assert "Bright Smile" in profiles.agents["clinic"].vocabulary


def test_a_vocabulary_entry_too_long_is_a_configuration_error() -> None:
    with pytest.raises(ValidationError, match="vocabulary"):
        Settings.model_validate({"agent": {"vocabulary": ["y" * 41]}})


def test_a_start_tools_answer_gives_the_callers_own_words_to_whisper() -> None:
    from voxbus.actors.call.tool_use import vocabulary_of

    said = ["Peter Walsh", " Dr. Okafor ", "Peter Walsh", 7, "", "x" * 41]
    answer = {"patient": "Peter Walsh", "vocabulary": said}
    assert vocabulary_of(answer) == ["Peter Walsh", "Dr. Okafor"]  # strings, trimmed, once, short enough
    assert vocabulary_of({"vocabulary": "Peter"}) == []  # not a list: nothing
    assert vocabulary_of(["Peter"]) == [] and vocabulary_of(None) == []
    assert len(vocabulary_of({"vocabulary": [f"name {i}" for i in range(100)]})) == 40
