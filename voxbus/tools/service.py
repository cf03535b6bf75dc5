"""Serve tools to voxbus agents from any Python program, a few lines per tool.

    service = ToolService("calendar", version="1.0.0")

    class Book(BaseModel):
        slot: str = Field(description="YYYY-MM-DD HH:MM")

    @service.tool("Book the caller into a free slot.", timeout_s=2.0)
    async def book(args: Book, ctx: ToolContext) -> dict:
        ...

    await service.start(nc)          # nc: a connected nats-py client

Each tool is an endpoint of one NATS service (``nats.micro``: ``$SRV.PING/INFO/STATS`` come for
free) on ``voxbus.tool.<name>``, its description and argument schema in the endpoint metadata, as
:mod:`voxbus.tools.contract` describes. Arguments are validated by the pydantic model before the
function runs; a retried request (same idempotency key) gets the first answer again instead of
running twice, also while the first is still running.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client
from nats.micro import add_service
from nats.micro.request import Request
from nats.micro.service import EndpointConfig, Service
from pydantic import BaseModel, ValidationError

from voxbus.logs import get_logger
from voxbus.tools.catalog import discover
from voxbus.tools.contract import (
    TOOL_PREFIX,
    BadTool,
    ToolReply,
    ToolRequest,
    ToolSpec,
    argument_problem,
    check_name,
    check_schema,
)

log = get_logger(__name__)
QUEUE_GROUP = "voxbus.tools"  # replicas of a service share the work
REMEMBERED_KEYS = 4096


class ToolContext(BaseModel):
    """Who is asking: the call, its caller and the number called, and the request's key."""

    call_id: str
    caller: str
    called: str
    idempotency_key: str
    attempt: int


ToolFunction = Callable[[Any, ToolContext], Awaitable[Any]]


@dataclass
class _Tool:
    name: str
    description: str
    arguments: type[BaseModel] | None  # None: ``schema`` describes them, the function gets a dict
    timeout_s: float
    function: ToolFunction
    schema: dict[str, Any] | None = None

    def parameters(self) -> dict[str, Any]:
        if self.arguments is None:
            return self.schema or {"type": "object", "properties": {}}
        return compact_schema(self.arguments.model_json_schema())


class ToolError(Exception):
    """Raise it from a tool to answer ``ok: false`` with this message (the caller is told the
    tool could not do it; nothing is logged as a crash); ``say``: the agent's answer, worded by
    the tool ("Sorry, Friday at 11:30 is taken. I have 9:00 or 14:00.")."""

    def __init__(self, message: str, say: str | None = None) -> None:
        super().__init__(message)
        self.say = say


class Answer(BaseModel):
    """What a tool may return instead of its bare result: the result, and the agent's answer
    worded by the tool, said at once without another LLM round (see ``ToolReply.say``)."""

    result: Any = None
    say: str


class ToolService:
    def __init__(self, name: str, version: str = "1.0.0", description: str = "") -> None:
        self.name, self.version, self.description = name, version, description
        self.tools: dict[str, _Tool] = {}
        self._service: Service | None = None
        self._answers: OrderedDict[str, asyncio.Future[bytes]] = OrderedDict()

    def tool(
        self, description: str, timeout_s: float = 3.0, name: str | None = None
    ) -> Callable[[ToolFunction], ToolFunction]:
        """Declare a tool: an async function of (arguments model, :class:`ToolContext`)."""

        def register(function: ToolFunction) -> ToolFunction:
            tool_name = check_name(name or function.__name__)
            model = next(iter(inspect.signature(function).parameters.values())).annotation
            if isinstance(model, str):  # postponed annotations
                model = function.__globals__[model]
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                raise BadTool(f"tool {tool_name}: its first parameter must be a pydantic model")
            self.tools[tool_name] = _Tool(tool_name, description, model, timeout_s, function)
            return function

        return register

    def add(
        self,
        name: str,
        description: str,
        schema: dict[str, Any],
        function: ToolFunction,
        timeout_s: float = 3.0,
    ) -> None:
        """Declare a tool by its JSON Schema (a bridge to another tool system): the function gets
        the arguments as a dict, checked against ``schema`` first."""
        check_name(name)
        check_schema(name, self.name, schema)
        self.tools[name] = _Tool(name, description, None, timeout_s, function, schema)

    async def start(self, nc: Client, check_taken: bool = True) -> Service:
        """Serve the tools on ``nc``. :class:`BadTool` if another service already serves one of
        these names (replicas of this same service are welcome)."""
        if check_taken:
            found = await discover(nc)
            for tool_name in self.tools:
                other = found.tools.get(tool_name)
                if other is not None and other.service.split("/")[0] != self.name:
                    raise BadTool(f"tool {tool_name} is already served by {other.service}")
        service = await add_service(
            nc, name=self.name, version=self.version, description=self.description or None
        )
        for tool in self.tools.values():
            await service.add_endpoint(
                EndpointConfig(
                    name=tool.name,
                    subject=TOOL_PREFIX + tool.name,
                    queue_group=QUEUE_GROUP,
                    handler=self._handler(tool),
                    metadata={
                        "description": tool.description,
                        "parameters": json.dumps(tool.parameters()),
                        "timeout_s": str(tool.timeout_s),
                    },
                )
            )
        self._service = service
        # served once the server has the endpoints' subscriptions: a discovery or a call sent
        # right after, on another connection, would otherwise find nobody (as Bus.subscribe)
        await nc.flush()
        log.info("tools served", service=self.name, tools=sorted(self.tools))
        return service

    async def stop(self) -> None:
        if self._service is not None:
            await self._service.stop()
            self._service = None

    def _handler(self, tool: _Tool) -> Callable[[Request], Awaitable[None]]:
        async def handle(request: Request) -> None:
            try:
                call = ToolRequest.model_validate_json(request.data)
            except ValidationError as exc:
                await request.respond_error("400", f"bad request: {exc.errors()[0]['msg']}")
                return
            answer = self._answers.get(call.idempotency_key)
            if answer is None:  # the first time this key is seen: run the tool once
                answer = asyncio.get_running_loop().create_future()
                self._answers[call.idempotency_key] = answer
                while len(self._answers) > REMEMBERED_KEYS:
                    self._answers.popitem(last=False)
                answer.set_result(await self._run(tool, call))
            await request.respond(await asyncio.shield(answer))

        return handle

    async def _run(self, tool: _Tool, call: ToolRequest) -> bytes:
        arguments: Any = call.arguments
        if tool.arguments is not None:
            try:
                arguments = tool.arguments.model_validate(call.arguments)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "arguments"
                return _reply(False, error=f"bad arguments: {where}: {first['msg']}")
        else:
            spec = ToolSpec(name=tool.name, description=tool.description, parameters=tool.parameters())
            problem = argument_problem(spec, call.arguments)
            if problem is not None:
                return _reply(False, error=f"bad arguments: {problem}")
        context = ToolContext(
            call_id=call.call_id,
            caller=call.caller,
            called=call.called,
            idempotency_key=call.idempotency_key,
            attempt=call.attempt,
        )
        try:
            result = await tool.function(arguments, context)
        except ToolError as exc:
            return _reply(False, error=str(exc), say=exc.say)
        except Exception as exc:  # a bug in the tool: answered and logged, the service goes on
            log.exception("tool failed", tool=tool.name, call_id=call.call_id)
            return _reply(False, error=f"{tool.name} failed: {type(exc).__name__}")
        if isinstance(result, Answer):
            return _reply(True, result=jsonable(result.result), say=result.say)
        return _reply(True, result=jsonable(result))


def compact_schema(schema: Any) -> Any:
    """The schema without pydantic's ``title`` entries: every token of it is in the LLM's prompt."""
    if isinstance(schema, dict):
        return {k: compact_schema(v) for k, v in schema.items() if not (k == "title" and isinstance(v, str))}
    if isinstance(schema, list):
        return [compact_schema(v) for v in schema]
    return schema


def jsonable(result: Any) -> Any:
    return result.model_dump(mode="json") if isinstance(result, BaseModel) else result


def _reply(ok: bool, result: Any = None, error: str | None = None, say: str | None = None) -> bytes:
    try:
        reply = ToolReply(ok=ok, result=result, error=error, say=say)
    except ValidationError as exc:  # the tool's own wording breaks the contract: not sent
        problem = exc.errors()[0]["msg"]
        log.error("tool answer refused", say=say, problem=problem)
        reply = ToolReply(ok=False, error=f"the tool's answer to say is not one plain line: {problem}")
    return reply.model_dump_json(exclude_none=True).encode()
