"""The peer run of ``bench/latency.py --peer pipecat``: the same caller lines, as the gateway got
them from a PCMU line, said to a Pipecat pipeline with the same three models (``pipecat_peer.py``,
run in ``.venv-pipecat``), right after voxbus's call, in the same run.

The LLM reaches Pipecat through llama-cpp-python's own OpenAI-compatible server on the same GGUF,
with the LLM worker's thread count and context size (``voxbus.engines.llm_server``): Pipecat has no
in-process llama.cpp service, and this server is what its documentation points local users to.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import soxr
from latency import percentile
from stt_wer import mu_law

from voxbus.config import Settings
from voxbus.engines.llm_server import LlmServer
from voxbus.engines.models import model_path
from voxbus.media.dialogue import Dialogue, DialoguePlayer
from voxbus.media.frames import SAMPLE_RATE

ROOT = Path(__file__).resolve().parents[1]
PEER_PYTHON = ROOT / ".venv-pipecat" / "bin" / "python"
PEER_SCRIPT = ROOT / "bench" / "pipecat_peer.py"
PEER_TIMEOUT_S = 1800


def pipecat_version() -> str:
    found = subprocess.run(
        [str(PEER_PYTHON), "-c", "import importlib.metadata as m; print(m.version('pipecat-ai'))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return found.stdout.strip()


def over_pcmu(pcm: bytes) -> np.ndarray:
    """16 kHz PCM16 as the gateway gets it from a PCMU line: 8 kHz, mu-law, back to 16 kHz."""
    audio = np.frombuffer(pcm, np.int16).astype(np.float32) / 32768
    narrow = np.asarray(soxr.resample(audio, SAMPLE_RATE, 8000), np.float32)
    wide = np.asarray(soxr.resample(mu_law(narrow), 8000, SAMPLE_RATE), np.float32)
    return (np.clip(wide, -1, 1) * 32767).astype(np.int16)


def answered_audio(dialogue: Dialogue, player: DialoguePlayer) -> list[tuple[str, bytes]]:
    """Each line the agent answers, with its audio; a hesitation joined to the line that ends it
    (after that line's gap of silence), backchannels and noises left out: the peer's caller waits
    for each answer to end, so an interruption is only a question there."""
    turns: list[tuple[str, bytes]] = []
    pending: tuple[str, bytes] | None = None
    for line, frames in zip(dialogue.lines, player.rendered, strict=True):
        pcm = b"".join(frames)
        if pending is not None:
            silence = bytes(2 * int(line.gap_s * SAMPLE_RATE))
            pcm, text = pending[1] + silence + pcm, f"{pending[0]} {line.text}"
            pending = None
        else:
            text = line.text
        if line.role == "hesitation":
            pending = (text, pcm)
        elif line.role in ("question", "interrupt"):
            turns.append((text, pcm))
    return turns


def pipecat_run(
    settings: Settings, dialogue: Dialogue, player: DialoguePlayer, out: Path, turn_end: str = "pipecat"
) -> dict[str, Any]:
    """Say the dialogue's answered lines to the Pipecat pipeline; its rows and medians.
    ``turn_end``: 'pipecat' (its default, Smart Turn) or 'pipecat-vad' (a speech timeout)."""
    rule = "smart-turn" if turn_end == "pipecat" else "speech-timeout"
    if not PEER_PYTHON.exists():
        raise SystemExit(f"--peer pipecat: {PEER_PYTHON} missing; run `make pipecat-venv` first")
    with tempfile.TemporaryDirectory(prefix="voxbus-peer-") as scratch:
        work = Path(scratch)
        lines = []
        for i, (text, pcm) in enumerate(answered_audio(dialogue, player)):
            path = work / f"line-{i}.npy"
            np.save(path, over_pcmu(pcm))
            lines.append({"text": text, "audio": str(path)})
        server = LlmServer(model_path(settings, "llm"), out / "pipecat-llm-server.log",
                           threads=settings.llm.n_threads, n_ctx=settings.llm.n_ctx)  # fmt: skip
        try:
            server.wait_ready()
            manifest = {
                "lines": lines,
                "models": {"stt": str(model_path(settings, "stt")), "tts": str(model_path(settings, "tts"))},
                "llm_url": server.url,
                "system_prompt": settings.agent.system_prompt,
                "greeting": settings.agent.greeting,
                "max_tokens": settings.agent.max_tokens,
                "temperature": settings.agent.temperature,
                "turn_end": rule,
            }
            (work / "manifest.json").write_text(json.dumps(manifest))
            env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
            command = [str(p) for p in (PEER_PYTHON, PEER_SCRIPT, work / "manifest.json", work / "rows.json")]
            with (out / f"{turn_end}-peer.log").open("wb") as log:
                subprocess.run(command, env=env, stderr=log, check=True, timeout=PEER_TIMEOUT_S)
            rows = json.loads((work / "rows.json").read_text())
        finally:
            server.stop()
    perceived = [r["perceived_ms"] for r in rows if r["perceived_ms"] is not None]
    return {
        "peer": f"pipecat-ai {pipecat_version()}",
        "turn_end": rule,
        "turns": rows,
        "perceived_p50_ms": percentile(perceived, 50),
        "perceived_p95_ms": percentile(perceived, 95),
        "answered": f"{len(perceived)}/{len(rows)}",
    }
