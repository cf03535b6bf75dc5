"""Dates and times as a person says them on the phone (English and French).

Tool results carry machine forms (``2026-12-04``, ``14:00``) and small models copy them into their
answers; read out as written they are "two thousand twenty-six, twelve, four" and "fourteen
hundred". This rewrites them before TTS, leaving the history as the LLM wrote it.
"""

from __future__ import annotations

import re
from datetime import date

_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_TIME_24H = re.compile(r"\b([01]?\d|2[0-3]):([0-5]\d)\b(?!\s*(?:[AaPp]\.?[Mm]\b))")


FRENCH_DAYS = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"]
FRENCH_MONTHS = [
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
]  # fmt: skip


def _day(match: re.Match[str]) -> date | None:
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def _date(match: re.Match[str]) -> str:
    day = _day(match)
    return match[0] if day is None else f"{day:%A}, {day:%B} {day.day}"


def _time(match: re.Match[str]) -> str:
    hour, minute = int(match[1]), int(match[2])
    suffix = "AM" if hour < 12 else "PM"
    hour12 = hour % 12 or 12
    return f"{hour12} {suffix}" if minute == 0 else f"{hour12}:{minute:02d} {suffix}"


def _date_fr(match: re.Match[str]) -> str:
    day = _day(match)
    if day is None:
        return match[0]
    number = "1er" if day.day == 1 else str(day.day)
    return f"{FRENCH_DAYS[day.weekday()]} {number} {FRENCH_MONTHS[day.month - 1]}"


def _time_fr(match: re.Match[str]) -> str:
    hour, minute = int(match[1]), int(match[2])
    if hour == 12 and minute == 0:
        return "midi"
    return f"{hour} heures" if minute == 0 else f"{hour} heures {minute}"


def spoken_dates(text: str, language: str = "en") -> str:
    """``2026-12-04 at 14:00`` -> ``Friday, December 4 at 2 PM`` (English); in French
    ``2026-12-04 à 14:30`` -> ``vendredi 4 décembre à 14 heures 30``. Other languages: as written
    (their voice reads the digits)."""
    if language == "fr":
        return _TIME_24H.sub(_time_fr, _ISO_DATE.sub(_date_fr, text))
    if language != "en":
        return text
    return _TIME_24H.sub(_time, _ISO_DATE.sub(_date, text))
