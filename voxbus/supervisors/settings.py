"""``[supervision]``: how workers are watched and restarted."""

from __future__ import annotations

from pydantic import BaseModel, Field


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
