"""Agent profiles: one agent per business line, picked by the number called.

A profile names the numbers it answers (the SIP request URI's user, e.g. ``2000`` or
``+15550002000``) and overrides any of the ``[agent]`` settings: instructions, greeting, tools,
the start tool; plus its own transfer target and longest call. Profiles come from ``[agents.NAME]``
tables in the configuration and from ``agents_dir`` (one TOML file per agent, named after the
file). A call to a number no profile claims gets the ``[agent]`` settings themselves.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import ValidationError

from voxbus.config import AgentProfile, AgentSettings, Settings


class ProfileError(ValueError):
    """A profile file or table that is wrong; the message names it and the field, in one line."""


class Profiles:
    def __init__(self, settings: Settings) -> None:
        self.base = settings.agent
        self.profiles: dict[str, AgentProfile] = dict(settings.agents)
        if settings.agents_dir is not None:
            for path in sorted(Path(settings.agents_dir).glob("*.toml")):
                self.profiles[path.stem] = _load(path)
        self.by_number: dict[str, str] = {}
        for name, profile in self.profiles.items():
            for number in profile.numbers:
                if number in self.by_number:
                    raise ProfileError(
                        f"number {number} is claimed by agents {self.by_number[number]} and {name}"
                    )
                self.by_number[number] = name
        self.agents = {name: self._merged(name, p) for name, p in self.profiles.items()}
        self.spoken = spoken_languages(settings)
        for name, agent in [("[agent]", self.base), *self.agents.items()]:
            if agent.language != "auto" and agent.language not in self.spoken:
                raise ProfileError(
                    f"agent {name}: language {agent.language!r} needs word lists (turn.lexicons) and a "
                    f"voice (tts.voices); these languages have both: {', '.join(self.spoken)}"
                )

    def languages(self) -> list[str]:
        """Every language a call may be in: the agents' own, and for 'auto' all that are spoken."""
        chosen = {agent.language for agent in [self.base, *self.agents.values()]}
        return [lang for lang in self.spoken if lang in chosen or "auto" in chosen]

    def _merged(self, name: str, profile: AgentProfile) -> AgentSettings:
        try:
            # validated whole (unknown keys and bad values fail here), taken from the base otherwise
            return AgentSettings.model_validate({**self.base.model_dump(), **profile.agent})
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ProfileError(
                f"agent {name}: agent.{'.'.join(map(str, first['loc']))}: {first['msg']}"
            ) from None

    def named(self, name: str) -> tuple[str, AgentSettings, AgentProfile | None]:
        """The profile an outbound call names ('': [agent]); ProfileError if there is none."""
        if not name:
            return "", self.base, None
        if name not in self.agents:
            raise ProfileError(f"unknown agent profile {name!r}: one of {', '.join(self.agents) or 'none'}")
        return name, self.agents[name], self.profiles[name]

    def pick(self, called: str) -> tuple[str, AgentSettings, AgentProfile | None]:
        """(profile name, its agent settings, the profile) for a number called; ("", [agent], None)
        when no profile claims it."""
        name = self.by_number.get(called, "")
        if not name:
            return "", self.base, None
        return name, self.agents[name], self.profiles[name]


def _load(path: Path) -> AgentProfile:
    try:
        return AgentProfile.model_validate(tomllib.loads(path.read_text()))
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: not TOML: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ProfileError(f"{path}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None


def spoken_languages(settings: Settings) -> list[str]:
    """Languages with turn-taking word lists and a voice: English (the bundled voice) and every
    language of ``turn.lexicons`` with an entry in ``tts.voices``."""
    return ["en", *(lang for lang in settings.turn.lexicons if lang != "en" and lang in settings.tts.voices)]
