"""A tool call written in pieces: the words the schema fixes are put in, the model writes the rest.

Under the grammar of the offered tools a small model still writes every token of a call, one
decoding step each (~110 ms on two cores), and most of a call's tokens are fixed by the schema:
``{"name": "``, ``", "arguments": {``, each key, the closing braces. Those are evaluated instead,
in chunks, as prompt (a few tokens cost about two steps), and the model decodes only what is its
choice: the tool's name, under a grammar of the offered names, and each value, under the grammar
of its property's schema. The call reads as the whole grammar would have it, in the canonical
spacing of Qwen's template (``{"name": "reschedule", "arguments": {"appointment_id": 12, ...}}``).

Only for tools whose properties are all required (their keys are then known, in the schema's
order); a tool with optional properties has its arguments object decoded whole under its schema,
after the fixed name and key. ``bench/tool_call_speed.py`` measures it against the whole grammar.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from voxbus.engines.tool_calls import schema_gbnf

VALUE_MAX_TOKENS = 256  # a day, a time are a few tokens; a free text may take a whole call's
# a piece decoded under a grammar: (prompt so far, grammar, token limit, done-early check)
Decode = Callable[[str, Any, int, Callable[[str], bool]], Iterator[str]]


def name_grammar(names: list[str]) -> Any:
    """The offered tools' names, as the JSON string's content (no quotes)."""
    from llama_cpp import LlamaGrammar

    choices = " | ".join(json.dumps(name) for name in names)
    return LlamaGrammar.from_string(f"root ::= {choices}", verbose=False)


def value_grammar(schema: dict[str, Any], then: str) -> Any:
    """A JSON value of one property's schema (voxbus's own ``x-`` keywords left out), after a
    space as the model writes it and followed by ``then`` (the comma or the braces that come next):
    the model ends a value by writing what follows it, as in a whole call (``12,``, ``"Friday"}}``);
    a value alone with nothing after it, it writes on instead (``12`` went on to 16 digits)."""
    shown = {k: v for k, v in schema.items() if not k.startswith("x-")}
    return _grammar(json.dumps(shown, sort_keys=True), then)


@functools.lru_cache(maxsize=64)
def _grammar(schema_json: str, then: str) -> Any:
    from llama_cpp import LlamaGrammar

    rules = re.sub(r"^root ::=", "value ::=", schema_gbnf(schema_json, "{}"), flags=re.MULTILINE)
    return LlamaGrammar.from_string(f'{rules}\nroot ::= " "? value {json.dumps(then)}', verbose=False)


def complete_name(text: str, names: list[str]) -> bool:
    """Whether ``text`` is a whole name that no other offered name goes on from."""
    return text in names and not any(n != text and n.startswith(text) for n in names)


def complete_value(text: str, then: str) -> bool:
    """Whether ``text`` is a whole JSON value followed by ``then``: nothing more can come."""
    stripped = text.strip()
    if not stripped.endswith(then):
        return False
    try:
        json.loads(stripped[: -len(then)])
    except ValueError:
        return False  # "Friday, (a comma inside a string): it goes on
    return True


def write_call(before: str, tools: list[dict[str, Any]], decode: Decode) -> Iterator[str]:
    """The call's JSON after ``before`` (the prompt up to the call's opening tag and newline),
    piece by piece; ``decode`` runs the model under a grammar and stops when told it is done."""
    functions = {t["function"]["name"]: t["function"] for t in tools}
    names = list(functions)
    written = '{"name": "'
    yield written
    name = ""
    for piece in decode(before + written, name_grammar(names), 16, lambda s: complete_name(s, names)):
        name += piece
        yield piece
    written += name
    function = functions.get(name)
    if function is None:
        return  # cancelled, or cut short: the call is not whole (and is refused downstream)
    schema = function.get("parameters") or {"type": "object"}
    properties: dict[str, Any] = schema.get("properties") or {}
    if not properties:
        yield '", "arguments": {}}'
        return
    if set(properties) <= set(schema.get("required") or []):
        pieces = [(json.dumps(key) + ":", prop) for key, prop in properties.items()]
        keys = ['", "arguments": {' + pieces[0][0], *(f" {key}" for key, _ in pieces[1:])]
        ends = [","] * (len(pieces) - 1) + ["}}"]
        steps = [(key, prop, end) for key, (_, prop), end in zip(keys, pieces, ends, strict=True)]
    else:  # optional properties: the model chooses which, in the object as a whole
        steps = [('", "arguments":', schema, "}")]
    for key, prop, end in steps:
        yield key
        written += key
        value = ""
        done = functools.partial(complete_value, then=end)
        for piece in decode(before + written, value_grammar(prop, end), VALUE_MAX_TOKENS, done):
            value += piece
            yield piece
        if not complete_value(value, end):
            return  # cancelled or cut short
        written += value
