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


SIPP_ERRORS = """The following events occurred:
2026-12-04\t06:50:54.462923\t1796367054.462923: Aborting call on unexpected message for Call-Id '1-1@127.0.0.1': while expecting '100' (index 1), received 'SIP/2.0 503 Service Unavailable
Via: SIP/2.0/UDP 127.0.0.1:15991;branch=z9hG4bK-11115-1-0
Retry-After: 5

'
2026-12-04\t06:50:55.000000\t1796367055.000000: Aborting call on unexpected message for Call-Id '2-1@127.0.0.1': while expecting '200' (index 3), received 'SIP/2.0 503 Service Unavailable
'
2026-12-04\t06:51:06.922200\t1796367066.922200: Call-Id: 1-11173@127.0.0.1, receive timeout on message Basic Sipstone UAC:1 without label to jump to (ontimeout attribute): aborting call
"""


def test_sipps_failed_calls_are_counted_by_why(tmp_path: Path) -> None:
    """The load benchmark says why the calls sipp counted as failed failed (a log of sipp 3.7's
    own format, as a 503 and a receive timeout wrote it: two calls refused, one timed out)."""
    import gateway_load

    log = tmp_path / "errors.log"
    log.write_text(SIPP_ERRORS)
    assert gateway_load.sipp_failures(log) == {"503": 2, "timeout": 1}
    assert gateway_load.sipp_failures(tmp_path / "none.log") == {}
