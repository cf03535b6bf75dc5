"""A pjsua2 audio port destroyed while pjmedia's clock is calling it (the SIP caller's port at
the end of every call, the gateway's ports at shutdown) leaves the process whole: a callback in
progress finishes, no callback runs after the destruction. Run in a child process, so that a
crash is this test's failure and not the end of the suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_ports_destroyed_under_a_running_clock_leave_the_process_whole() -> None:
    churn = [sys.executable, "-m", "tests.port_churn", "150"]
    run = subprocess.run(churn, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["ports", "150", "late", "0"], run.stdout + run.stderr[-2000:]
    assert "Error" not in run.stderr, run.stderr[-2000:]
