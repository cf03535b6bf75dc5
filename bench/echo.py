"""Echo canceller benchmark: what pjmedia's cancellers (as the gateway runs them) do to an echo,
and to the caller's own voice while both speak.

Speech synthesised with piper plays as the agent; the caller's line returns it at -12 dB after a
delay, and during the second half the caller also speaks. Per algorithm and delay: echo left in the
frames where only the agent speaks (ERLE: echo in minus echo out, dB), and how much of the
caller's own voice survives while both speak (dB; 0 is all of it). Writes ``echo.json`` and
``echo.png``.

    python bench/echo.py --out bench/results
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from report import pyplot, write_json

from voxbus.config import load_settings
from voxbus.engines.models import model_path
from voxbus.engines.tts import PiperEngine
from voxbus.media.frames import FRAME_SAMPLES

AGENT = (
    "The capital of France is Paris. It lies on the river Seine, and it has been the heart of the "
    "country for many centuries. Many people visit it every year to see its museums and its parks."
)
CALLER = "Sorry, stop. What is the capital of Italy? And how many people live there today?"
ECHO_GAIN = 0.25  # -12 dB


def db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-9))


def speech(engine: PiperEngine, text: str, seconds: float) -> np.ndarray:
    pcm = np.frombuffer(b"".join(engine.frames(text)), np.int16).astype(np.float32)
    out = np.zeros(int(seconds * 16000), np.float32)
    out[: min(len(pcm), len(out))] = pcm[: len(out)]
    return out


def pjmedia_ready() -> Any:
    """A running pjsua without sound devices or threads: pjmedia's cancellers take their pools
    from it. Call ``libDestroy()`` on what it returns when done."""
    import pjsua2 as pj

    endpoint = pj.Endpoint()
    endpoint.libCreate()
    config = pj.EpConfig()
    config.uaConfig.threadCnt = 0
    config.logConfig.consoleLevel = 0
    config.logConfig.level = 0
    endpoint.libInit(config)
    endpoint.libStart()
    endpoint.audDevManager().setNullDev()
    return endpoint


def run(algorithm: str, far: np.ndarray, voice: np.ndarray, delay_ms: int) -> dict[str, float]:
    from voxbus.sip.echo import make_canceller

    canceller = make_canceller(algorithm, 200)  # type: ignore[arg-type]
    d = delay_ms * 16
    echo = np.zeros_like(far)
    echo[d:] = ECHO_GAIN * far[:-d]
    near = echo + voice
    out = np.zeros_like(near)
    for i in range(0, len(far) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        frame = near[i : i + FRAME_SAMPLES].astype(np.int16).tobytes()
        if canceller is not None:
            canceller.played(far[i : i + FRAME_SAMPLES].astype(np.int16).tobytes())
            frame = canceller.cancel(frame)
        out[i : i + FRAME_SAMPLES] = np.frombuffer(frame, np.int16)
    if canceller is not None:
        canceller.close()
    half = len(far) // 2
    settled = slice(int(3 * 16000), half)  # after 3 s of convergence, the agent alone
    talking = np.abs(voice) > 300
    both = np.zeros_like(talking)
    both[half:] = talking[half:] & (np.abs(far[half:]) > 300)
    voice_out = out[both] - echo[both]  # what remains of the caller's voice, echo aside
    return {
        "erle_db": round(db(echo[settled]) - db(out[settled]), 1),
        "voice_kept_db": round(db(voice_out) - db(voice[both]), 1) if both.any() else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    endpoint = pjmedia_ready()
    settings = load_settings(profile="test")
    engine = PiperEngine(model_path(settings, "tts"), settings.tts)
    far = speech(engine, AGENT + " " + AGENT, 20.0)
    voice = np.zeros_like(far)
    caller = speech(engine, CALLER, 6.0)
    voice[12 * 16000 : 12 * 16000 + len(caller)] = caller
    results = []
    for algorithm in ["off", "speex", "webrtc", "webrtc-aec3"]:
        for delay in (40, 120):
            row = {"algorithm": algorithm, "delay_ms": delay, **run(algorithm, far, voice, delay)}
            print(row, flush=True)
            results.append(row)
    write_json(args.out / "echo.json", {"echo_gain_db": -12, "results": results})
    plot(results, args.out / "echo.png")
    endpoint.libDestroy()
    return 0


def plot(results: list[dict[str, object]], path: Path) -> None:
    plt = pyplot()

    labels = [f"{r['algorithm']}\n{r['delay_ms']} ms" for r in results]
    xs = np.arange(len(results))
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.bar(xs - 0.2, [r["erle_db"] for r in results], 0.4, label="echo removed (dB)")
    ax.bar(
        xs + 0.2,
        [r["voice_kept_db"] or 0 for r in results],
        0.4,
        label="caller's voice kept while both speak (dB)",
    )
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(xs, labels, fontsize=8)
    ax.set_title("pjmedia echo cancellers on a -12 dB echo (bench/echo.py)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    raise SystemExit(main())
