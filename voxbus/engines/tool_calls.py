"""Tool calls the LLM cannot get wrong: spotted in the stream, then decoded under a grammar.

Small models announce a tool call in different ways: Qwen's ``<tool_call>`` token, a bare JSON
object at the start of the answer (the special token is not always printed), sometimes with
doubled braces, or a JSON object after some other tag (``<tools>``, even ``<tool_response>``: a
model about to make up a tool's answer instead of asking the tool). The engine watches the free
text for such a start (holding back a tag until it sees what follows); from there it decodes the
call again under a grammar built from the offered tools' JSON Schemas (llama.cpp's JSON-Schema-to-GBNF),
so the call is always one of the offered tools with arguments of the right shape, and it is
handed on in one canonical form: ``<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>``,
the form Qwen's chat template writes, so that the call read back into the next prompt is the
tokens just decoded and the LLM does not evaluate it again.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

OPEN, CLOSE = "<tool_call>", "</tool_call>"
SENTENCE_ENDS = ".!?:"
TAG_AT_END = re.compile(r"<[a-z_]+>$")  # a tag right before a "{": the model's way of starting a call
TAG_BEGUN = re.compile(r"<[a-z_]*>?\s*$")


def call_start(said: str) -> int | None:
    """Where a tool call starts in the text generated so far (None: none yet)."""
    tagged = said.find(OPEN)
    brace = said.find("{")
    if brace >= 0:
        before = said[:brace].rstrip()
        tag = TAG_AT_END.search(before)
        if tag is not None:
            brace = tag.start()  # "<tools>\n{...": the tag goes too
        elif before and before[-1] not in SENTENCE_ENDS:
            brace = -1  # a brace inside a sentence is not a call
    found = [i for i in (tagged, brace) if i >= 0]
    return min(found) if found else None


def undecided_tail(said: str) -> int:
    """How many characters at the end could still turn out to start a call: a tag, whole or
    begun (``<tool_c``, ``<tools>``), and the whitespace after it."""
    tail = TAG_BEGUN.search(said)
    return len(tail.group()) if tail else 0


def call_schema(tools: list[dict[str, Any]]) -> dict[str, Any]:
    """One JSON Schema that only the offered tools' calls satisfy."""
    variants = [
        {
            "type": "object",
            "properties": {
                "name": {"const": tool["function"]["name"]},
                "arguments": tool["function"].get("parameters") or {"type": "object"},
            },
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for tool in tools
    ]
    return variants[0] if len(variants) == 1 else {"oneOf": variants}


def schema_gbnf(schema_json: str, fallback: str = '{"type": "object"}') -> str:
    """A JSON Schema as GBNF rules (llama.cpp's converter; ``root`` is the value); a schema feature
    the converter lacks gives ``fallback``'s rules instead (the arguments are checked later)."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    try:
        return json_schema_to_gbnf(schema_json)
    except Exception:
        return json_schema_to_gbnf(fallback)


@lru_cache(maxsize=32)
def grammar_for(schema_json: str) -> Any:
    from llama_cpp import LlamaGrammar

    return LlamaGrammar.from_string(schema_gbnf(schema_json), verbose=False)


def call_grammar(tools: list[dict[str, Any]]) -> Any:
    return grammar_for(json.dumps(call_schema(tools)))


def canonical(body: str) -> str:
    """The decoded call in the one form the call actor reads."""
    return f"{OPEN}\n{body.strip()}\n{CLOSE}"
