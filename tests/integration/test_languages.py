"""Calls in French, over SIP, with a French caller whose voice is not the agent's: the caller's
words are transcribed as French, the LLM is given the French instructions and the answer is spoken
by the French voice (what voxbus decides; the words the model picks are its own), "oui, oui, oui"
over the answer does not interrupt it, and with ``language = "auto"`` an English and a French call
to one number each get their own language."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats.aio.msg import Msg

from voxbus.bus import subjects
from voxbus.bus.connection import Bus
from voxbus.commands import sip_call
from voxbus.config import Settings, load_settings
from voxbus.engines.tts import EspeakEngine, PiperEngine, VoiceEngine
from voxbus.media.dialogue import Dialogue, DialogueLine, DialoguePlayer, render_line
from voxbus.schemas.events import BargeIn, Event, LanguageChosen, SttFinal, TurnMetrics
from voxbus.schemas.messages import LlmRequest, TtsRequest
from voxbus.supervisors.system import System

from .helpers import wait_all_serving

pytestmark = pytest.mark.integration
FRENCH_AGENT = {
    "VOXBUS_AGENT__LANGUAGE": "fr",
    "VOXBUS_AGENT__GREETING": "Bonjour, cabinet dentaire, que puis-je faire pour vous ?",
    "VOXBUS_AGENT__SYSTEM_PROMPT": (
        "Vous êtes la réceptionniste d'un cabinet dentaire, au téléphone. Répondez en français, en "
        "deux phrases simples, sans listes ni emoji."
    ),
}
FRENCH_CALLER = "fr+f2"  # an espeak-ng variant: not the agent's voice (tts.voices.fr = espeak-ng:fr)


def caller_voice(settings: Settings) -> VoiceEngine:
    return EspeakEngine(FRENCH_CALLER, settings.tts)


async def running(settings: Settings) -> AsyncIterator[tuple[System, Bus]]:
    """A system, and an admin connection to overhear what its workers are asked."""
    system = System(settings)
    await system.start()
    admin = Bus(system.url, "test", creds=system.creds("admin"))
    await admin.connect(attempts=5)
    try:
        await wait_all_serving(admin, timeout_s=180)
        yield system, admin
    finally:
        await admin.close()
        await system.stop()


class Overheard:
    """The requests the LLM and TTS workers get: what voxbus decided to ask of them."""

    def __init__(self) -> None:
        self.llm: list[LlmRequest] = []
        self.tts: list[TtsRequest] = []

    async def listen(self, bus: Bus) -> None:
        await bus.subscribe(subjects.LLM_GENERATE, LlmRequest, self._on_llm)
        for subject in (subjects.TTS_SPEAK, subjects.tts_worker("*")):  # first clause, the rest
            await bus.subscribe(subject, TtsRequest, self._on_tts)

    async def _on_llm(self, request: LlmRequest, _msg: Msg) -> None:
        self.llm.append(request)

    async def _on_tts(self, request: TtsRequest, _msg: Msg) -> None:
        self.tts.append(request)


@pytest.fixture
async def french(
    test_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[System, Bus]]:
    """The default profile (its LLM answers in the caller's language; the test model does not)."""
    monkeypatch.setenv("VOXBUS_PROFILE", "default")
    # espeak-ng's French over PCMU is misheard often (see the README): on a loaded machine
    # "oui, oui, oui" came back as "Ré-ré-ré-ré...". An interruption of one distinct word is then
    # not taken, as an operator would configure a noisy French line
    monkeypatch.setenv("VOXBUS_TURN__BARGE_IN_MIN_WORDS", "2")
    for key, value in FRENCH_AGENT.items():
        monkeypatch.setenv(key, value)
    async for running_system in running(load_settings()):
        yield running_system


@pytest.fixture
async def auto(test_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[System]:
    monkeypatch.setenv("VOXBUS_AGENT__LANGUAGE", "auto")
    async for system, _admin in running(load_settings()):
        yield system


async def call(system: System, dialogue: Dialogue, voice: VoiceEngine, heard: Path) -> list[Event]:
    """The caller speaks once the agent has greeted them, and hangs up once the first answer has
    been played, however long that took."""
    player = DialoguePlayer(dialogue, [render_line(line, voice) for line in dialogue.lines])
    _, _, events = await sip_call(system.url, system.settings, player, heard, end_after_turn=1, quiet=True)
    return events


async def test_a_french_caller_gets_french_answers_and_a_backchannel_does_not_interrupt(
    french: tuple[System, Bus], tmp_path: Path
) -> None:
    system, admin = french
    settings = system.settings
    overheard = Overheard()
    await overheard.listen(admin)
    dialogue = Dialogue(
        lines=[
            DialogueLine(text="Bonjour, je voudrais déplacer mon rendez-vous de mardi à jeudi matin."),
            # "oui, oui, oui": espeak's "d'accord" is heard as "non" as often as not (see the README)
            DialogueLine(text="oui, oui, oui", when="during_reply", gap_s=0.8, role="backchannel"),
        ],
        settle_s=60.0,
    )
    heard = tmp_path / "heard.wav"
    events = await call(system, dialogue, caller_voice(settings), heard)
    finals = [e for e in events if isinstance(e, SttFinal)]
    assert finals and all(e.language == "fr" for e in finals)
    [metrics] = [e for e in events if isinstance(e, TurnMetrics)]  # a first turn cut short has none
    t0 = events[0].ts
    story = [  # what the turn-taking saw, for the failure message
        (
            round(e.ts - t0, 2),
            e.type,
            getattr(e, "text", "") or getattr(e, "decision", "") or getattr(e, "reason", ""),
        )
        for e in events
        if e.type.startswith(("speech", "stt.final", "barge_in", "playout", "llm.cancelled", "turn.metrics"))
    ]
    assert not metrics.interrupted and metrics.agent_text.strip(), story
    assert not [e for e in events if isinstance(e, BargeIn) and e.decision == "interrupt"]
    # the answer was asked for with the French instructions and spoken by the French voice (whisper
    # base tells espeak-ng's French from English only 60-80 % of the time, measured, so the audio's
    # language is not judged; nor are the model's words: once in a stressed run the default model
    # added an English "note:" to a French answer)
    call_id = metrics.call_id
    [asked] = [r for r in overheard.llm if r.call_id == call_id and r.gen == metrics.gen and not r.warm_only]
    assert asked.messages[0].role == "system"
    assert FRENCH_AGENT["VOXBUS_AGENT__SYSTEM_PROMPT"] in asked.messages[0].content
    spoken = [r for r in overheard.tts if r.call_id == call_id and r.gen == metrics.gen]
    assert spoken and {r.language for r in spoken} == {"fr"}, spoken


async def test_auto_gives_each_caller_their_language(
    auto: System, piper: PiperEngine, tmp_path: Path
) -> None:
    settings = auto.settings
    # each caller waits for the answer however long it takes (the call ends once it has been
    # played): with the default 4 s of patience, a loaded machine's caller hung up before whisper
    # had told its words' language
    english = Dialogue(
        lines=[DialogueLine(text="Hello, I would like to book an appointment for Thursday.")], settle_s=120.0
    )
    french_line = Dialogue(
        lines=[DialogueLine(text="Bonjour, je voudrais déplacer mon rendez-vous de mardi à jeudi matin.")],
        settle_s=120.0,
    )
    chosen, timelines = [], []
    for dialogue, voice, name in [(english, piper, "en"), (french_line, caller_voice(settings), "fr")]:
        events = await call(auto, dialogue, voice, tmp_path / f"heard-{name}.wav")
        chosen.append([e.language for e in events if isinstance(e, LanguageChosen)])
        timeline = [f"{e.ts:.3f} {e.type} {e.source} {getattr(e, 'language', '')}" for e in events]
        timelines.append(f"{name} call:\n" + "\n".join(timeline))
        finals = [e for e in events if isinstance(e, SttFinal)]
        assert finals and finals[0].language == name, finals
    assert chosen == [["en"], ["fr"]], "\n".join(timelines)  # a string: told whole, not cut
