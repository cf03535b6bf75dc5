"""The Prometheus exposition moves with the events, and the shipped Grafana dashboard asks only
for metrics that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from voxbus.console.metrics import CallMetrics
from voxbus.schemas.events import BargeIn, CallEnded, CallStarted, LineQuality, TurnMetrics

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "voxbus.json"


def samples(metrics: CallMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    families = text_string_to_metric_families(metrics.exposition().decode())
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


def test_events_move_the_metrics() -> None:
    metrics = CallMetrics()
    metrics.observe(CallStarted(call_id="c1"))
    metrics.observe(
        TurnMetrics(call_id="c1", user_text="", agent_text="", first_audio_ms=640, stt_final_ms=200)
    )
    metrics.observe(BargeIn(call_id="c1", decision="ignored", reason="backchannel", onset_ts=0.0))
    seen = samples(metrics)
    assert seen[("voxbus_calls_total", ())] == 1
    assert seen[("voxbus_turn_latency_seconds_count", (("stage", "perceived"),))] == 1
    assert seen[("voxbus_turn_latency_seconds_bucket", (("le", "0.7"), ("stage", "perceived")))] == 1
    assert seen[("voxbus_turn_latency_seconds_bucket", (("le", "0.5"), ("stage", "perceived")))] == 0
    assert seen[("voxbus_barge_ins_total", (("decision", "ignored"),))] == 1


def test_a_sip_calls_line_moves_the_jitter_buffer_and_loss_metrics() -> None:
    metrics = CallMetrics()
    line = LineQuality(
        packets=500, lost=3, jitter_ms=4.2, jitter_buffer_ms=64, jitter_buffer_max_ms=120, discarded=1
    )
    metrics.observe(CallEnded(call_id="c1", duration_s=10.0, hangup_by="caller", line=line))
    metrics.observe(CallEnded(call_id="c2", duration_s=10.0, hangup_by="caller"))  # a file call: no line
    seen = samples(metrics)
    assert seen[("voxbus_line_jitter_buffer_seconds_count", ())] == 1
    assert seen[("voxbus_line_jitter_buffer_seconds_bucket", (("le", "0.08"),))] == 1
    assert seen[("voxbus_line_jitter_buffer_seconds_bucket", (("le", "0.06"),))] == 0
    assert seen[("voxbus_rtp_lost_packets_total", ())] == 3


def test_the_dashboard_uses_only_metrics_that_exist() -> None:
    exprs = [t["expr"] for panel in json.loads(DASHBOARD.read_text())["panels"] for t in panel["targets"]]
    used = {re.sub(r"_(bucket|total)$", "", name) for e in exprs for name in re.findall(r"voxbus_[a-z_]+", e)}
    families = {f.name for f in text_string_to_metric_families(CallMetrics().exposition().decode())}
    assert used and used <= families, used - families
