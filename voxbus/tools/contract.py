"""The wire contract of a tool, for services written in any language.

A tool is an endpoint of a NATS service (the NATS services API, "micro"): the endpoint's subject
is ``voxbus.tool.<name>``, its metadata holds ``description`` (what the LLM reads) and
``parameters`` (the JSON Schema of its arguments, as JSON text), optionally ``timeout_s``. The
agent finds tools with ``$SRV.INFO`` and calls one by request/reply, JSON both ways:

request  ``{"call_id", "arguments": {...}, "idempotency_key", "attempt", "caller", "called"}``
reply    ``{"ok": true, "result": <any JSON>}`` or ``{"ok": false, "error": "one line"}``, either
         with ``"say": "a sentence"`` if the tool words the agent's answer itself ("Done: your
         appointment is now on Friday, December 4, at 11:30."): the agent says it at once,
         without asking the LLM again (a confirmation the tool knows to be true, seconds sooner)

A reply carrying the services API's error headers (``Nats-Service-Error``,
``Nats-Service-Error-Code``) counts as ``ok: false`` with that description. A retried request
carries the same ``idempotency_key``: a service that changes something does it once per key.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from voxbus.bus import subjects

TOOL_PREFIX = f"{subjects.PREFIX}.tool."
NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
MAX_REPLY_BYTES = 64 * 1024  # a reply goes into the LLM's prompt: anything larger is refused
MAX_DESCRIPTION_CHARS = 1024
MAX_SAY_CHARS = 300  # a sentence or two for the caller's ear
ERROR_HEADER, ERROR_CODE_HEADER = "Nats-Service-Error", "Nats-Service-Error-Code"


class ToolRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    call_id: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str = Field(description="the same on a retry: do a change once per key")
    attempt: int = Field(default=1, ge=1)
    caller: str = Field(default="", description="the caller's address (SIP From), when known")
    called: str = Field(default="", description="the number called (SIP request URI user)")


class ToolReply(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ok: StrictBool
    result: Any = None
    error: str | None = None
    say: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_SAY_CHARS,
        pattern=r"^[^\x00-\x1f<>]+$",  # one plain line: no control characters, no tags
        description="the agent's answer, worded by the tool: said at once, no LLM round",
    )


class ToolSpec(BaseModel):
    """A tool as discovered: what the LLM is offered and how long a call to it may take."""

    name: str
    description: str
    parameters: dict[str, Any]
    timeout_s: float = Field(default=3.0, gt=0, le=60)
    service: str = ""  # "name/id" of the service that serves it

    def for_llm(self) -> dict[str, Any]:
        """The OpenAI function format the chat templates understand; the schema's ``x-`` keywords
        (voxbus's own, such as ``x-caller-said``) are for voxbus, not the model's prompt."""
        parameters = without_extensions(self.parameters)
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": parameters},
        }


def without_extensions(schema: Any) -> Any:
    """``schema`` without its ``x-`` keywords, at any depth."""
    if isinstance(schema, dict):
        return {k: without_extensions(v) for k, v in schema.items() if not str(k).startswith("x-")}
    if isinstance(schema, list):
        return [without_extensions(v) for v in schema]
    return schema


class BadTool(ValueError):
    """An endpoint that does not follow the contract; the message says why in one line."""


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise BadTool(f"tool name {name!r} must match {NAME.pattern}")
    return name


def spec_from_endpoint(service: str, endpoint: dict[str, Any]) -> ToolSpec | None:
    """The tool an endpoint of ``$SRV.INFO`` serves; None if its subject is not a tool's;
    :class:`BadTool` if it is one that breaks the contract."""
    subject = str(endpoint.get("subject") or "")
    if not subject.startswith(TOOL_PREFIX):
        return None
    name = check_name(subject[len(TOOL_PREFIX) :])
    meta = endpoint.get("metadata") or {}
    description = str(meta.get("description") or "").strip()
    if not description:
        raise BadTool(f"tool {name} ({service}): no description in its endpoint metadata")
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise BadTool(f"tool {name} ({service}): description over {MAX_DESCRIPTION_CHARS} characters")
    try:
        parameters = json.loads(meta.get("parameters") or '{"type": "object", "properties": {}}')
    except ValueError as exc:
        raise BadTool(f"tool {name} ({service}): parameters is not JSON: {exc}") from None
    check_schema(name, service, parameters)
    try:
        timeout_s = float(meta.get("timeout_s") or 3.0)
        return ToolSpec(
            name=name, description=description, parameters=parameters, timeout_s=timeout_s, service=service
        )
    except (ValueError, ValidationError) as exc:
        raise BadTool(f"tool {name} ({service}): timeout_s {meta.get('timeout_s')!r}: {exc}") from None


def check_schema(name: str, service: str, parameters: Any) -> None:
    import jsonschema

    if not isinstance(parameters, dict) or parameters.get("type") != "object":
        raise BadTool(f"tool {name} ({service}): parameters must be a JSON Schema of type object")
    try:
        jsonschema.Draft202012Validator.check_schema(parameters)
    except jsonschema.SchemaError as exc:
        raise BadTool(
            f"tool {name} ({service}): parameters is not a valid JSON Schema: {exc.message}"
        ) from None


def argument_problem(spec: ToolSpec, arguments: dict[str, Any]) -> str | None:
    """Why ``arguments`` do not fit the tool's schema (None: they do)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(spec.parameters)
    error = jsonschema.exceptions.best_match(validator.iter_errors(arguments))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "arguments"
    return f"{where}: {error.message}"


def parse_reply(data: bytes, headers: dict[str, str] | None) -> ToolReply:
    """A tool's reply; :class:`BadTool` if it is not one."""
    if headers and headers.get(ERROR_HEADER):
        code = headers.get(ERROR_CODE_HEADER, "")
        return ToolReply(ok=False, error=f"{headers[ERROR_HEADER]}" + (f" (code {code})" if code else ""))
    if len(data) > MAX_REPLY_BYTES:
        raise BadTool(f"reply of {len(data)} bytes, over the {MAX_REPLY_BYTES} allowed")
    try:
        reply = ToolReply.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise BadTool(f"reply is not a tool reply: {first['msg']} at {first['loc']}") from None
    if not reply.ok and not reply.error:
        reply.error = "the tool failed without saying why"
    return reply
