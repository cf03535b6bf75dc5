"""The fast path of a barge-in, offline: over the held agent, whisper hears the caller's first
``stt.head_ms`` of speech, and a backchannel there resumes the agent before the caller has finished
it. How long must that head be, and what must whisper be primed with, for backchannels to resume
at once and interruptions never to?

The phrases, voices, line and echo are ``barge_words.py``'s (PCMU, the agent's answer coming back
20 dB down, the STT worker's echo gate applied). Each clip goes through the STT worker's own VAD
(Silero and the speech gate at the shipped settings) to find where speech starts, and the head is
cut as the STT worker cuts it: from ``stt.pre_roll_ms`` before that onset to ``head_ms`` after it.
Whisper (the default profile's, greedy) hears each head with each priming; the call actor's rule
(``head_resumes``) then says whether the agent would resume on it.

Figures per priming and head length: backchannels resumed on their head (the sooner the better:
each one not resumed holds the agent until the caller's pause) and interruptions resumed on theirs
(each one plays the agent over the caller until the whole words stop it, late). Writes
``barge_heads.json`` and ``barge_heads.png``.

    python bench/barge_heads.py --out bench/results
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from barge_words import PROMPTS, Echo, phrase_clips  # noqa: E402
from report import pyplot, write_json  # noqa: E402

from voxbus.actors.turns import head_resumes  # noqa: E402
from voxbus.config import load_settings  # noqa: E402
from voxbus.engines.models import model_path  # noqa: E402
from voxbus.engines.stt import WhisperEngine  # noqa: E402
from voxbus.media.frames import SAMPLE_RATE  # noqa: E402
from voxbus.media.vad import WINDOW, SileroStream, SpeechGate  # noqa: E402

HEADS_MS = [160, 200, 240]
# the prompt before stt.over_agent_cues, the judge's words (as for whole words), its cut-in cues alone
PRIMINGS = ["fillers", "lexicon", "stops"]


def onset_ms(audio: np.ndarray) -> int | None:
    """Where the STT worker's VAD says speech starts in ``audio`` (None: it hears none)."""
    settings = load_settings(profile="default")
    stt, turns = settings.stt, settings.turn
    vad = SileroStream()
    thresholds = (stt.vad_start_threshold, stt.vad_end_threshold)
    gate = SpeechGate(*thresholds, stt.min_speech_ms, turns.pause_ms, turns.unfinished_wait_ms)
    for i in range(0, len(audio) - WINDOW + 1, WINDOW):
        for prob in vad.push(audio[i : i + WINDOW]):
            change = gate.push(prob)
            if change is not None and change.kind == "start":
                return change.at_ms
    return None


def run(heads_ms: list[int], primings: list[str], draws: int) -> dict[str, Any]:
    settings = load_settings(profile="default")
    lexicon = settings.turn.lexicon("en")
    clips = [(kind, text, voice, soft, audio, onset_ms(audio)) for kind, text, voice, soft, audio in
             phrase_clips(["gate"], Echo(), draws)["gate"]]  # fmt: skip
    rows: list[dict[str, Any]] = []
    for name in primings:
        stt = settings.stt.model_copy(update={"prompt": PROMPTS[name]})
        engine = WhisperEngine(model_path(settings, "stt"), stt)
        engine.warm()
        for kind, text, voice, soft, audio, onset in clips:
            for head_ms in heads_ms:
                if onset is None:
                    heard, resumes, compute = "", False, 0.0  # no speech: nothing held, nothing heard
                else:
                    start = max(0, onset - settings.stt.pre_roll_ms) * SAMPLE_RATE // 1000
                    head = audio[start : (onset + head_ms) * SAMPLE_RATE // 1000]
                    began = time.perf_counter()
                    heard = engine.transcribe(head, "en").text
                    compute = time.perf_counter() - began
                    resumes = head_resumes(heard, lexicon)
                rows.append({"priming": name, "head_ms": head_ms, "kind": kind, "text": text, "voice": voice,
                             "soft": soft, "onset_ms": onset, "heard": heard, "resumes": resumes,
                             "compute_s": round(compute, 3)})  # fmt: skip
                print(f"{name:8} {head_ms} {kind:12} {'soft' if soft else 'loud'} {voice:9} "
                      f"{'RESUMES' if resumes else 'waits  '} {text!r} -> {heard!r}", flush=True)  # fmt: skip
    return {"rows": rows, "summary": summarise(rows)}


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for name, head_ms in dict.fromkeys((r["priming"], r["head_ms"]) for r in rows):
        mine = [r for r in rows if (r["priming"], r["head_ms"]) == (name, head_ms)]

        def resumed(kind: str, rows: list[dict[str, Any]] = mine) -> tuple[int, int]:
            of_kind = [r for r in rows if r["kind"] == kind]
            return sum(r["resumes"] for r in of_kind), len(of_kind)

        (others, n_others), (interruptions, n_interruptions) = resumed("other"), resumed("interruption")
        out.append({
            "priming": name, "head_ms": head_ms,
            "backchannels_resumed": others, "backchannels": n_others,
            "interruptions_resumed": interruptions, "interruptions": n_interruptions,
            "noises_resumed": resumed("noise")[0], "noises": resumed("noise")[1],
            "compute_s_median": statistics.median(r["compute_s"] for r in mine if r["onset_ms"] is not None),
        })  # fmt: skip
    return out


def plot(summary: list[dict[str, Any]], path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for name, style in zip(dict.fromkeys(s["priming"] for s in summary), ("--", "-", ":"), strict=False):
        mine = [s for s in summary if s["priming"] == name]
        xs = [s["head_ms"] for s in mine]
        ax.plot(xs, [100 * s["backchannels_resumed"] / s["backchannels"] for s in mine], style, marker="o",
                color="#3b6fd4", label=f"backchannels resumed ({name})")  # fmt: skip
        ax.plot(xs, [100 * s["interruptions_resumed"] / s["interruptions"] for s in mine], style, marker="s",
                color="#c0392b", label=f"interruptions resumed ({name})")  # fmt: skip
    ax.set_xlabel("head heard (ms of speech after the onset)")
    ax.set_ylabel("% of phrases")
    ax.set_ylim(0, 105)
    ax.set_title("Fast path over the agent (PCMU, -20 dB echo, espeak-ng callers)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--name", default="barge_heads", help="the result files' name")
    parser.add_argument("--heads", default=",".join(map(str, HEADS_MS)), help="head lengths to try, ms")
    parser.add_argument("--draws", type=int, default=3, help="draws of the agent's answer under the phrases")
    parser.add_argument("--primings", default=",".join(PRIMINGS), help=f"of {list(PROMPTS)}")
    args = parser.parse_args()
    if shutil.which("espeak-ng") is None:
        print("bench/barge_heads.py: espeak-ng is missing (make sip-peers installs it)", file=sys.stderr)
        return 2
    from echo import pjmedia_ready

    endpoint = pjmedia_ready()  # the echo gate's clips are made as barge_words.py makes them
    results = run([int(h) for h in args.heads.split(",")], args.primings.split(","), args.draws)
    results["draws"] = args.draws
    endpoint.libDestroy()
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / f"{args.name}.json", results)
    plot(results["summary"], args.out / f"{args.name}.png")
    for s in results["summary"]:
        print(s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
