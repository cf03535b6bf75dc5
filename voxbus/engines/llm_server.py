"""llama-cpp-python's own OpenAI-compatible server, started for a GGUF model on loopback.

What the remote-LLM tests and ``bench/remote_llm.py`` talk to; also a quick way to try
``models.llm_url`` on one machine. It needs the server's extra packages (fastapi,
starlette-context, pyyaml: ``pip install -e '.[dev]'``).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from voxbus.bus.embedded import free_port


class LlmServer:
    def __init__(self, model: Path, log: Path, threads: int = 1, n_ctx: int = 2048) -> None:
        self.port, self.log = free_port(), log
        self.url = f"http://127.0.0.1:{self.port}/v1"
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--n_ctx", str(n_ctx), "--n_threads", str(threads)]
        with log.open("wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)

    def wait_ready(self, within_s: float = 90.0) -> None:
        """Return once the server answers ``GET /models``; raises with its log's tail otherwise."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if httpx.get(f"{self.url}/models", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError(f"the LLM server did not start: {self.log.read_text(errors='replace')[-2000:]}")

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()
