"""The console's web server: a page (static HTML and JavaScript, nothing fetched from outside),
a JSON API, a live feed (server-sent events) and ``/metrics``. Starlette and uvicorn: small, well
kept, and already what the MCP tooling brings in.

Cookies are HttpOnly and SameSite=Strict, so another site cannot make an operator's browser act;
every action checks the operator's role from the configuration at the time of the request.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from pydantic import ValidationError
from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from voxbus.console.auth import COOKIE, ConsoleAuth, LoginThrottle, Operator
from voxbus.console.kpi import compute_kpis
from voxbus.console.live import LiveCalls
from voxbus.console.metrics import CallMetrics
from voxbus.console.records import call_record, list_calls, turns_between
from voxbus.console.store import CallRecords
from voxbus.logs import get_logger
from voxbus.schemas.messages import OperatorCommand

log = get_logger(__name__)
STATIC = Path(__file__).parent / "static"
Act = Callable[[OperatorCommand], Awaitable[str | None]]  # None: done; else why not
Listen = Callable[[str], AsyncIterator[bytes]]  # a call's audio records (voxbus.console.listen)


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class ConsoleWeb:
    def __init__(
        self,
        auth: ConsoleAuth,
        records: CallRecords,
        live: LiveCalls,
        metrics: CallMetrics,
        act: Act,
        price_per_core_hour: float,
        listen: Listen | None = None,
    ) -> None:
        self.auth, self.records, self.live, self.metrics, self.act = auth, records, live, metrics, act
        self.listen = listen  # None: listening in is off (console.listen_in)
        self.price = price_per_core_hour
        self.throttle = LoginThrottle()
        self.app = Starlette(
            routes=[
                Route("/", self.page),
                Route("/login", self.log_in, methods=["POST"]),
                Route("/logout", self.log_out, methods=["POST"]),
                Route("/api/me", self.me),
                Route("/api/calls", self.calls),
                Route("/api/calls/{call_id}", self.call),
                Route("/api/calls/{call_id}/listen", self.listen_in),
                Route("/api/calls/{call_id}/{action}", self.action, methods=["POST"]),
                Route("/api/history", self.history),
                Route("/api/kpi", self.kpi),
                Route("/api/feed", self.feed),
                Route("/metrics", self.prometheus),
                Mount("/static", StaticFiles(directory=STATIC), name="static"),
            ]
        )

    def _operator(self, request: Request) -> Operator | None:
        """Who asks: a logged-in operator's cookie, or a program's API token."""
        return self.auth.operator(request.cookies.get(COOKIE)) or self.auth.bearer(
            request.headers.get("authorization")
        )

    async def page(self, _request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def log_in(self, request: Request) -> Response:
        form = await request.form()
        name, password = str(form.get("user", "")), str(form.get("password", ""))
        operator = await asyncio.to_thread(self.auth.log_in, name, password)  # bcrypt is slow on purpose
        if operator is None:
            log.warning(
                "console login refused", user=name[:64], remote=request.client.host if request.client else ""
            )
            return error(401, "wrong user name or password")
        log.info("console login", user=operator.name, role=operator.role)
        response = JSONResponse(operator.model_dump())
        response.set_cookie(
            COOKIE, self.auth.session(operator), max_age=self.auth.max_age_s, httponly=True, samesite="strict"
        )
        return response

    async def log_out(self, _request: Request) -> Response:
        response = JSONResponse({"ok": True})
        response.delete_cookie(COOKIE)
        return response

    async def me(self, request: Request) -> Response:
        operator = self._operator(request)
        return JSONResponse(operator.model_dump()) if operator else error(401, "not logged in")

    async def calls(self, request: Request) -> Response:
        if not self._operator(request):
            return error(401, "not logged in")
        return JSONResponse([c.model_dump(mode="json") for c in self.live.snapshot()])

    async def call(self, request: Request) -> Response:
        if not self._operator(request):
            return error(401, "not logged in")
        record = call_record(self.records, request.path_params["call_id"])
        if record is None:
            return error(404, f"no call {request.path_params['call_id'][:64]!r}")
        return JSONResponse(record.model_dump(mode="json"))

    async def action(self, request: Request) -> Response:
        operator = self._operator(request)
        if operator is None:
            return error(401, "not logged in")
        if not operator.may_act:
            return error(403, f"{operator.name} is a viewer: only a supervisor may step in")
        call_id = request.path_params["call_id"]
        if call_id not in self.live.calls:
            return error(404, f"no call {call_id[:64]!r} is up")
        try:
            body = await request.json() if await request.body() else {}
            command = OperatorCommand(
                call_id=call_id,
                operator=operator.name,
                action=request.path_params["action"],
                text=str(body.get("text", "")) if isinstance(body, dict) else "",
            )
        except (ValidationError, json.JSONDecodeError) as exc:
            problem = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else "the body is not JSON"
            return error(400, f"bad request: {problem}")
        refused = await self.act(command)
        if refused is not None:
            return error(409, refused)
        return JSONResponse({"ok": True})

    async def listen_in(self, request: Request) -> Response:
        """Both sides of a live call's audio (supervisors only: a recording of a person's voice
        is more than a transcript), until the call ends or the listener goes."""
        operator = self._operator(request)
        if operator is None:
            return error(401, "not logged in")
        if not operator.may_act:
            return error(403, f"{operator.name} is a viewer: only a supervisor may listen in")
        if self.listen is None:
            return error(403, "listening in is off (console.listen_in)")
        call_id = request.path_params["call_id"]
        if call_id not in self.live.calls:
            return error(404, f"no call {call_id[:64]!r} is up")
        log.info("listening in", user=operator.name, call_id=call_id)
        return StreamingResponse(
            self.listen(call_id),
            media_type="application/octet-stream",
            headers={"Cache-Control": "no-store", "X-Voxbus-Record": "1+640 (side, PCM16 LE 16 kHz)"},
        )

    async def history(self, request: Request) -> Response:
        if not self._operator(request):
            return error(401, "not logged in")
        since = _number(request.query_params.get("since"), time.time() - 86400)
        return JSONResponse([c.model_dump(mode="json") for c in list_calls(self.records, since=since)])

    async def kpi(self, request: Request) -> Response:
        if not self._operator(request):
            return error(401, "not logged in")
        until = _number(request.query_params.get("until"), time.time())
        since = _number(request.query_params.get("since"), until - 86400)
        kpis = compute_kpis(self.records, since, until, self.price)
        turns = turns_between(self.records, since, until)
        return JSONResponse({"kpis": kpis.model_dump(), "turns": turns})

    async def feed(self, request: Request) -> Response:
        if not self._operator(request):
            return error(401, "not logged in")
        queue = self.live.listen()

        async def messages() -> AsyncIterator[dict[str, str]]:
            try:
                while True:
                    yield {"data": json.dumps(await queue.get())}
            finally:
                self.live.unlisten(queue)

        return EventSourceResponse(messages(), ping=10)

    async def prometheus(self, _request: Request) -> Response:
        return Response(self.metrics.exposition(), media_type="text/plain; version=0.0.4")


def _number(text: str | None, default: float) -> float:
    try:
        return float(text) if text else default
    except ValueError:
        return default
