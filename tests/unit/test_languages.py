"""Languages: which ones a configuration speaks, the French word lists of turn-taking, and what
the LLM is told of the caller's language."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxbus.actors.call.conversation import call_context, with_language
from voxbus.actors.turns import is_backchannel, looks_unfinished, words
from voxbus.config import Settings
from voxbus.lexicons import FRENCH
from voxbus.profiles import ProfileError, Profiles, spoken_languages
from voxbus.schemas.messages import CallState


def settings(tmp_path: Path, **fields: object) -> Settings:
    return Settings(data_dir=tmp_path, **fields)  # type: ignore[arg-type]


def test_the_languages_a_configuration_speaks(tmp_path: Path) -> None:
    base = settings(tmp_path)
    assert spoken_languages(base) == ["en", "fr"]
    assert Profiles(base).languages() == ["en"]  # English only: no multilingual model, no French voice
    agents = {"banque": {"numbers": ["3000"], "agent": {"language": "fr"}}}
    assert Profiles(settings(tmp_path, agents=agents)).languages() == ["en", "fr"]
    assert Profiles(settings(tmp_path, agent={"language": "auto"})).languages() == ["en", "fr"]


def test_a_language_without_words_or_voice_is_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"agent banque: language 'de' needs .* en, fr"):
        Profiles(settings(tmp_path, agents={"banque": {"numbers": ["1"], "agent": {"language": "de"}}}))
    german = {"backchannels": ["ja"], "fillers": ["äh"], "continuations": ["und"]}
    no_voice = settings(tmp_path, agent={"language": "de"}, turn={"lexicons": {"de": german}})
    with pytest.raises(ProfileError, match="tts.voices"):
        Profiles(no_voice)
    voiced = settings(
        tmp_path,
        agent={"language": "de"},
        turn={"lexicons": {"de": german}},
        tts={"voices": {"de": "espeak-ng:de"}},
    )
    assert Profiles(voiced).languages() == ["de"]


def test_french_turn_taking_words() -> None:
    assert words("D'accord, très bien… l’été") == ["d'accord", "très", "bien", "l'été"]
    assert is_backchannel("D'accord.", FRENCH) and is_backchannel("Oui oui, très bien.", FRENCH)
    assert not is_backchannel("Oui, mais plutôt jeudi.", FRENCH)
    assert looks_unfinished("Je voudrais déplacer mon rendez-vous à", FRENCH)
    assert looks_unfinished("Alors, euh", FRENCH)
    assert not looks_unfinished("Je voudrais déplacer mon rendez-vous à jeudi.", FRENCH)


def test_the_llm_is_told_the_callers_language() -> None:
    french = CallState(call_id="c1", owner="a", language="fr")
    assert "answer in French" in call_context(0.0, french)
    assert "answer in" not in call_context(0.0, CallState(call_id="c2", owner="a", language="auto"))
    once = with_language("Today is Monday.", "fr")
    assert with_language(once, "fr") == once == "Today is Monday. The caller speaks French: answer in French."
