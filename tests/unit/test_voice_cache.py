"""Short clauses spoken from memory, and what a TTS worker learns at start."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from voxbus.actors.tts_worker import agents_phrases
from voxbus.config import Settings
from voxbus.engines.voice_cache import CachedVoice
from voxbus.profiles import Profiles


class CountingVoice:
    """A voice whose frames name the text: counts how often it is asked to synthesise."""

    def __init__(self) -> None:
        self.synthesised: list[str] = []

    def frames(self, text: str, cancelled: Callable[[], bool] = lambda: False) -> Iterator[bytes]:
        self.synthesised.append(text)
        for word in text.split():
            if cancelled():
                return
            yield word.encode()


def test_a_short_clause_is_synthesised_once_and_then_comes_from_memory() -> None:
    voice = CountingVoice()
    cached = CachedVoice(voice, max_chars=12, entries=8)  # type: ignore[arg-type]
    assert list(cached.frames("Of  course,")) == [b"Of", b"course,"]
    assert list(cached.frames("Of course,")) == [b"Of", b"course,"]
    assert voice.synthesised == ["Of  course,"] and cached.hits == 1
    long = "The clinic opens at nine."
    assert list(cached.frames(long)) == list(cached.frames(long))
    assert voice.synthesised.count(long) == 2  # too long to keep


def test_a_synthesis_cut_short_is_not_kept() -> None:
    voice = CountingVoice()
    cached = CachedVoice(voice, max_chars=32, entries=8)  # type: ignore[arg-type]
    heard: list[bytes] = []
    assert list(cached.frames("Sure, why not", lambda: True)) == []  # cancelled at once
    for frame in cached.frames("Sure, why not", lambda: len(heard) >= 1):
        heard.append(frame)
    assert heard == [b"Sure,"] and len(cached) == 0
    stream = cached.frames("Okay then")
    next(stream)
    stream.close()  # the listener went away mid-clause (a barge-in)
    assert len(cached) == 0


def test_learnt_phrases_are_kept_whatever_their_length_and_the_oldest_go_first() -> None:
    voice = CountingVoice()
    cached = CachedVoice(voice, max_chars=8, entries=2)  # type: ignore[arg-type]
    cached.learn(["Hello, how can I help you?", "Sure,", "Sure,"])
    assert voice.synthesised == ["Hello, how can I help you?", "Sure,"]
    list(cached.frames("Hello, how can I help you?"))  # used: now the newest
    list(cached.frames("Okay,"))
    assert len(cached) == 2
    list(cached.frames("Sure,"))  # dropped to make room, spoken again
    assert voice.synthesised.count("Sure,") == 2
    assert len(CachedVoice(voice, max_chars=8, entries=0)) == 0  # type: ignore[arg-type]


def test_each_language_learns_its_agents_greetings_and_keeps_their_holding_phrases() -> None:
    settings = Settings.model_validate(
        {
            "agent": {"greeting": "Hello, how can I help you?"},
            "agents": {"paris": {"numbers": ["200"], "agent": {"language": "fr", "greeting": "Bonjour !"}}},
        }
    )
    profiles = Profiles(settings)
    assert agents_phrases(profiles, holding=False) == {
        "en": ["Hello, how can I help you?"],
        "fr": ["Bonjour !"],
    }
    holding = agents_phrases(profiles, holding=True)
    phrases = [settings.agent.tool_holding_phrase, settings.agent.transfer_holding_phrase]
    assert holding == {"en": phrases, "fr": phrases}  # the French agent kept the default phrases


def test_a_holding_phrase_is_kept_once_said_however_long() -> None:
    voice = CountingVoice()
    holding = "Please hold on, I'm putting you through to a colleague."
    cached = CachedVoice(voice, max_chars=8, entries=8, always=[holding])  # type: ignore[arg-type]
    list(cached.frames(holding))
    list(cached.frames(holding))
    assert voice.synthesised == [holding]
