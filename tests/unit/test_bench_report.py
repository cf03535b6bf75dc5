"""The benchmarks' shared report (bench/report.py): figures stamped with where they were measured,
and charts drawn without a display."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import report  # noqa: E402


def test_figures_are_stamped_with_the_machine_and_commit(tmp_path: Path) -> None:
    path = report.write_json(tmp_path / "deep" / "figures.json", {"p50_ms": 1240, "heard": "café"})
    written = json.loads(path.read_text(encoding="utf-8"))
    assert written["p50_ms"] == 1240 and written["heard"] == "café"
    stamp = written["machine"]
    assert stamp["cpus"] >= 1 and stamp["cpu"] and stamp["measured_at"]
    assert stamp["commit"]  # this checkout is a git repository
    assert "café" in path.read_text(encoding="utf-8")  # readable, not \\u escapes


def test_figures_that_carry_their_own_machine_keep_it(tmp_path: Path) -> None:
    path = report.write_json(tmp_path / "f.json", {"machine": {"cpu": "given"}})
    assert json.loads(path.read_text())["machine"] == {"cpu": "given"}


def test_a_chart_is_drawn_to_a_file_without_a_display(tmp_path: Path) -> None:
    plt = report.pyplot()
    fig, ax = plt.subplots()
    ax.bar(["a", "b"], [1, 2])
    fig.savefig(tmp_path / "chart.png")
    assert (tmp_path / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


SIPP_ERRORS = Path(__file__).with_name("sipp_errors.log")  # as sipp 3.7 wrote them


def test_sipps_failed_calls_are_counted_by_why(tmp_path: Path) -> None:
    """The load benchmark says why the calls sipp counted as failed failed (a log of sipp 3.7's
    own format, as a 503 and a receive timeout wrote it: two calls refused, one timed out)."""
    import gateway_load

    assert gateway_load.sipp_failures(SIPP_ERRORS) == {"503": 2, "timeout": 1}
    assert gateway_load.sipp_failures(tmp_path / "none.log") == {}
