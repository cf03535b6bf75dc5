"""``[turn]``: when the caller's turn ends, and what counts as an interruption."""

from __future__ import annotations

from pydantic import BaseModel, Field

from voxbus.lexicons import ENGLISH, FRENCH, Lexicon


class TurnSettings(BaseModel):
    """Turn-taking: when the caller's turn ends, and what counts as an interruption."""

    pause_ms: int = Field(
        default=192,
        ge=64,
        description="silence after which the caller's words so far decide the turn: a turn that "
        "reads complete ends here",
    )
    # the end of the turn is known before it is decided: whisper's time no longer follows the
    # pause (README, "Latency"); a shorter pause_ms did as much but split turns at short pauses,
    # and whisper then heard each half alone ("Yes. | Half past ten..." -> "Have past and")
    early_ms: int = Field(
        default=96,
        ge=0,
        description="silence after which whisper already transcribes the turn so far; if the caller "
        "is still silent at pause_ms, those words decide the turn at once; 0 (or pause_ms and more): "
        "off, whisper starts at pause_ms",
    )
    unfinished_wait_ms: int = Field(
        default=1200,
        ge=128,
        description="silence after which a turn that reads unfinished ('I'd like to book, um') ends anyway",
    )
    barge_in_min_speech_ms: int = Field(
        default=1200,
        ge=0,
        description="caller speech over the agent longer than this interrupts it (shorter speech "
        "interrupts only if its words are more than a backchannel)",
    )
    barge_in_min_words: int = Field(
        default=0,
        ge=0,
        description="if above 0, an interruption also needs this many words that are not backchannels",
    )
    barge_in_aside_words: int = Field(
        default=2,
        ge=0,
        description="no cue to stop and at most this many non-backchannel words over the agent: an aside",
    )
    barge_in_max_no_speech: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="words heard while the agent speaks are taken for a noise when whisper's own "
        "estimate that the audio holds no speech is above this: it writes words for a hum or a "
        "crackle, which would interrupt the agent; unset: 0.2 where whisper hears the cancelled line "
        "(sip.echo_canceller set), else only whisper's own 0.8 (bench/barge_words.py)",
    )
    hold_max_ms: int = Field(
        default=4000, ge=200, description="longest pause of the agent's audio while a barge-in is judged"
    )
    echo_gate_db: float | None = Field(
        default=-16.0,
        ge=-60,
        le=10,
        description="while the agent's audio plays, caller audio quieter than the agent's recent level "
        "plus this is taken for its echo, not speech (until the line's echo is measured: then "
        "echo_margin_db decides); unset: no gate",
    )
    # 4 dB: on the benchmarks' line (an echo 20 dB down) the same limit as echo_gate_db's -16 dB
    echo_margin_db: float = Field(
        default=4.0,
        ge=0,
        le=30,
        description="once the gateway has measured the line's echo (its delay and loss), caller audio "
        "at most this much louder than the echo expected in it is taken for the echo",
    )
    echo_gate_words: bool | None = Field(
        default=None,
        description="the echo gate also silences what whisper hears (not only what the VAD hears); "
        "unset: only when the gateway cancels no echo (sip.echo_canceller = 'off'). Zeroed frames "
        "take the quiet parts of the caller's own words: 'Stop.' over the agent is heard as 'Uh.' "
        "(bench/barge_words.py)",
    )
    echo_overlap: float = Field(
        default=0.6,
        gt=0,
        le=1,
        description="caller words heard during the agent's speech count as its echo when this "
        "share of them are the agent's own recent words",
    )
    lexicons: dict[str, Lexicon] = Field(
        default_factory=lambda: {"en": ENGLISH, "fr": FRENCH},
        description="turn-taking word lists by language (agent.language picks one); add a language here",
    )

    def lexicon(self, language: str) -> Lexicon:
        """The word lists of a language; for 'auto' (not known yet) those of every language."""
        if language == "auto":
            merged = Lexicon()
            for lexicon in self.lexicons.values():
                merged.backchannels += lexicon.backchannels
                merged.fillers += lexicon.fillers
                merged.continuations += lexicon.continuations
                merged.acknowledgements += lexicon.acknowledgements
            return merged
        if language not in self.lexicons:
            raise ValueError(f"language {language!r} has no entry in turn.lexicons")
        return self.lexicons[language]
