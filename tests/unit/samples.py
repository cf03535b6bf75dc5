"""One valid instance of every bus message and event."""

from __future__ import annotations

from pydantic import BaseModel

from voxbus.schemas import events as ev
from voxbus.schemas import messages as m
from voxbus.schemas.base import Accepted, Rejected

C = "call-1"
SAMPLES: list[BaseModel] = [
    m.AudioFrame(call_id=C, seq=3, pcm=bytes(640), gen=2, last=True),
    m.ChatMessage(role="user", content="hi"),
    m.CallStart(call_id=C, caller="sip:alice@example.org"),
    m.SttSession(call_id=C),
    m.LlmRequest(call_id=C, gen=1, turn=1, messages=[m.ChatMessage(role="user", content="hi")]),
    m.LlmChunk(call_id=C, gen=1, seq=0, text="Hel"),
    m.TtsRequest(call_id=C, gen=1, index=0, text="Hello there."),
    m.Cancel(call_id=C, gen=1, reason="barge-in"),
    m.DialRequest(call_id=C, uri="sip:bob@127.0.0.1:5080"),
    m.CallControl(call_id=C, action="flush", gen=1),
    m.Heartbeat(role="llm", worker_id="llm-1", pid=42, sessions=[C]),
    m.CallState(call_id=C, owner="agent-1", history=[m.ChatMessage(role="user", content="hi")]),
    Accepted(worker_id="llm-1", role="llm"),
    Rejected(worker_id="llm-1", reason="bad message"),
    ev.CallStarted(call_id=C),
    ev.CallResumed(call_id=C, history_len=3),
    ev.CallEnded(call_id=C, duration_s=12.5),
    ev.StateChanged(call_id=C, state="thinking"),
    ev.SpeechStarted(call_id=C, at_ms=100),
    ev.SpeechEnded(call_id=C, at_ms=900, decided_ms=1380, at_ts=1.7e9),
    ev.SpeechPaused(call_id=C, at_ms=700, at_ts=1.7e9),
    ev.SpeechResumed(call_id=C, at_ms=1100),
    ev.SttPartial(call_id=C, text="what is"),
    ev.SttTentative(call_id=C, text="I'd like to book a table for", compute_s=0.3),
    ev.SttFinal(call_id=C, text="what is it", start_ms=0, end_ms=900, compute_s=0.3),
    ev.LlmRequested(call_id=C, gen=1, worker_id="llm-1"),
    ev.LlmFirstToken(call_id=C, gen=1, latency_s=0.05),
    ev.LlmDone(call_id=C, gen=1, text="It is."),
    ev.LlmCancelled(call_id=C, gen=1, reason="barge-in", tokens=3),
    ev.LlmRetried(call_id=C, gen=1, reason="silent", attempt=2, received_chars=4),
    ev.TtsRequested(call_id=C, gen=1, index=0, text="It is."),
    ev.TtsFirstFrame(call_id=C, gen=1, index=0, latency_s=0.08),
    ev.TtsClauseDone(call_id=C, gen=1, index=0, frames=40),
    ev.TtsDone(call_id=C, gen=1, frames=40),
    ev.PlayoutStarted(call_id=C, gen=1, at_ms=2000),
    ev.PlayoutHeld(call_id=C, gen=1, played_ms=400),
    ev.PlayoutResumed(call_id=C, gen=1),
    ev.PlayoutDone(call_id=C, gen=1, played_ms=800),
    ev.BargeIn(call_id=C, gen=1, decision="ignored", reason="backchannel", text="uh-huh", onset_ts=1.7e9),
    ev.TurnMetrics(call_id=C, turn=1, gen=1, user_text="q", agent_text="a", first_audio_ms=900),
    ev.DtmfReceived(call_id=C, digit="5", method="rfc2833"),
    ev.DialResult(call_id=C, uri="sip:bob@127.0.0.1", result="busy", code=486, reason="Busy Here"),
    ev.ToolCalled(call_id=C, gen=2, name="transfer_to_human"),
    ev.TransferResult(call_id=C, target="sip:queue@127.0.0.1", code=200),
    ev.SipRejected(gateway="sip-1", remote="10.0.0.9:5060", code=403, reason="source not allowed"),
    ev.ErrorEvent(code="bad_message", message="not msgpack", subject="voxbus.x"),
    ev.WorkerStarted(role="llm", worker_id="llm-1", pid=42),
    ev.WorkerRestarted(role="llm", worker_id="llm-1", reason="SIGKILL", restarts=1),
    ev.WorkerExited(role="llm", worker_id="llm-1", reason="exited"),
    ev.SupervisorEscalated(supervisor="workers", reason="too many restarts"),
]
