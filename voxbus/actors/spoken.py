"""Dates and times as a person says them on the phone (English).

Tool results carry machine forms (``2026-12-04``, ``14:00``) and small models copy them into their
answers; read out as written they are "two thousand twenty-six, twelve, four" and "fourteen
hundred". This rewrites them before TTS, leaving the history as the LLM wrote it.
"""

from __future__ import annotations

import re
from datetime import date

_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_TIME_24H = re.compile(r"\b([01]?\d|2[0-3]):([0-5]\d)\b(?!\s*(?:[AaPp]\.?[Mm]\b))")


def _date(match: re.Match[str]) -> str:
    try:
        day = date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return match[0]
    return f"{day:%A}, {day:%B} {day.day}"


def _time(match: re.Match[str]) -> str:
    hour, minute = int(match[1]), int(match[2])
    suffix = "AM" if hour < 12 else "PM"
    hour12 = hour % 12 or 12
    return f"{hour12} {suffix}" if minute == 0 else f"{hour12}:{minute:02d} {suffix}"


def spoken_dates(text: str) -> str:
    """``2026-12-04 at 14:00`` -> ``Friday, December 4 at 2 PM``."""
    return _TIME_24H.sub(_time, _ISO_DATE.sub(_date, text))
