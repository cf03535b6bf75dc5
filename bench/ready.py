"""A system ready for a benchmark's first call: every role serving, and the LLM worker done with
the work it starts on its own (the agents' prompts evaluated for every call to come).

A call placed sooner measures the system's start, not a turn: the LLM worker was still loading when
the latency benchmark's call began, the agent's warm-up of the call's prompt had nobody to take it,
and the first turn evaluated the whole prompt (its first token 1.6 s after the transcript, later
turns 0.3-0.4 s).
"""

from __future__ import annotations

from procstat import until_idle

from voxbus.bus.connection import Bus
from voxbus.supervisors.serving import pid_of, wait_all_serving
from voxbus.supervisors.system import System


async def system_ready(system: System, timeout_s: float = 300.0) -> float:
    """Wait until every role serves and the LLM worker is idle; the seconds it was busy after."""
    admin = Bus(system.url, "bench-ready", creds=system.creds("admin"))
    await admin.connect(attempts=5)
    try:
        await wait_all_serving(admin, timeout_s=timeout_s)
        llm = await pid_of(admin, "llm", "llm-1")
    finally:
        await admin.close()
    return await until_idle(llm)
