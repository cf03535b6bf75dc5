"""The peer in ``bench/latency.py --peer pipecat``: a Pipecat pipeline with voxbus's three models,
hearing the same caller lines, timed the same way.

Run by ``bench/latency.py`` in its own virtual environment (``make pipecat-venv``: pipecat-ai with
its whisper, piper and silero extras; Pipecat pins versions of packages voxbus also uses), so this
file imports nothing of voxbus. It reads a manifest (the lines' audio as the gateway got it from a
PCMU line, 16 kHz PCM16; the models; the agent's prompt; the URL of llama-cpp-python's
OpenAI-compatible server on the same GGUF) and writes one row per line.

The pipeline is Pipecat 1.14's own voice agent (``examples/getting-started/06a-voice-agent-local.py``)
with local engines (turn_end 'smart-turn'; 'speech-timeout' ends a turn 0.2 s after the VAD's stop
instead, its quickest setting): its transport input -> ``WhisperSTTService`` (faster-whisper, the same
tiny.en files, int8 on the CPU) -> the user aggregator with ``SileroVADAnalyzer`` and Pipecat's
default turn stop (Smart Turn v3, the model its wheel ships) -> ``OpenAILLMService`` ->
``PiperTTSService`` (the same voice file) -> its transport output. The transport is a sound card
made of two clocks: the caller's lines, with silence between them, pushed in 20 ms frames in real
time; the agent's audio written in real time, each 20 ms chunk timed as it starts to play. There is
no SIP leg: perceived latency here is first loud agent audio played - the caller's last frame pushed,
which voxbus's figure measures at the far end of a SIP call.

    .venv-pipecat/bin/python bench/pipecat_peer.py manifest.json rows.json
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    OutputAudioRawFrame,
    StartFrame,
    TranscriptionFrame,
    TTSSpeakFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.services.piper.tts import PiperTTSService
from pipecat.services.whisper.stt import WhisperSTTService
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import BaseTransport, TransportParams
from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy
from pipecat.turns.user_turn_strategies import UserTurnStrategies
from pipecat.workers.runner import WorkerRunner

RATE = 16_000
FRAME_S = 0.02
FRAME_SAMPLES = int(RATE * FRAME_S)
HEARD_LEVEL = 500  # int16 peak that counts as agent audio (voxbus.media.frames.HEARD_LEVEL)
ANSWER_OVER_S = 1.5  # this long without agent audio after it began: the answer is over
ANSWER_TIMEOUT_S = 40.0
QUICK_TIMEOUT_S = 0.2


class Ear:
    """When agent audio was played: the start time of every loud 20 ms of it."""

    def __init__(self) -> None:
        self.loud: list[float] = []

    def heard(self, pcm: bytes, started: float) -> None:
        samples = np.frombuffer(pcm, np.int16)
        for i in range(0, len(samples), FRAME_SAMPLES):
            chunk = samples[i : i + FRAME_SAMPLES]
            if len(chunk) and int(np.abs(chunk.astype(np.int32)).max()) > HEARD_LEVEL:
                self.loud.append(started + i / RATE)

    def first_after(self, t: float) -> float | None:
        return next((x for x in self.loud if x >= t), None)

    def quiet_since(self, t: float, now: float) -> bool:
        """Agent audio began after ``t`` and has been silent for ANSWER_OVER_S."""
        after = [x for x in self.loud if x >= t]
        return bool(after) and now - after[-1] > ANSWER_OVER_S


class CallerInput(BaseInputTransport):
    """The caller's side of the sound card: queued lines, else silence, every 20 ms."""

    def __init__(self, params: TransportParams) -> None:
        super().__init__(params)
        self.queue: list[bytes] = []  # 20 ms frames still to say
        self.line_ended: asyncio.Future[float] | None = None
        self.clock: asyncio.Task[None] | None = None

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)
        self.clock = asyncio.create_task(self._tick())

    async def cleanup(self) -> None:
        if self.clock is not None:
            self.clock.cancel()
        await super().cleanup()

    def say(self, pcm: bytes) -> asyncio.Future[float]:
        """Queue a line; the future gets the time its last frame was pushed."""
        pcm += bytes(-len(pcm) % (2 * FRAME_SAMPLES))
        self.queue = [pcm[i : i + 2 * FRAME_SAMPLES] for i in range(0, len(pcm), 2 * FRAME_SAMPLES)]
        self.line_ended = asyncio.get_running_loop().create_future()
        return self.line_ended

    async def _tick(self) -> None:
        silence = bytes(2 * FRAME_SAMPLES)
        start, n = time.monotonic(), 0
        while True:
            n += 1
            await asyncio.sleep(max(0.0, start + n * FRAME_S - time.monotonic()))
            pcm = self.queue.pop(0) if self.queue else silence
            await self.push_audio_frame(InputAudioRawFrame(audio=pcm, sample_rate=RATE, num_channels=1))
            if not self.queue and self.line_ended is not None and not self.line_ended.done():
                self.line_ended.set_result(time.monotonic())


class AgentOutput(BaseOutputTransport):
    """The agent's side: audio written at the pace it plays, each chunk timed as it starts."""

    def __init__(self, params: TransportParams, ear: Ear) -> None:
        super().__init__(params)
        self.ear = ear
        self.playing_until = 0.0

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        now = time.monotonic()
        begins = max(now, self.playing_until)
        self.ear.heard(frame.audio, begins)
        self.playing_until = begins + len(frame.audio) / 2 / RATE
        await asyncio.sleep(max(0.0, self.playing_until - time.monotonic() - FRAME_S))
        return True


class SoundCard(BaseTransport):
    def __init__(self, ear: Ear) -> None:
        super().__init__()
        params = TransportParams(
            audio_in_enabled=True,
            audio_in_sample_rate=RATE,
            audio_out_enabled=True,
            audio_out_sample_rate=RATE,
        )
        self._input, self._output = CallerInput(params), AgentOutput(params, ear)

    def input(self) -> CallerInput:
        return self._input

    def output(self) -> AgentOutput:
        return self._output


class Transcripts(FrameProcessor):
    """Keeps what Pipecat's whisper heard, and passes every frame on."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[tuple[float, str]] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TranscriptionFrame):
            self.texts.append((time.monotonic(), frame.text))
        await self.push_frame(frame, direction)


async def wait_answer(ear: Ear, since: float) -> None:
    deadline = since + ANSWER_TIMEOUT_S
    while time.monotonic() < deadline and not ear.quiet_since(since, time.monotonic()):
        await asyncio.sleep(0.05)


async def converse(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    ear, heard = Ear(), Transcripts()
    card = SoundCard(ear)
    models = manifest["models"]
    stt = WhisperSTTService(
        device="cpu", compute_type="int8", settings=WhisperSTTService.Settings(model=models["stt"])
    )
    voice = Path(models["tts"])
    tts = PiperTTSService(voice_id=voice.stem, download_dir=voice.parent)
    llm = OpenAILLMService(
        api_key="none",
        base_url=manifest["llm_url"],
        settings=OpenAILLMService.Settings(
            model="local",
            system_instruction=manifest["system_prompt"],
            temperature=manifest["temperature"],
            max_tokens=manifest["max_tokens"],
        ),
    )
    context = LLMContext(messages=[{"role": "assistant", "content": manifest["greeting"]}])
    user_params = LLMUserAggregatorParams(vad_analyzer=SileroVADAnalyzer())
    if manifest["turn_end"] == "speech-timeout":  # its quickest: 0.2 s after the VAD's own 0.2 s stop
        stop = SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=QUICK_TIMEOUT_S)
        user_params.user_turn_strategies = UserTurnStrategies(stop=[stop])
    user, assistant = LLMContextAggregatorPair(context, user_params=user_params)
    pipeline = Pipeline([card.input(), stt, heard, user, llm, tts, card.output(), assistant])
    worker = PipelineWorker(pipeline, params=PipelineParams(enable_metrics=True))
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    running = asyncio.create_task(runner.run())
    rows = []
    try:
        await asyncio.sleep(2.0)  # the pipeline up; then the greeting, as voxbus's agent says it
        greeted = time.monotonic()
        await worker.queue_frames([TTSSpeakFrame(manifest["greeting"])])
        await wait_answer(ear, greeted)
        for line in manifest["lines"]:
            pcm = np.load(line["audio"]).astype(np.int16).tobytes()
            ended = await card.input().say(pcm)
            await wait_answer(ear, ended)
            first = ear.first_after(ended)
            said = [text for t, text in heard.texts if t >= ended - len(pcm) / 2 / RATE]
            rows.append(
                {
                    "text": line["text"],
                    "heard": " ".join(said),
                    "perceived_ms": round((first - ended) * 1000, 1) if first is not None else None,
                }
            )
            row = rows[-1]
            print(f"  pipecat: {row['perceived_ms']} ms, heard {row['heard'][:60]!r}", flush=True)
            await asyncio.sleep(0.5)
    finally:
        await worker.cancel()
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    return rows


def main() -> int:
    manifest = json.loads(Path(sys.argv[1]).read_text())
    rows = asyncio.run(converse(manifest))
    Path(sys.argv[2]).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
