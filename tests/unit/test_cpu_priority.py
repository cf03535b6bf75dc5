"""CPU priorities by role: the LLM yields the cores to whisper and piper, set before its threads."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from voxbus.config import Settings
from voxbus.supervisors.settings import SupervisionSettings

# run in a child: lowering pytest's own priority would stay for every later test
CHILD = """
import os, threading
from voxbus.actors.roles import yield_cpu
from voxbus.config import Settings
settings = Settings(supervision={"nice": {"llm": 3}})
print(yield_cpu(settings, "stt"), yield_cpu(settings, "llm"), yield_cpu(settings, "llm"))
seen = []
thread = threading.Thread(target=lambda: seen.append(os.getpriority(os.PRIO_PROCESS, 0)))
thread.start(); thread.join()
print(seen[0])
"""


def test_a_role_lowers_its_priority_once_and_its_threads_inherit_it() -> None:
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True)
    first, later_thread = out.stdout.splitlines()[-2:]  # after the log line
    assert first.split() == ["0", "3", "3"]  # stt untouched; llm lowered once, not by 3 more each time
    assert later_thread == "3"


def test_the_llm_yields_by_default_and_bad_values_are_refused() -> None:
    assert Settings().supervision.nice == {"llm": 5}
    with pytest.raises(ValidationError, match="nice"):
        SupervisionSettings(nice={"llm": 25})
    with pytest.raises(ValidationError, match="nice"):
        SupervisionSettings(nice={"whisper": 5})  # type: ignore[dict-item]
