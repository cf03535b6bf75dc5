"""The front door's errors: one clear line, the right exit code, and no traceback."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from nats.aio.msg import Msg

from voxbus.bus import subjects
from voxbus.bus.connection import Bus
from voxbus.bus.embedded import EmbeddedNats, free_port
from voxbus.schemas.events import ErrorEvent, Event
from voxbus.schemas.messages import Heartbeat

from .helpers import until

pytestmark = pytest.mark.integration


def voxbus(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voxbus", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got: {text!r}"
    assert "Traceback" not in text
    return lines[0]


def test_missing_model_override_is_one_line_naming_the_file(test_env: dict[str, str]) -> None:
    done = voxbus("up", env={"VOXBUS_MODELS__LLM": "/nowhere/model.gguf"})
    assert done.returncode == 2
    assert "/nowhere/model.gguf" in one_line(done.stderr)


def test_missing_bundled_model_says_how_to_fix(test_env: dict[str, str], tmp_path: Path) -> None:
    done = voxbus("up", env={"VOXBUS_MODEL_DIR": str(tmp_path / "empty")})
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert str(tmp_path / "empty") in line and "voxbus models fetch" in line


def test_corrupt_model_is_detected(test_env: dict[str, str], tmp_path: Path) -> None:
    models = Path(test_env["VOXBUS_MODEL_DIR"])
    copy = tmp_path / "models"
    for folder in models.iterdir():
        if folder.is_dir() and not folder.name.startswith("."):
            (copy / folder.name).mkdir(parents=True)
            for f in folder.iterdir():
                (copy / folder.name / f.name).symlink_to(f)
    voice = copy / "piper-en_US-joe-medium" / "en_US-joe-medium.onnx"
    voice.unlink()
    voice.write_bytes(b"not a voice")
    done = voxbus("up", env={"VOXBUS_MODEL_DIR": str(copy)})
    assert done.returncode == 2 and "damaged" in one_line(done.stderr)


def test_bad_config_value_is_one_line(test_env: dict[str, str]) -> None:
    done = voxbus("config", env={"VOXBUS_TURN__PAUSE_MS": "soon"})
    assert done.returncode == 2
    assert "turn.pause_ms" in one_line(done.stderr)
    done = voxbus("config", env={"VOXBUS_PROFILE": "huge"})
    assert done.returncode == 2 and "profile" in one_line(done.stderr)


def test_unreachable_nats_is_one_line(test_env: dict[str, str], tmp_path: Path) -> None:
    wav = tmp_path / "x.wav"
    wav.write_bytes(b"RIFF")
    done = voxbus("--nats-url", f"nats://127.0.0.1:{free_port()}", "events")
    assert done.returncode == 2 and "cannot reach NATS" in one_line(done.stderr)
    done = voxbus("--nats-url", f"nats://127.0.0.1:{free_port()}", "talk", str(wav))
    assert done.returncode == 2 and "not a WAV" in one_line(done.stderr)


async def test_worker_waits_for_nats_then_serves(test_env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "voxbus",
        "--nats-url",
        f"nats://127.0.0.1:{port}",
        "worker",
        "tts",
        "--id",
        "tts-w",
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    retries = 0
    while retries < 2:  # it tried, failed, and tried again: still up
        line = await asyncio.wait_for(proc.stderr.readline(), 30)
        assert line, "the worker exited while NATS was unreachable"
        retries += b"cannot reach NATS, retrying" in line
    assert proc.returncode is None, "the worker stays up while NATS is unreachable"
    server = EmbeddedNats(tmp_path / "late-nats", port=port)
    await server.start()
    bus = Bus(server.url, "test")
    await bus.connect(attempts=3)
    try:
        beat: asyncio.Future[Heartbeat] = asyncio.get_running_loop().create_future()

        async def on_beat(hb: Heartbeat, _m: Msg) -> None:
            if not beat.done():
                beat.set_result(hb)

        await bus.subscribe(subjects.health("tts", "tts-w"), Heartbeat, on_beat)
        assert (await asyncio.wait_for(beat, 60)).worker_id == "tts-w"
    finally:
        proc.terminate()
        await proc.wait()
        await bus.close()
        await server.stop()


async def test_worker_with_missing_model_says_so_on_the_bus(test_env: dict[str, str], nats_url: str) -> None:
    bus = Bus(nats_url, "test")
    await bus.connect(attempts=3)
    seen: list[Event] = []

    async def on_error(event: Event, _m: Msg) -> None:
        seen.append(event)

    await bus.subscribe(subjects.system_event("error"), None, on_error)
    # a worker that retried forever would fail the test at voxbus()'s timeout: it must exit
    done = await asyncio.to_thread(
        voxbus, "--nats-url", nats_url, "worker", "llm", env={"VOXBUS_MODELS__LLM": "/nowhere/x.gguf"}
    )
    await until(lambda: any(isinstance(e, ErrorEvent) for e in seen), 10)
    await bus.close()
    assert done.returncode == 2 and "/nowhere/x.gguf" in one_line(done.stderr)
    assert any(isinstance(e, ErrorEvent) and "/nowhere/x.gguf" in e.message for e in seen)
