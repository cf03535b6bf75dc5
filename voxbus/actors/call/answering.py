"""Who answered an outbound call: a person or an answering machine, told apart before the agent
says a word.

A person picks up and says a short "Hello?" (or nothing), then waits; a machine plays a greeting of
several seconds ("Hi, you've reached Ann... leave a message after the tone"), then a beep, then
records. So, from the callee's speech as the VAD reports it (plus their words once transcribed),
as answering-machine detection in telephony does:

- speech adding up to ``agent.machine_greeting_ms`` before a pause of ``agent.human_pause_ms``,
  or words a machine says ("leave a message", "after the tone", "messagerie"...): a machine;
- a short greeting followed by ``agent.human_pause_ms`` of silence: a person;
- nobody speaking for ``agent.amd_initial_silence_s``: a person who waits for us to speak.

For a machine, the agent waits until the greeting and its beep are over (``agent.beep_wait_ms``
of silence), then leaves ``agent.voicemail_message`` and hangs up. Plain logic on an injected
clock; the call actor feeds it events and carries out what it decides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from voxbus.config import AgentSettings

Verdict = Literal["human", "machine"]
MACHINE_WORDS = re.compile(
    r"leave (?:a|your) (?:message|name)|after the (?:tone|beep)|not available|unavailable|"
    r"can(?:'|no)t (?:take|come to) (?:your|the) (?:call|phone)|voice ?mail|mailbox|record your|"
    r"laissez(?:-moi)? (?:un|votre) message|après le (?:bip|signal)|messagerie|répondeur|"
    r"n'est pas disponible|absent",
    re.IGNORECASE,
)
MACHINE_GREETING_LIMIT_S = 30.0  # a greeting that never ends: speak anyway


@dataclass
class AnsweringJudge:
    settings: AgentSettings
    answered_at: float  # monotonic s: the call was answered
    verdict: Verdict | None = None
    reason: str = ""
    speech_ms: float = 0.0  # the callee's speech so far
    speaking_since: float | None = None  # monotonic s, while they speak
    quiet_since: float | None = None  # monotonic s, since their last speech stopped
    last_speech_end_ms: int = -1  # call time: speech before this was judged, never answered
    words: list[str] = field(default_factory=list)

    def speech_started(self, now: float) -> None:
        self.speaking_since, self.quiet_since = now, None

    def speech_stopped(self, now: float, at_ms: int) -> None:
        if self.speaking_since is not None:
            self.speech_ms += (now - self.speaking_since) * 1000
        self.speaking_since, self.quiet_since = None, now
        if self.verdict is None or self.verdict == "machine":
            self.last_speech_end_ms = max(self.last_speech_end_ms, at_ms)

    def heard(self, text: str) -> None:
        """The callee's words, once transcribed: a machine's phrases decide at once."""
        self.words.append(text)
        if self.verdict is None and (match := MACHINE_WORDS.search(text)):
            self._decide("machine", f"said {match.group(0)!r}")

    def tick(self, now: float) -> Verdict | None:
        """The verdict, once there is one (it does not change)."""
        if self.verdict is not None:
            return self.verdict
        ongoing = (now - self.speaking_since) * 1000 if self.speaking_since is not None else 0.0
        speaking_ms = self.speech_ms + ongoing
        if speaking_ms >= self.settings.machine_greeting_ms:
            self._decide("machine", f"a greeting of {speaking_ms:.0f} ms")
        elif self.speaking_since is None and self.speech_ms == 0:
            if now - self.answered_at >= self.settings.amd_initial_silence_s:
                self._decide("human", "silence: someone waiting for us to speak")
        elif self.quiet_since is not None and (now - self.quiet_since) * 1000 >= self.settings.human_pause_ms:
            self._decide("human", f"a short greeting ({self.speech_ms:.0f} ms) then silence")
        return self.verdict

    def machine_finished(self, now: float) -> bool:
        """The machine's greeting and beep are over: time to leave the message."""
        if self.verdict != "machine":
            return False
        if now - self.answered_at >= MACHINE_GREETING_LIMIT_S:
            return True
        quiet = self.quiet_since is not None and self.speaking_since is None
        return quiet and (now - self.quiet_since) * 1000 >= self.settings.beep_wait_ms  # type: ignore[operator]

    def judged(self, end_ms: int) -> bool:
        """Speech that ended by ``end_ms`` was the callee's greeting: it gets no answer."""
        return end_ms <= self.last_speech_end_ms

    def _decide(self, verdict: Verdict, reason: str) -> None:
        self.verdict, self.reason = verdict, reason
