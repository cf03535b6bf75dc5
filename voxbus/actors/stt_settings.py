"""The STT worker's settings (``[stt]``): the VAD, whisper's search and priming, partial
transcripts and the barge-in's fast path. Part of :mod:`voxbus.config`'s settings, kept here
beside the turn-taking settings they work with."""

from __future__ import annotations

from pydantic import BaseModel, Field


class SttSettings(BaseModel):
    vad_start_threshold: float = Field(default=0.5, gt=0, lt=1)
    vad_end_threshold: float = Field(default=0.35, gt=0, lt=1)
    min_speech_ms: int = Field(
        default=64,
        ge=32,
        description="speech this long starts a turn, or holds the agent's audio if it is speaking",
    )
    pre_roll_ms: int = Field(default=200, ge=0)
    partial_interval_ms: int = Field(
        default=500,
        ge=0,
        description="a partial transcript this often while an English caller speaks and the agent is "
        "silent, its words prefilled into the LLM (README, 'Prefill'); 0: off. Whisper runs one job at "
        "a time: a partial can delay the turn's end (other languages' model is too slow for it)",
    )
    head_ms: int = Field(
        default=240,
        ge=0,
        description="over the agent, whisper hears the caller's first this many ms of speech at once: "
        "if they are a backchannel ('Yeah'), the held agent resumes before the caller has finished it "
        "(README, 'Barge-in'); 0: off, every hold waits for the whole words",
    )
    partials_max_calls: int = Field(
        default=1,
        ge=0,
        description="partial transcripts only while the STT worker transcribes at most this many calls: "
        "they cost about half of two cores while a caller speaks, which several calls cannot spare",
    )
    prompt: str = Field(
        default="Uh, hmm, um... so, uh, well, um.",
        description="primes whisper to write hesitations ('um', 'uh') instead of dropping them: the end "
        "of turn needs them ('I'd like to book, um' must not read as a finished sentence). Fillers "
        "only: whisper tends to skip speech that repeats its prompt. English; see prompts",
    )
    prompts: dict[str, str] = Field(
        default_factory=lambda: {"fr": "Euh, hum, ben... alors, euh, bon."},
        description="the same priming for other languages, by language code",
    )
    # 8 s against 16: the same word errors over PCMU, a third less whisper time (bench/stt_wer.py)
    context_s: float = Field(
        default=8.0,
        ge=4,
        le=30,
        description="seconds of audio whisper's encoder sees (the turn and silence after it, at "
        "least the turn and 4 s); 30 is whisper's own window. Shorter is faster (tiny.en: 8 s "
        "~150 ms a turn, 16 s ~210 ms, 30 s ~300 ms)",
    )
    beam_size: int = Field(default=1, ge=1)
    short_reply_s: float = Field(
        default=2.5,
        ge=0,
        description="a turn at most this long is a short reply ('Friday at 9.'): whisper searches it "
        "with short_reply_beam_size, where beam search pays most (flite callers over PCMU: 52 -> 40 % "
        "word errors) and costs least (~20 ms: few tokens to decode); 0: never",
    )
    short_reply_beam_size: int = Field(default=5, ge=1)
    cpu_threads: int = Field(default=2, ge=1)
    prompt_agent_words: bool = Field(
        default=True,
        description="whisper reads the agent's last words (an answer played whole) before the caller's "
        "reply, as the text that came before it: 'Thursday at four' after the agent offered it is "
        "heard as such (bench/stt_wer.py --said). Not for words said over the agent (its echo)",
    )
    over_agent_cues: bool = Field(
        default=True,
        description="over the agent's audio, whisper is primed with the turn lexicon's backchannels and "
        "interruptions, not the fillers (which wrote 'Stop.' as 'Uh...'; bench/barge_words.py)",
    )

    def prompt_for(self, language: str | None) -> str:
        """Whisper's priming text for a language (None: not known yet, no priming)."""
        if language == "en":
            return self.prompt
        return self.prompts.get(language or "", "")
