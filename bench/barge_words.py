"""How whisper hears the short things a caller says over the agent, and what the call actor makes
of them: does "Stop." interrupt, does "Uh-huh." let the agent go on?

The barge-in judge decides on whisper's words. Over a phone line, a one-word "Stop." said over the
agent's echo is easily heard as "Uh." (a backchannel: the agent goes on) or "W-" (an aside). This
benchmark isolates that step from the rest of the call: each phrase is spoken by voices other than
the agent's (espeak-ng variants), sent through a PCMU line (8 kHz mu-law), with the agent's own
answer (piper) coming back underneath at -20 dB and 60 ms late, the STT worker's echo gate applied
frame by frame, and transcribed by the default profile's whisper with each prompt and beam size
under test. Each transcript is then judged by the call actor's own rule (``judge_barge_in``, the
default turn settings). Nothing here is wall-clock dependent but the compute time reported. Piper
samples its voice's noise, so the answer underneath differs from one synthesis to the next, and
what whisper hears over it with it: each phrase is heard over ``--draws`` seeded syntheses (3:
90 interruptions, 90 backchannels and 90 noises a variant), the same in every run.

Line noises (a cough, a click, a crackle, a hum, as ``turn_taking.py`` makes them) are judged too:
whisper writes words for some of them ("I agree on that." for a hum) unless its own no-speech
estimate is heeded. Each row keeps that estimate, and the summary reckons every variant again with
words over the agent dropped above each threshold of :data:`NO_SPEECH_LIMITS`.

Figures: interruptions caught (target: all), others let through (target: all) and noises that did
not interrupt (target: all), per variant and no-speech limit. Writes ``barge_words.json`` and
``barge_words.png``.

The echo gate's limit is compared by ``--lines`` (the shipped gate at the echo's measured delay and
loss, the same delay with the fixed -16 dB, the loudest frame of the window) on lines whose echo
comes back ``--echo-db`` under the agent, ``--echo-delay-ms`` late.

    python bench/barge_words.py --out bench/results
    python bench/barge_words.py --lines gate,delay-gate,window-gate --echo-db -35 --name barge_words_echo35
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import pyplot, write_json  # noqa: E402
from stt_wer import line, speak  # noqa: E402
from turn_taking import NOISES, line_noise  # noqa: E402

from voxbus.actors.stt_turn import echo_floor, is_echo  # noqa: E402
from voxbus.actors.turns import judge_barge_in  # noqa: E402
from voxbus.config import load_settings  # noqa: E402
from voxbus.engines.models import model_path  # noqa: E402
from voxbus.engines.stt import WhisperEngine  # noqa: E402
from voxbus.engines.tts import PiperEngine  # noqa: E402
from voxbus.lexicons import ENGLISH  # noqa: E402
from voxbus.media.echo_path import FarEndLevel  # noqa: E402
from voxbus.media.frames import FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE, to_float, to_pcm16  # noqa: E402
from voxbus.schemas.messages import AudioFrame  # noqa: E402
from voxbus.sip.echo import make_canceller  # noqa: E402

INTERRUPTIONS = [
    "Stop.", "Wait.", "Hold on.", "No, wait.", "Sorry, stop.", "Hang on.", "Excuse me.", "Wait, wait.",
    "Stop please, what time do you open?", "Sorry to cut in, how much is it?",
]  # fmt: skip
OTHERS = ["Uh-huh.", "Mm-hmm.", "Yeah.", "Right.", "Okay.", "I see.", "Got it.", "Sure.", "Yes.", "Oh, nice."]
VOICES = ["en-us+f2", "en-gb+m3", "en-us"]
NOISE_COUNT = 30  # NOISES in turn, each with its own seed
# words over the agent are dropped when whisper's no-speech estimate is above this (None: only its
# own 0.8, as voxbus.engines.stt always does)
NO_SPEECH_LIMITS: list[float | None] = [None, 0.6, 0.4, 0.3, 0.2]
CHOSEN_LIMIT = 0.2  # drawn beside the plain variants (config.DOUBTED_OVER_CANCELLED)
AGENT_SAYS = (
    "The history of Rome begins with a small settlement on the Tiber river, which grew over the "
    "centuries into a republic and then an empire that ruled the whole Mediterranean."
)
ECHO_DB = -20.0  # as the call benchmarks' caller phone returns it
ECHO_DELAY_S = 0.06
# the caller speaks this far into the answer (in a call the canceller and the echo's delay have had
# every earlier answer to converge on; here they have these seconds)
ONSET_S = 4.0
SOFT_GAIN = 0.25  # -12 dB: every other phrase starts quietly
# what whisper is primed with; the first is the shipped default (stt.prompt)
PROMPTS = {
    "fillers": "Uh, hmm, um... so, uh, well, um.",
    "cues": "Uh-huh. Stop. Mm-hmm, okay. Wait, hold on. Um, yeah.",
    "none": "",
    # the judge's own cue words, backchannels first (as many as interruptions): whisper reads both
    "both": "Mm-hmm, yeah. Okay, right. Uh-huh. Wait, hold on. Stop. Excuse me.",
    "lexicon": ENGLISH.cue_words(),  # the barge-in judge's own words (stt.over_agent_cues)
    "stops": ENGLISH.cue_words(backchannels=False),  # its cut-in cues alone (for the head)
}
# what reaches whisper: "gate" the STT worker's echo gate (frames no louder than the echo expected
# in them, the agent's level at the echo's measured delay plus the line's measured echo loss, plus
# 6 dB, are zeroed: the shipped setting), "delay-gate" the gate against the agent's level at that
# delay less 16 dB (the loss not used), "window-gate" against the loudest agent frame of the whole
# echo window less 16 dB (before the delay was measured), "raw" the line as it comes, "aec" pjmedia's
# Speex echo canceller, "aec+gate" the canceller then the gate
TREATMENTS = ["gate", "delay-gate", "window-gate", "raw", "aec", "aec+gate"]
# (prompt, beam size, treatment): the shipped settings first, then one change at a time; beam 0
# is the shipped search (short phrases, as all of these are, with stt.short_reply_beam_size)
VARIANTS = [
    ("fillers", 0, "gate"), ("fillers", 1, "gate"), ("fillers", 0, "delay-gate"),
    ("fillers", 0, "window-gate"), ("fillers", 0, "raw"), ("fillers", 0, "aec"),
    ("cues", 0, "gate"), ("cues", 0, "raw"), ("cues", 0, "aec"), ("none", 0, "gate"), ("both", 0, "gate"),
    ("lexicon", 0, "gate"),
]  # fmt: skip


def agent_audio(draw: int = 0) -> np.ndarray:
    """The agent's answer, as piper says it in one ``draw``: piper samples its voice's noise, so
    each process would say it a little differently (and whisper hear the phrases over it
    differently: 27 of 90 transcripts changed between two runs); seeded, each draw is the same
    in every run."""
    import onnxruntime

    onnxruntime.set_seed(draw)  # before the session: its random kernels take their seed then
    settings = load_settings(profile="default")
    engine = PiperEngine(model_path(settings, "tts"), settings.tts)
    return to_float(b"".join(engine.frames(AGENT_SAYS)))


class Echo(NamedTuple):
    """What the caller's line sends back of the agent: this much later, at this level."""

    delay_s: float = ECHO_DELAY_S
    db: float = ECHO_DB


def over_the_agent(
    phrase: np.ndarray, agent: np.ndarray, gain: float, seed: int, treat: str, echo: Echo
) -> np.ndarray:
    """The caller's phrase from a PCMU line with the agent's echo under it, treated as ``treat``
    says (:data:`TREATMENTS`), cut as the STT worker hands a segment to whisper (the phrase and a
    quarter second either side)."""
    caller = line(phrase * gain, "PCMU", noisy=False, seed=seed)  # 0.25 s of silence each side
    start = int(ONSET_S * SAMPLE_RATE) - SAMPLE_RATE // 4
    delay = int(echo.delay_s * SAMPLE_RATE)
    mixed = np.zeros(start + len(caller), np.float32)
    returned = line(agent[: len(mixed) - delay] * 10 ** (echo.db / 20), "PCMU", noisy=False, seed=seed)
    mixed[delay:] += returned[SAMPLE_RATE // 4 :][: len(mixed) - delay]
    mixed[start:] += caller
    settings = load_settings(profile="default")
    canceller = make_canceller("speex", settings.sip.echo_tail_ms) if "aec" in treat else None
    window = (2 * settings.sip.jitter_max_ms + 200) // FRAME_MS  # as the gateway's
    far = FarEndLevel(window, measure_delay=treat != "window-gate")
    for i in range(0, len(mixed) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        played = to_pcm16(agent[i : i + FRAME_SAMPLES])
        far.played(played)
        frame = mixed[i : i + FRAME_SAMPLES]
        far.heard(to_pcm16(frame))  # the line before any canceller, as the gateway measures it
        if canceller is not None:
            canceller.played(played)
            frame[:] = to_float(canceller.cancel(to_pcm16(frame)))
        if "gate" not in treat:
            continue
        # as the gateway tags the frame and the STT worker gates it ("delay-gate": the line's
        # measured echo loss ignored, the agent's level at the delay less turn.echo_gate_db decides)
        far_db, echo_db = far.levels()
        echo_db = echo_db if treat in ("gate", "aec+gate") else None
        tagged = AudioFrame(call_id="bench", seq=0, pcm=to_pcm16(frame), far_db=far_db, echo_db=echo_db)
        floor_db = echo_floor(tagged, settings.turn)
        if floor_db is not None and is_echo(frame, floor_db):
            frame[:] = 0.0
    if canceller is not None:
        canceller.close()
    return mixed[start:]


Clip = tuple[str, str, str, bool, np.ndarray]  # kind, text, voice, soft, what whisper hears


def phrase_clips(treatments: list[str], echo: Echo, draws: int = 1) -> dict[str, list[Clip]]:
    """Every phrase and noise over the agent's echo (``draws`` times, over each draw of the agent's
    answer), as each treatment hands it to whisper."""
    agents = [agent_audio(draw) for draw in range(draws)]
    spoken = [
        (kind, text, voice, n % 2 == 1, speak(text, voice), n)
        for v, voice in enumerate(VOICES)
        for kind, phrases in (("interruption", INTERRUPTIONS), ("other", OTHERS))
        for n, text in enumerate(phrases, start=v)
    ]
    spoken += [
        ("noise", NOISES[n % len(NOISES)], "", False, to_float(line_noise(NOISES[n % len(NOISES)], n)), n)
        for n in range(NOISE_COUNT)
    ]
    return {
        treat: [
            (kind, text, voice, soft, over_the_agent(audio, agent, SOFT_GAIN if soft else 1, n, treat, echo))
            for agent in agents
            for kind, text, voice, soft, audio, n in spoken
        ]
        for treat in TREATMENTS
        if treat in treatments
    }


def run(
    treatments: list[str], echo: Echo, prompts: list[str] | None = None, draws: int = 1
) -> dict[str, Any]:
    settings = load_settings(profile="default")
    turns, lexicon = settings.turn, settings.turn.lexicon("en")
    clips = phrase_clips(treatments, echo, draws)
    rows: list[dict[str, Any]] = []
    chosen = [v for v in VARIANTS if v[2] in treatments and (prompts is None or v[0] in prompts)]
    for name, beam, treat in chosen:
        searched = {"beam_size": beam, "short_reply_s": 0.0} if beam else {}  # 0: as shipped
        stt = settings.stt.model_copy(update={"prompt": PROMPTS[name], **searched})
        engine = WhisperEngine(model_path(settings, "stt"), stt)
        engine.warm()
        for kind, text, voice, soft, audio in clips[treat]:
            started = time.perf_counter()
            heard = engine.transcribe(audio, "en")
            compute = time.perf_counter() - started
            interrupts = interrupts_at(heard.text, heard.no_speech, None, turns, lexicon)
            right = interrupts == (kind == "interruption")
            rows.append(
                {"prompt": name, "beam": beam, "line": treat, "kind": kind, "text": text,
                 "voice": voice, "soft": soft, "heard": heard.text,
                 "no_speech": round(heard.no_speech, 3), "right": right,
                 "compute_s": round(compute, 3)}
            )  # fmt: skip
            print(f"{name:8} beam {beam} {treat:5} {kind:12} {'soft' if soft else 'loud'} {voice:9} "
                  f"{'ok ' if right else 'BAD'} ns={heard.no_speech:.2f} {text!r} -> {heard.text!r}",
                  flush=True)  # fmt: skip
    return {"rows": rows, "summary": summarise(rows, turns, lexicon)}


def interrupts_at(text: str, no_speech: float, limit: float | None, turns: Any, lexicon: Any) -> bool:
    """The call actor's decision on words heard over the agent, with those that whisper itself
    doubts are speech (no-speech estimate above ``limit``) dropped first."""
    if limit is not None and no_speech > limit:
        text = ""
    why_not = judge_barge_in(
        text, AGENT_SAYS, lexicon, turns.barge_in_min_words, turns.echo_overlap, turns.barge_in_aside_words
    )
    return why_not is None


def summarise(rows: list[dict[str, Any]], turns: Any, lexicon: Any) -> list[dict[str, Any]]:
    out = []
    for key in dict.fromkeys((r["prompt"], r["beam"], r["line"]) for r in rows):
        mine = [r for r in rows if (r["prompt"], r["beam"], r["line"]) == key]
        for limit in NO_SPEECH_LIMITS:
            judged = [
                (r["kind"], interrupts_at(r["heard"], r["no_speech"], limit, turns, lexicon)) for r in mine
            ]
            out.append({
                "prompt": key[0], "beam": key[1], "line": key[2], "no_speech_limit": limit,
                "interruptions": sum(k == "interruption" for k, _ in judged),
                "interruptions_caught": sum(k == "interruption" and i for k, i in judged),
                "others": sum(k == "other" for k, _ in judged),
                "others_let_through": sum(k == "other" and not i for k, i in judged),
                "noises": sum(k == "noise" for k, _ in judged),
                "noises_let_through": sum(k == "noise" and not i for k, i in judged),
                "compute_s_median": statistics.median(r["compute_s"] for r in mine),
            })  # fmt: skip
    return out


def plot(summary: list[dict[str, Any]], path: Path) -> None:
    plt = pyplot()

    summary = [s for s in summary if s["no_speech_limit"] in (None, CHOSEN_LIMIT)]
    labels = [
        f"{s['prompt']}{' greedy' if s['beam'] == 1 else ''}\n{s['line']}\n"
        + (f"ns<={s['no_speech_limit']}" if s["no_speech_limit"] else "")
        for s in summary
    ]
    x = np.arange(len(summary))
    fig, ax = plt.subplots(figsize=(max(6, 1.0 * len(summary)), 4.2))
    ax.bar(x - 0.27, [100 * s["interruptions_caught"] / s["interruptions"] for s in summary], 0.27,
           label="interruptions caught", color="#c0392b")  # fmt: skip
    ax.bar(x, [100 * s["others_let_through"] / s["others"] for s in summary], 0.27,
           label="backchannels let through", color="#3b6fd4")  # fmt: skip
    ax.bar(x + 0.27, [100 * s["noises_let_through"] / s["noises"] for s in summary], 0.27,
           label="noises let through", color="#7f8c8d")  # fmt: skip
    ax.set_xticks(x, labels)
    ax.set_ylim(0, 105)
    ax.set_ylabel("% judged right")
    ax.set_title("Words over the agent (PCMU, -20 dB echo, espeak-ng callers): judged right")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--name", default="barge_words", help="the result files' name")
    parser.add_argument("--lines", default=",".join(TREATMENTS), help=f"what whisper hears, of {TREATMENTS}")
    parser.add_argument("--prompts", default="", help=f"whisper's primings to compare (of {list(PROMPTS)})")
    parser.add_argument("--draws", type=int, default=3, help="draws of the agent's answer under the phrases")
    parser.add_argument("--echo-delay-ms", type=int, default=int(ECHO_DELAY_S * 1000))
    parser.add_argument("--echo-db", type=float, default=ECHO_DB, help="the echo's level against the agent's")
    args = parser.parse_args()
    if shutil.which("espeak-ng") is None:
        print("bench/barge_words.py: espeak-ng is missing (make sip-peers installs it)", file=sys.stderr)
        return 2
    from echo import pjmedia_ready

    endpoint = pjmedia_ready()  # the echo canceller's pools come from a running pjsua
    prompts = args.prompts.split(",") if args.prompts else None
    results = run(args.lines.split(","), Echo(args.echo_delay_ms / 1000, args.echo_db), prompts, args.draws)
    results["draws"] = args.draws
    results["echo_delay_ms"], results["echo_db"] = args.echo_delay_ms, args.echo_db
    endpoint.libDestroy()
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / f"{args.name}.json", results)
    plot(results["summary"], args.out / f"{args.name}.png")
    for s in results["summary"]:
        print(json.dumps(s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
