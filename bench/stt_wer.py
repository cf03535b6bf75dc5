"""Word error rate of the STT models on phone-line audio, by language, voice, codec and noise.

Callers' lines rich in names, dates, times, numbers and addresses, and short replies to the
agent's questions ("Friday at 9."), checked in as text below (the audio is made at each run,
deterministically), are spoken by voices other than the agent's
(Debian's espeak-ng variants; with ``--voices flite`` CMU's flite voices, built from recordings of
real speakers), sent through the phone line as a gateway receives it (8 kHz
narrowband G.711 mu-law, PCMU; or 16 kHz for G.722's wideband, approximated by its 7 kHz band;
line noise at 20 dB SNR on every third line) and transcribed by voxbus's own whisper engine with
its production settings (the turn's window, the filler prompt). WER = word-level edit distance
over the reference's words, after lower-casing and dropping punctuation (digits are kept as
written: a model that writes "ten thirty" for "10:30" is wrong by two words, as a booking tool
would find it; "Dr." and "Doctor", "p.m." and "pm" count alike). Each line is heard twice: with
whisper's production prompt alone, and with a clinic agent's ``agent.vocabulary`` added (its staff
and services, as an operator would list them: never the caller's own name or street); with
``--said`` each English line a third time, after the agent's sentence before it as well. Writes
``stt_wer.json`` and ``stt_wer.png`` (``--name``: another name).

    python bench/stt_wer.py --out bench/results            # English and French, every model
    python bench/stt_wer.py --language fr --codec PCMU     # one language, one codec
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import time
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import soxr
from report import pyplot, write_json

from voxbus.config import load_settings
from voxbus.engines.models import model_path
from voxbus.engines.stt import WhisperEngine, beam_for
from voxbus.engines.tts import command_voice_pcm

RATE = 16_000
ENGLISH = [
    "Hi, this is Peter Walsh, I'd like to move my appointment to Friday.",
    "My name is Margaret O'Connor and I have a cleaning on Tuesday at 10:30.",
    "Could you book me in with Doctor Patel next Wednesday afternoon?",
    "The earliest slot you have would be great, I'm free from 9 in the morning.",
    "I live at 42 Baker Street, London, postcode NW1 6XE.",
    "My date of birth is the 3rd of March 1985.",
    "Can I change it to the 14th of December at a quarter past two?",
    "I need to cancel tomorrow's visit, my dog is sick.",
    "Is there anything on Monday between 11 and 1?",
    "Please send the confirmation to my mobile, it ends in 4471.",
    "Yes, Thursday the 12th at 4 pm works for me.",
    "No, not the morning, I work until noon on weekdays.",
    "It's for my son, James Whitaker, he's seven years old.",
    "Do I need to bring anything with me, like my insurance card?",
    "We moved to 17 Elm Avenue, Apartment 3B, in Cambridge.",
    "I was told to come back in six weeks for a check-up.",
    "Is Doctor Nguyen available on the 2nd of January?",
    "Half past eight on Saturday would be perfect, thank you.",
    "My reference number is 5 5 7 2 9.",
    "Could you read that back to me, please?",
    # short replies, as a caller answers a question
    "Friday at 9.",
    "Monday at 10.",
    "Thursday at 4.",
    "Wednesday at noon.",
    "Tuesday at half past 10.",
    "Yes, please.",
    "No, Thursday.",
    "11:30.",
    "The afternoon, please.",
    "That's right.",
]
FRENCH = [
    "Bonjour, c'est Pierre Martin, je voudrais déplacer mon rendez-vous à vendredi.",
    "J'ai un détartrage mardi à dix heures et demie, je ne peux pas venir.",
    "Est-ce que le docteur Dupont est disponible mercredi après-midi ?",
    "Le plus tôt possible serait parfait, je suis libre à partir de neuf heures.",
    "J'habite au douze rue de la République, à Lyon.",
    "Ma date de naissance est le trois mars mille neuf cent quatre-vingt-cinq.",
    "Pouvez-vous le mettre le quatorze décembre à quatorze heures ?",
    "Je dois annuler la visite de demain, mon chien est malade.",
    "Avez-vous quelque chose lundi entre onze heures et midi ?",
    "Oui, jeudi à seize heures, ça me convient très bien.",
    "C'est pour mon fils, Lucas Bernard, il a sept ans.",
    "Dois-je apporter ma carte vitale ?",
]
# what the agent said just before each English line (its question, the slots it offered): with
# ``--said`` each line is also heard after these words, as a call's STT session hears a caller's
# answer (``stt.prompt_agent_words``). Never the caller's own words: the agent did not know them.
AGENT_SAID = [
    "Thank you for calling Bright Smile Dental. How can I help you today?",
    "Of course. May I have your name and the appointment you would like to change?",
    "Which dentist would you like to see, and when?",
    "When would suit you best?",
    "Could you confirm your home address, please?",
    "Thank you. And your date of birth, please?",
    "Your cleaning is on the 10th of December at 9:00 am. Would you like to move it?",
    "Good morning, Bright Smile Dental. How can I help?",
    "I have Tuesday at 9:00 am or Thursday at 3:30 pm. Would either of those work?",
    "Where should we send the confirmation?",
    "I can offer Thursday the 12th at 4 pm or Friday the 13th at 10 am.",
    "Would a morning appointment suit you?",
    "Who is the appointment for?",
    "You are all set for Friday at 2:00 pm. Is there anything else?",
    "Has your address changed since your last visit?",
    "What is the visit for?",
    "Is there a dentist you prefer?",
    "On Saturday I have 8:30 or 11:00. Which would you like?",
    "Do you have your booking reference?",
    "I have noted your mobile number, ending in 4471.",
    "Which day and time would suit you?",
    "I'm sorry, I didn't catch that. Which day would you like?",
    "What time would you like to come in?",
    "When would you like to move it to?",
    "Which day and time would be best for you?",
    "Shall I move it to Friday at 9:00 am?",
    "So that's Tuesday, is that right?",
    "What time on Monday?",
    "Would you prefer the morning or the afternoon?",
    "Your appointment is now on Friday at 3:00 pm. Is that right?",
]
VOCABULARY = {
    "en": ["Doctor Patel", "Doctor Nguyen", "appointment", "check-up", "cleaning", "reschedule"],
    "fr": ["docteur Dupont", "rendez-vous", "détartrage", "carte vitale"],
}
VOICES = {
    "en": ["espeak-ng:en-us", "espeak-ng:en-gb+m3", "espeak-ng:en-us+f2"],
    "fr": ["espeak-ng:fr", "espeak-ng:fr+m3", "espeak-ng:fr+f2"],
}
# CMU's flite voices, each built from recordings of one real speaker (US female, US male, Scottish
# male): nearer a caller than espeak-ng's formants, and still not the agent's piper voice
FLITE_VOICES = ["flite:slt", "flite:rms", "flite:awb"]
MODELS = {"en": ["stt", "stt_multilingual"], "fr": ["stt_multilingual"]}  # tiny.en hears English only


def speak(text: str, voice: str) -> np.ndarray:
    """``voice`` (``espeak-ng:VOICE`` at 165 words a minute, or ``flite:VOICE``; a bare name is
    espeak-ng's), 16 kHz float32."""
    voice = voice if ":" in voice else f"espeak-ng:{voice}"
    pcm, rate = command_voice_pcm(voice, text, 175 / 165 if voice.startswith("espeak-ng:") else 1.0)
    return np.asarray(soxr.resample(pcm.astype(np.float32) / 32768, rate, RATE), dtype=np.float32)


def mu_law(audio: np.ndarray) -> np.ndarray:
    """G.711 mu-law (PCMU) encoded and decoded: the 8-bit companding a phone line applies."""
    mu = 255.0
    clipped = np.clip(audio, -1.0, 1.0)
    encoded = np.sign(clipped) * np.log1p(mu * np.abs(clipped)) / np.log1p(mu)
    quantised = np.round((encoded + 1) / 2 * 255) / 255 * 2 - 1
    return (np.sign(quantised) * np.expm1(np.abs(quantised) * np.log1p(mu)) / mu).astype(np.float32)


def line(audio: np.ndarray, codec: str, noisy: bool, seed: int) -> np.ndarray:
    """The caller's audio as the gateway gets it from the line."""
    if codec == "PCMU":
        narrow = soxr.resample(audio, RATE, 8000)
        out = soxr.resample(mu_law(np.asarray(narrow, np.float32)), 8000, RATE)
    else:  # G.722: wideband, 50-7000 Hz
        out = soxr.resample(soxr.resample(audio, RATE, 14_000), 14_000, RATE)
    out = np.asarray(out, np.float32)
    if noisy:
        rng = np.random.default_rng(seed)
        power = float(np.mean(out**2)) or 1e-6
        out = out + rng.normal(0, np.sqrt(power / 100), len(out)).astype(np.float32)  # 20 dB SNR
    return np.concatenate([np.zeros(RATE // 4, np.float32), out, np.zeros(RATE // 4, np.float32)])


def words(text: str) -> list[str]:
    text = unicodedata.normalize("NFC", text.lower()).replace("’", "'")
    text = re.sub(r"(?<=\d)[:.,](?=\d)", "", text)  # 10:30 and 10.30 alike
    text = re.sub(r"\bdr\b\.?", "doctor", text)  # "Dr. Patel" is "Doctor Patel" to a booking tool
    text = re.sub(r"\b([ap])\.? ?m\b\.?", r"\1m", text)  # "4 p.m." and "4 pm" alike
    return re.findall(r"[\w']+", text)


def edit_distance(reference: list[str], heard: list[str]) -> int:
    row = list(range(len(heard) + 1))
    for i, ref in enumerate(reference, 1):
        previous, row[0] = row[0], i
        for j, word in enumerate(heard, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ref != word))
    return row[-1]


assert len(AGENT_SAID) == len(ENGLISH), "one agent sentence before each English line"


def hint_sets(language: str, said: bool) -> list[tuple[bool, bool]]:
    """(vocabulary, the agent's words) pairs each line is heard with."""
    return [(False, False), (True, False)] + ([(True, True)] if said and language == "en" else [])


def run(
    languages: list[str],
    codecs: list[str],
    first: int | None = None,
    beams: tuple[int, ...] = (),
    said: bool = False,
    models: tuple[str, ...] = (),
    voices: tuple[str, ...] = (),
) -> dict[str, Any]:
    settings = load_settings(profile="default")
    rows: list[dict[str, Any]] = []
    for kind, beam in (
        (k, b)
        for k in sorted({k for lang in languages for k in MODELS[lang] if not models or k in models})
        for b in beams or (0,)
    ):
        # an explicit beam is used for every line; 0: the shipped settings (short replies wider)
        asked = {"beam_size": beam, "short_reply_s": 0.0} if beam else {}
        stt = settings.stt.model_copy(update=asked)
        engine = WhisperEngine(model_path(settings, kind), stt)  # type: ignore[arg-type]
        engine.warm()
        for language in (lang for lang in languages if kind in MODELS[lang]):
            lines = (ENGLISH if language == "en" else FRENCH)[:first]
            for v, voice in enumerate(voices or VOICES[language]):
                for i, text in enumerate(lines):
                    clean = speak(text, voice)
                    for codec, (vocabulary, after) in (
                        (c, h) for c in codecs for h in hint_sets(language, said)
                    ):
                        noisy = (i + v) % 3 == 0
                        audio = line(clean, codec, noisy, seed=i * 10 + v)
                        hints = VOCABULARY[language] if vocabulary else []
                        agent = AGENT_SAID[i] if after else ""
                        started = time.perf_counter()
                        heard = engine.transcribe(audio, language, vocabulary=hints, said=agent).text
                        compute = time.perf_counter() - started
                        reference = words(text)
                        errors = edit_distance(reference, words(heard))
                        rows.append(
                            {"model": kind, "beam": beam, "beam_used": beam_for(len(audio) / RATE, stt),
                             "language": language, "voice": voice,
                             "codec": codec, "vocabulary": vocabulary, "said": after, "noisy": noisy,
                             "text": text, "heard": heard,
                             "words": len(reference), "errors": errors, "compute_s": round(compute, 3),
                             "audio_s": round(len(audio) / RATE, 2)}
                        )  # fmt: skip
                        print(f"{kind:17} beam {beam or 'shipped'} {language} {voice:18} {codec} "
                              f"{'noisy' if noisy else 'clean'} {'vocab ' if vocabulary else ''}"
                              f"{'said ' if after else ''}"
                              f"{errors}/{len(reference)}  {heard}",
                              flush=True)  # fmt: skip
    return {"rows": rows, "summary": summarise(rows)}


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str, int, str, str, bool, bool], list[dict[str, Any]]] = {}
    for row in rows:
        key = (synthesiser(row["voice"]), row["model"], row.get("beam", 1), row["language"], row["codec"],
               row.get("vocabulary", False), row.get("said", False))  # fmt: skip
        groups.setdefault(key, []).append(row)
    summary = []
    for (voices, model, beam, language, codec, vocabulary, said), group in sorted(groups.items()):
        summary.append(
            {
                "synthesiser": voices, "model": model, "beam": beam, "language": language, "codec": codec,
                "vocabulary": vocabulary, "said": said,
                "utterances": len(group),
                "voices": len({r["voice"] for r in group}),
                "wer": round(sum(r["errors"] for r in group) / sum(r["words"] for r in group), 4),
                "wer_clean": _wer([r for r in group if not r["noisy"]]),
                "wer_noisy": _wer([r for r in group if r["noisy"]]),
                "compute_s_median": round(statistics.median(r["compute_s"] for r in group), 3),
            }
        )  # fmt: skip
    return summary


def beam_label(beam: int) -> str:
    return " shipped beams" if beam == 0 else f" beam {beam}" if beam > 1 else ""


def synthesiser(voice: str) -> str:
    """Who spoke a row: ``espeak-ng`` or ``flite`` (rows of earlier runs name espeak-ng's voice alone)."""
    return voice.partition(":")[0] if ":" in voice else "espeak-ng"


def _wer(rows: list[dict[str, Any]]) -> float | None:
    return round(sum(r["errors"] for r in rows) / sum(r["words"] for r in rows), 4) if rows else None


def plot(summary: list[dict[str, Any]], path: Path) -> None:
    plt = pyplot()

    names = {"stt": "tiny.en", "stt_multilingual": "base"}
    labels = [
        f"{names[s['model']]}{beam_label(s.get('beam', 1))}\n"
        f"{s['language']} {s['codec']}{' +vocab' if s.get('vocabulary') else ''}"
        f"{' +said' if s.get('said') else ''}\n{s.get('synthesiser', 'espeak-ng')}"
        for s in summary
    ]
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(summary)), 4))
    ax.bar(labels, [100 * s["wer"] for s in summary], color="#3b6fd4")
    ax.axhline(8, color="#c0392b", linestyle="--", label="target 8 %")
    ax.set_ylabel("word error rate (%)")
    ax.set_title("STT on phone-line audio (callers other than the agent, 1 in 3 with line noise)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--language", action="append", choices=["en", "fr"], default=[])
    parser.add_argument("--codec", action="append", choices=["PCMU", "G722"], default=[])
    parser.add_argument(
        "--beam",
        type=int,
        action="append",
        default=[],
        help="whisper's beam size for every line (repeat to compare; default: the shipped settings, "
        "short replies searched wider: stt.short_reply_s)",
    )
    parser.add_argument(
        "--said",
        action="store_true",
        help="English lines heard a third time, after the agent's words that preceded them",
    )
    parser.add_argument("--model", action="append", choices=["stt", "stt_multilingual"], default=[])
    parser.add_argument(
        "--voices",
        help="callers' voices, comma-separated (espeak-ng:VOICE, flite:VOICE; 'flite': slt, rms, awb); "
        "default: three espeak-ng variants of the language",
    )
    parser.add_argument("--name", default="stt_wer", help="file name of the figures (JSON, PNG)")
    parser.add_argument("--lines", type=int, help="only the first N lines of each language (a quick look)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    voices = tuple(FLITE_VOICES if args.voices == "flite" else args.voices.split(",") if args.voices else ())
    for needed in {v.partition(":")[0] for v in voices} or {"espeak-ng"}:
        if shutil.which(needed) is None:
            print(f"bench/stt_wer.py: {needed} is missing (make sip-peers installs it)", file=sys.stderr)
            return 2
    results = run(
        args.language or ["en", "fr"],
        args.codec or ["PCMU", "G722"],
        args.lines,
        tuple(args.beam),
        args.said,
        tuple(args.model),
        voices,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / f"{args.name}.json", results)
    plot(results["summary"], args.out / f"{args.name}.png")
    for s in results["summary"]:
        print(json.dumps(s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
