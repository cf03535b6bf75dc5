"""Perceived latency of a French call: a French caller (an espeak-ng voice other than the agent's)
rings the system over SIP (PCMU), asks five appointment questions, each once the agent has
answered and gone quiet, and measures from its own recording the time from the end of each line to
the first agent audio heard; the turns' own ``turn.metrics`` give the stages. The default profile
(its LLM answers in French), the agent speaking French. Writes ``french_call.json`` and ``.png``.

    python bench/french_call.py --out bench/results
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from report import pyplot, write_json

from voxbus.bus.embedded import free_port
from voxbus.commands import sip_call
from voxbus.config import load_settings
from voxbus.engines.models import models_dir
from voxbus.engines.tts import EspeakEngine
from voxbus.logs import setup_logging
from voxbus.media.dialogue import Dialogue, DialogueLine, DialoguePlayer, render_line
from voxbus.supervisors.serving import wait_all_serving
from voxbus.supervisors.system import System

LINES = [
    "Bonjour, je voudrais déplacer mon rendez-vous de mardi.",
    "Est-ce que jeudi matin serait possible ?",
    "Dix heures, ce serait parfait.",
    "Est-ce que je dois apporter quelque chose ?",
    "Merci beaucoup, au revoir.",
]
AGENT = {
    "VOXBUS_AGENT__LANGUAGE": "fr",
    "VOXBUS_AGENT__GREETING": "Bonjour, cabinet dentaire, que puis-je faire pour vous ?",
    "VOXBUS_AGENT__SYSTEM_PROMPT": (
        "Vous êtes la réceptionniste d'un cabinet dentaire, au téléphone. Répondez en français, en "
        "une ou deux phrases simples, sans listes ni emoji."
    ),
}
CALLER_VOICE = "fr+f2"


async def run() -> dict[str, Any]:
    data = Path(tempfile.mkdtemp(prefix="voxbus-french-"))
    os.environ.setdefault("VOXBUS_MODEL_DIR", str(models_dir(load_settings())))  # not under the temp dir
    os.environ.update(AGENT | {"VOXBUS_DATA_DIR": str(data), "VOXBUS_CONSOLE__ENABLED": "false"})
    os.environ["VOXBUS_SIP__PORT"] = str(free_port())
    settings = load_settings(profile="default")
    system = System(settings)
    await system.start()
    try:
        from voxbus.bus.connection import Bus

        admin = Bus(system.url, "bench", creds=system.creds("admin"))
        await admin.connect(attempts=5)
        await wait_all_serving(admin, timeout_s=300)
        await admin.close()
        dialogue = Dialogue(lines=[DialogueLine(text=t) for t in LINES], settle_s=3.0)
        voice = EspeakEngine(CALLER_VOICE, settings.tts)
        player = DialoguePlayer(dialogue, [render_line(line, voice) for line in dialogue.lines])
        heard, metrics, _ = await sip_call(system.url, settings, player, data / "heard.wav", quiet=True)
    finally:
        await system.stop()
    ends = [t.end_s for t in player.timings]
    onsets = heard.onsets_after(ends)
    perceived = [round((o - e) * 1000) for o, e in zip(onsets, ends, strict=True) if o is not None]
    return {
        "caller_voice": f"espeak-ng:{CALLER_VOICE}",
        "codec": "PCMU",
        "perceived_ms": perceived,
        "perceived_p50_ms": statistics.median(perceived) if perceived else None,
        "perceived_max_ms": max(perceived) if perceived else None,
        "turns": [
            {
                k: m.get(k)
                for k in (
                    "turn",
                    "first_audio_ms",
                    "stt_final_ms",
                    "llm_first_token_ms",
                    "tts_first_frame_ms",
                    "user_text",
                    "agent_text",
                )
            }
            for m in metrics
        ],  # fmt: skip
    }


def plot(result: dict[str, Any], path: Path) -> None:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(
        [f"turn {i + 1}" for i in range(len(result["perceived_ms"]))], result["perceived_ms"], color="#3b6fd4"
    )
    ax.axhline(700, color="#c0392b", linestyle="--", label="target p50 700 ms")
    ax.set_ylabel("caller stops -> agent heard (ms)")
    ax.set_title("French call over SIP (PCMU), default profile")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    setup_logging("warning", "console")
    result = asyncio.run(run())
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "french_call.json", result)
    plot(result, args.out / "french_call.png")
    print(json.dumps({k: v for k, v in result.items() if k != "turns"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
