"""``[supervision]``: how workers are watched and restarted."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

Role = Literal["stt", "llm", "tts", "agent", "sip", "console"]  # the roles a process can play
Niceness = Annotated[int, Field(ge=0, le=19)]


class SupervisionSettings(BaseModel):
    heartbeat_interval_s: float = Field(default=0.5, gt=0)
    heartbeat_timeout_s: float = Field(
        default=3.0, gt=0, description="silence before 'hung', for a worker that uses no CPU meanwhile"
    )
    busy_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="silence before 'hung' for a worker that goes on using CPU: a loaded machine starves "
        "its event loop for seconds, and killing it mid-call loses the caller's words",
    )
    startup_timeout_s: float = Field(default=120.0, gt=0, description="time to first heartbeat")
    max_restarts: int = Field(default=5, ge=0)
    max_seconds: float = Field(default=60.0, gt=0)
    backoff_initial_s: float = Field(default=0.2, ge=0)
    backoff_max_s: float = Field(default=5.0, ge=0)
    nice: dict[Role, Niceness] = Field(
        default_factory=lambda: {"llm": 5},
        description="CPU priority by role, as Unix niceness (0-19: higher yields more; no privilege "
        "needed to raise it). The LLM decodes the rest of an answer while whisper judges words said "
        "over it and piper speaks its first clause: those must not wait for it (README, 'CPU "
        "priorities')",
    )
