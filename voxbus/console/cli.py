"""``voxbus console``, ``voxbus kpi`` and ``voxbus calls``: the operator's commands."""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
import time
from datetime import datetime
from typing import Any

from voxbus.config import Settings
from voxbus.console.kpi import compute_kpis
from voxbus.console.records import call_record, calls_of_caller, list_calls
from voxbus.console.service import records_path
from voxbus.console.store import CallRecords

_SPAN = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class UsageError(ValueError):
    """A wrong argument, said in one line."""


def add_parsers(sub: Any) -> None:  # argparse's _SubParsersAction is private
    c = sub.add_parser("console", help="the operator console in this terminal (--web: serve the web one)")
    c.add_argument("--web", action="store_true", help="serve the web console (voxbus up does already)")
    c.add_argument("--id", help="web console id (default: console-<pid>)")
    c.add_argument("--operator", help="your name on the actions you take (default: your login name)")
    c.add_argument("--hash-password", action="store_true", help="read a password, print its bcrypt hash")
    c.add_argument("--new-token", metavar="NAME", help="make an API token for a program; prints it once")
    c.add_argument("--role", choices=["viewer", "supervisor"], default="viewer", help="--new-token: its role")

    k = sub.add_parser("kpi", help="the KPIs of a period, from the console's call records")
    k.add_argument("--since", default="24h", help="how far back: 30m, 24h, 7d, or an ISO date (default 24h)")
    k.add_argument("--until", help="the period's end (default: now)")
    k.add_argument("--json", action="store_true")

    cl = sub.add_parser("calls", help="list, show, export or erase the kept calls")
    cl.add_argument("action", choices=["list", "show", "export", "erase"])
    cl.add_argument("call_id", nargs="?", help="show/export/erase: this call")
    cl.add_argument("--caller", help="export/erase/list: every call of this caller")
    cl.add_argument("--since", default="30d", help="list: how far back (default 30d)")


def when(text: str, now: float) -> float:
    """A point in time: a span back from now (``90m``, ``24h``, ``7d``) or an ISO date/time."""
    if match := _SPAN.match(text):
        return now - float(match[1]) * _UNIT_S[match[2]]
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise UsageError(f"{text!r} is neither a span like 24h or 7d nor an ISO date") from None


def _records(settings: Settings) -> CallRecords:
    path = records_path(settings)
    if not path.exists():
        raise UsageError(f"no call records at {path}: the console has not run with this data directory")
    return CallRecords(path, settings.console.redact)


def kpi(args: argparse.Namespace, settings: Settings) -> int:
    now = time.time()
    until = when(args.until, now) if args.until else now
    kpis = compute_kpis(
        _records(settings), when(args.since, now), until, settings.console.price_per_core_hour
    )
    if args.json:
        print(kpis.model_dump_json(indent=2))
        return 0
    for name, field in kpis.model_fields.items():
        value = getattr(kpis, name)
        if name in ("since", "until"):
            value = datetime.fromtimestamp(value).isoformat(timespec="seconds")
        elif isinstance(value, float):
            value = f"{value:.1%}" if name.endswith("_rate") else f"{value:.4g}"
        print(f"{name:20} {'-' if value is None else value:>22}  {field.description or ''}")
    return 0


def calls(args: argparse.Namespace, settings: Settings, erase: Any) -> int:
    """``erase``: a coroutine runner that erases call ids everywhere (it needs the bus)."""
    records = _records(settings)
    if args.action == "list":
        for c in list_calls(records, since=when(args.since, time.time()), caller=args.caller):
            started = datetime.fromtimestamp(c.started or 0).isoformat(sep=" ", timespec="seconds")
            duration = f"{c.duration_s:.0f}s" if c.duration_s is not None else "up"
            print(f"{c.call_id:24} {started} {duration:>6} {c.outcome or '-':12} {c.caller}")
        return 0
    ids = [args.call_id] if args.call_id else calls_of_caller(records, args.caller) if args.caller else None
    if ids is None:
        raise UsageError(f"calls {args.action}: give a call id or --caller")
    if args.action == "erase":
        erased = erase(ids)
        print(f"erased {erased} call(s): records, events and call state")
        return 0
    found = [r for r in (call_record(records, i) for i in ids) if r is not None]
    if not found:
        raise UsageError("no such call")
    if args.action == "export":
        json.dump([r.model_dump(mode="json") for r in found], sys.stdout, indent=2, ensure_ascii=False)
        print()
        return 0
    for record in found:
        c = record.call
        print(f"{c.call_id}  caller {c.caller or '-'}  called {c.called or '-'}  outcome {c.outcome or 'up'}")
        for line in record.transcript:
            mark = f" [{line.mark}]" if line.mark else ""
            print(
                f"  {datetime.fromtimestamp(line.ts).strftime('%H:%M:%S')} {line.speaker}{mark}: {line.text}"
            )
    return 0


def hash_password() -> int:
    from voxbus.console.auth import hash_password as bcrypt_hash

    password = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    if len(password) < 8:
        raise UsageError("a console password has at least 8 characters")
    print(bcrypt_hash(password))
    return 0


def new_token(name: str, role: str) -> int:
    from pydantic import ValidationError

    from voxbus.console.auth import new_token as make
    from voxbus.console.settings import ConsoleSettings

    try:
        ConsoleSettings(tokens={name: {"token_sha256": "0" * 64, "role": role}})  # type: ignore[dict-item]
    except ValidationError as exc:
        raise UsageError(exc.errors()[0]["msg"]) from None
    token, digest = make()
    print(f"token (shown once; give it to the program): {token}", file=sys.stderr)
    print(f'[console.tokens.{name}]\ntoken_sha256 = "{digest}"\nrole = "{role}"')
    return 0
