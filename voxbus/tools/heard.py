"""Arguments the caller must have said: a tool does not act on the LLM's guess.

A small model asked to "move my appointment to Friday at free" writes a call with *some* time, and
one that heard "Please move my appointment to do that" writes a day and time of its own: the
calendar is changed to a slot nobody asked for, and the caller hears it confirmed. A tool marks
the arguments that must come from the conversation with ``"x-caller-said": true`` in their JSON
Schema; before such a tool is called, each marked value must have been said in the call, by the
caller or by the agent (an offer the caller heard: "I have 9:00 or 11:30" -> "The first one").
If one was not, the tool is not called and the LLM is told to ask the caller instead.

What counts as said is deliberately plain, and forgiving of how whisper writes things:
- a time ``HH:MM``: its hour in digits or words, on a 12- or 24-hour clock ("two" for 14:00,
  "1130" or "11 30" for 11:30, "noon" for 12:00), and its minutes unless ``:00`` ("thirty",
  "half" for :30, "quarter" for :15 and :45);
- a number: in digits or words ("twelve", "forty-five");
- a flag set true: its name, said by the caller ("another": "I'd like another appointment"; the
  agent's "Would you like another one?" answered "No." is not the caller asking for it);
- any other text: each of its words (case and punctuation aside); an ISO date ``YYYY-MM-DD`` is
  the model's reading of what was said ("tomorrow") and is not checked.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Any, NamedTuple


class Said(NamedTuple):
    """The words of a call so far: everyone's (an argument's value may come from an offer the
    caller heard), the caller's alone (a flag's name must), and the caller's turn being answered
    (a time in it is the time meant: an offered one the caller did not name does not count)."""

    everyone: str
    by_caller: str
    turn: str = ""


NOTHING_SAID = Said("", "")
MARK = "x-caller-said"
CALLER_SAID = {MARK: True}  # a pydantic field's json_schema_extra, for a tool written with voxbus
# fmt: off
UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
         "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
# fmt: on
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50}
WORD_VALUES = {word: n for n, word in enumerate(UNITS)} | TENS | {"oh": 0, "noon": 12, "midnight": 0}
TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ORDINAL = re.compile(r"^(\d+)(?:st|nd|rd|th)$")


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def numbers(text: str) -> set[int]:
    """Every number said in ``text``: digits ("11th" is 11; "1130" is also 11 and 30), words, and
    a tens word followed by a unit ("forty five" is 45)."""
    found: set[int] = set()
    said = words(text)
    for i, word in enumerate(said):
        digits = ORDINAL.match(word)
        if word.isdigit() or digits:
            value = int(digits.group(1) if digits else word)
            found.add(value)
            if 100 <= value <= 2359 and not digits:  # "1130": a time written without its colon
                found |= {value // 100, value % 100}
        elif word in WORD_VALUES:
            found.add(WORD_VALUES[word])
            following = said[i + 1] if i + 1 < len(said) else ""
            if word in TENS and following in UNITS and 1 <= UNITS.index(following) <= 9:
                found.add(TENS[word] + UNITS.index(following))
    return found


def time_said(hour: int, minute: int, text: str) -> bool:
    said, heard = numbers(text), set(words(text))
    hour_said = hour in said or (hour % 12 or 12) in said
    minute_said = (
        minute == 0
        or minute in said
        or (minute == 30 and "half" in heard)
        or (minute in (15, 45) and "quarter" in heard)
    )
    return hour_said and minute_said


def value_said(value: Any, text: str, name: str = "") -> bool:
    """Whether ``value`` (an argument's, called ``name``) was said in ``text``. A flag set true
    must have had its name said ("another": "I'd like another appointment"); false is the default."""
    if isinstance(value, bool):
        return not value or all(word in set(words(text)) for word in words(name.replace("_", " ")))
    if value is None:
        return True
    if isinstance(value, int | float):
        return value == int(value) and int(value) in numbers(text)
    if not isinstance(value, str):
        return True  # lists and objects: the tool's own business
    if ISO_DATE.match(value.strip()):
        return True
    if clock := TIME.match(value.strip()):
        return time_said(int(clock.group(1)), int(clock.group(2)), text)
    heard, said = set(words(text)), numbers(text)
    return all(word in heard or (word.isdigit() and int(word) in said) for word in words(value))


HOUR_WORDS = {word: n for n, word in enumerate(UNITS) if 1 <= n <= 12}
MINUTE_WORDS = {"fifteen": 15, "thirty": 30, "forty": 45, "oh": 0}  # "forty" as in "forty-five"
AT = {"at", "around", "by", "to", "until"}
CLOCK_WORDS = {"am", "pm", "o", "clock", "oclock"}


def _hour(word: str) -> int | None:
    if ordinal := ORDINAL.match(word):  # whisper's "Friday 11th 30"
        word = ordinal.group(1)
    if word.isdigit() and 1 <= int(word) <= 23 and len(word) <= 2:
        return int(word)
    return HOUR_WORDS.get(word)


def _minute(word: str) -> int | None:
    if word.isdigit() and len(word) == 2 and int(word) < 60:
        return int(word)
    return MINUTE_WORDS.get(word)


def times_in(text: str) -> list[str]:
    """The clock times said in ``text``, as HH:MM, both readings of a 12-hour one ("at four" ->
    04:00 and 16:00): what the LLM is offered when it wrote a time nobody said. Plain on purpose:
    an hour counts after "at" (or "to", "by"...), before minutes, "am"/"pm" or "o'clock", or after
    "half past"; "1130" and "noon" count as they are."""
    said = words(text)
    found: list[tuple[int, int]] = []
    for i, word in enumerate(said):
        before = said[i - 1] if i else ""
        after = said[i + 1] if i + 1 < len(said) else ""
        if word == "noon":
            found.append((12, 0))
        elif word.isdigit() and len(word) in (3, 4) and int(word[-2:]) < 60 and 1 <= int(word[:-2]) <= 23:
            found.append((int(word[:-2]), int(word[-2:])))
        elif (hour := _hour(word)) is not None:
            minute = _minute(after)
            if before == "past" and i >= 2 and said[i - 2] in ("half", "quarter"):
                found.append((hour, 30 if said[i - 2] == "half" else 15))
            elif minute is not None:
                found.append((hour, minute))
            elif before in AT or after in CLOCK_WORDS:
                found.append((hour, 0))
    times: list[str] = []
    for hour, minute in found:
        for reading in (hour, hour + 12) if hour < 12 else (hour,):
            if f"{reading:02d}:{minute:02d}" not in times:
                times.append(f"{reading:02d}:{minute:02d}")
    return times


def _minutes(clock: str) -> int:
    hour, minute = clock.split(":")
    return int(hour) * 60 + int(minute)


def _apart(clock: str, other: str) -> int:
    """Minutes between two clock times, round the day."""
    gap = abs(_minutes(clock) - _minutes(other)) % 1440
    return min(gap, 1440 - gap)


def _unsaid(parameters: dict[str, Any], arguments: dict[str, Any], said: Said) -> dict[str, Any]:
    """The arguments the tool marks ``x-caller-said`` whose values were not said: a flag by the
    caller, a time named in the caller's turn if it names one (after the agent read out "13:00,
    14:30 or 15:30", "Friday at 3." means 15:00, not 13:00), any other value by anyone."""
    properties = parameters.get("properties") if isinstance(parameters, dict) else None
    if not isinstance(properties, dict):
        return {}
    return {
        name: arguments[name]
        for name, schema in properties.items()
        if isinstance(schema, dict)
        and schema.get(MARK) is True
        and name in arguments
        and not _said(arguments[name], name, said)
    }


def _said(value: Any, name: str, said: Said) -> bool:
    if isinstance(value, bool):
        return value_said(value, said.by_caller, name)
    named = times_in(said.turn)
    if named and isinstance(value, str) and TIME.match(value.strip()):
        return _minutes(value.strip()) % 720 in {_minutes(t) % 720 for t in named}
    return value_said(value, said.everyone, name)


def times_meant(
    parameters: dict[str, Any], arguments: dict[str, Any], turn: str, conversation: str
) -> dict[str, str]:
    """Marked times nobody said, each with the time the caller's turn holds instead: a small model
    hears "Thursday at four" and writes 14:00. Only where the turn holds one time (both readings of
    a 12-hour one count as one), in the reading nearest the model's (16:00, not 04:00, for 14:00);
    a turn with no time or several leaves the guess to :func:`not_said`, which asks the caller."""
    readings = times_in(turn)
    if len({_minutes(t) % 720 for t in readings}) != 1:
        return {}
    return {
        name: min(readings, key=partial(_apart, other=guess.strip()))
        # the turn's own times are not asked of the guess here: "I can't do 3, what about later?"
        # must not turn the 16:30 the agent offered into the 15:00 the caller refused
        for name, guess in _unsaid(parameters, arguments, Said(conversation, conversation)).items()
        if isinstance(guess, str) and TIME.match(guess.strip())
    }


def unheard(parameters: dict[str, Any], arguments: dict[str, Any], said: Said) -> list[str]:
    """The marked arguments whose values were not said, as "name 'value'"."""
    return [
        f"word {name!r}" if isinstance(value, bool) else f"{name} {value!r}"
        for name, value in _unsaid(parameters, arguments, said).items()
    ]


def to_ask(parameters: dict[str, Any], arguments: dict[str, Any], said: Said) -> list[str]:
    """What the agent asks the caller again for: the marked values nobody said, by their schema's
    ``title`` or their name ("day", "time"). Flags are left out (the caller never says "another
    = true"; whether they meant another booking is for the LLM to ask)."""
    properties = parameters.get("properties") or {}
    return [
        str(properties.get(name, {}).get("title") or name.replace("_", " "))
        for name, value in _unsaid(parameters, arguments, said).items()
        if not isinstance(value, bool)
    ]


def not_said(parameters: dict[str, Any], arguments: dict[str, Any], said: Said) -> str | None:
    """Why the call may not be made (a marked argument nobody said), with the times that were said
    when the guess is a time (a small model writes 14:00 for "four"), or None when all were said."""
    conversation = said.everyone
    guessed = unheard(parameters, arguments, said)
    if not guessed:
        return None
    reason = f"the caller has not said the {', '.join(guessed)}"
    guessed_a_time = any(
        TIME.match(str(value).strip()) and not value_said(value, conversation) for value in arguments.values()
    )
    if guessed_a_time and (times := times_in(conversation)):
        reason += f" (times said in the call: {', '.join(times)})"
    return reason
