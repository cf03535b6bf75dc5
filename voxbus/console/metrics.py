"""Prometheus metrics from the call events (``/metrics`` of the console; prometheus-client, the
reference client library, so that any Prometheus or Grafana reads them as they are)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from voxbus.schemas.events import (
    BargeIn,
    CallEnded,
    CallStarted,
    ErrorEvent,
    Event,
    ToolFailed,
    TurnMetrics,
    WorkerRestarted,
)

BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0)
STAGES = {  # turn.metrics field -> stage label
    "first_audio_ms": "perceived",
    "vad_decision_ms": "vad",
    "stt_final_ms": "stt",
    "llm_first_token_ms": "llm_first_token",
    "tts_first_frame_ms": "tts_first_frame",
}


class CallMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.latency = Histogram(
            "voxbus_turn_latency_seconds",
            "time from the end of the caller's speech to each stage of the answer",
            ["stage"],
            buckets=BUCKETS,
            registry=r,
        )
        self.calls_up = Gauge("voxbus_calls_up", "calls in progress", registry=r)
        self.calls = Counter("voxbus_calls_total", "calls started", registry=r)
        self.ended = Counter(
            "voxbus_calls_ended_total", "calls ended, by who hung up", ["hangup_by"], registry=r
        )
        self.barge_ins = Counter(
            "voxbus_barge_ins_total", "caller speech over the agent", ["decision"], registry=r
        )
        self.errors = Counter("voxbus_errors_total", "error events, by code", ["code"], registry=r)
        self.tool_failures = Counter(
            "voxbus_tool_failures_total", "tool calls that failed", ["failure"], registry=r
        )
        self.restarts = Counter(
            "voxbus_worker_restarts_total", "worker restarts, by role", ["role"], registry=r
        )
        self.waiting = Gauge("voxbus_sessions", "sessions each worker role serves now", ["role"], registry=r)
        self.jitter_buffer = Histogram(
            "voxbus_line_jitter_buffer_seconds",
            "per SIP call, the mean time the caller's audio waited in the gateway's jitter buffer",
            buckets=(0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5),
            registry=r,
        )
        self.rtp_lost = Counter(
            "voxbus_rtp_lost_packets_total", "RTP packets from callers that never arrived", registry=r
        )

    def observe(self, event: Event) -> None:
        match event:
            case CallStarted():
                self.calls.inc()
            case CallEnded():
                self.ended.labels(event.hangup_by or "unknown").inc()
                if event.line is not None:
                    self.jitter_buffer.observe(event.line.jitter_buffer_ms / 1000)
                    self.rtp_lost.inc(event.line.lost)
            case TurnMetrics():
                for field, stage in STAGES.items():
                    value = getattr(event, field)
                    if value is not None:
                        self.latency.labels(stage).observe(value / 1000)
            case BargeIn():
                self.barge_ins.labels(event.decision).inc()
            case ErrorEvent():
                self.errors.labels(event.code).inc()
            case ToolFailed():
                self.tool_failures.labels(event.failure).inc()
            case WorkerRestarted():
                self.restarts.labels(event.role).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
