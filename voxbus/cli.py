"""The ``voxbus`` command line. ``voxbus --help`` lists the commands."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from voxbus import __version__
from voxbus.bus.embedded import listen_ports
from voxbus.config import ConfigFileMissing, Settings, load_settings
from voxbus.logs import get_logger, setup_logging

log = get_logger("voxbus")
EXIT_USAGE = 2


class CliError(Exception):
    """A user-facing problem: printed as one line, exit code 2."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="voxbus", description="Self-hosted voice AI for the telephone.")
    p.add_argument("--version", action="version", version=f"voxbus {__version__}")
    p.add_argument("--config", help="TOML configuration file (also VOXBUS_CONFIG)")
    p.add_argument("--profile", choices=["default", "test"], help="model profile (VOXBUS_PROFILE)")
    p.add_argument("--nats-url", help="NATS server URL (VOXBUS_NATS_URL); unset: embedded server")
    p.add_argument("--nats-creds", help="bus credentials file (VOXBUS_NATS_CREDS); see `voxbus creds`")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    u = sub.add_parser("up", help="run everything: embedded NATS, supervisors and all workers")
    u.add_argument(
        "--cluster", type=int, choices=[1, 3, 5], help="embedded NATS servers (default: nats_cluster)"
    )
    w = sub.add_parser("worker", help="run one worker role against a NATS server")
    w.add_argument("role", choices=["stt", "llm", "tts"])
    w.add_argument("--id", help="worker id (default: <role>-<pid>)")
    a = sub.add_parser("agent", help="run the call actors' process against a NATS server")
    a.add_argument("--id", help="agent id (default: agent-<pid>)")
    g = sub.add_parser("gateway", help="run a SIP gateway process (at most 4 calls) against NATS")
    g.add_argument("--id", help="gateway id (default: sip-<pid>)")
    g.add_argument("--port", type=int, help="SIP port of this gateway (default: sip.port), for shards")
    g.add_argument("--rtp-port", type=int, help="first RTP port (default: sip.rtp_port), for shards")
    dl = sub.add_parser("dial", help="place an outbound call from the running system to a SIP URI")
    dl.add_argument("uri", help="sip:user@host[:port]")
    dl.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for an answer")
    dl.add_argument("--agent", default="", help="the agent profile that talks (default: [agent])")
    dl.add_argument("--context", default="", help="what the agent is told about the call: why it is placed")

    t = sub.add_parser("talk", help="hold a file call against a running system")
    t.add_argument("wav", type=Path, help="the caller's audio (16-bit PCM WAV)")
    t.add_argument("--out", type=Path, default=Path("reply.wav"), help="where to record the agent")
    t.add_argument("--max-seconds", type=float, default=300.0)

    d = sub.add_parser("demo", help="start the system and hold a scripted demo conversation")
    d.add_argument("--out", type=Path, default=Path("out/demo"), help="directory for the WAVs")
    d.add_argument("--json", type=Path, help="also write the per-turn results as JSON")

    c = sub.add_parser("call", help="call voxbus over SIP, playing a WAV, recording what is heard")
    c.add_argument("wav", type=Path, help="the caller's audio (16-bit PCM WAV)")
    c.add_argument("--uri", help="SIP URI to call (default: the configured gateway)")
    c.add_argument("--out", type=Path, default=Path("heard.wav"), help="where to record")

    e = sub.add_parser("events", help="tail the event stream, readable by a person")
    e.add_argument("--call", help="only this call id")
    e.add_argument("--all", action="store_true", help="replay from the start of the stream")
    e.add_argument("--json", action="store_true", help="one JSON object per line")

    m = sub.add_parser("models", help="list, fetch (download, assemble) and verify the models")
    m.add_argument("action", choices=["list", "fetch", "verify"])
    m.add_argument("--all-profiles", action="store_true", help="every profile, not just --profile")
    m.add_argument("--name", action="append", help="a catalogue model by name instead (repeatable; see list)")

    wh = sub.add_parser("webhook", help="POST call events to an HTTP endpoint (HMAC-signed, retried)")
    wh.add_argument("url", help="http(s) URL that receives one JSON event per POST")
    wh.add_argument("--events", nargs="+", default=["*"], help="event types, shell patterns (default: all)")
    secret = wh.add_mutually_exclusive_group(required=True)
    secret.add_argument("--secret-env", metavar="NAME", help="environment variable holding the HMAC secret")
    secret.add_argument("--secret-file", type=Path, metavar="PATH", help="file holding the HMAC secret")

    mc = sub.add_parser(
        "mcp", help="serve an MCP server's tools to the agents (as voxbus.tool.<server>_<tool>)"
    )
    mc.add_argument("server", help="a short name: the tools are named <server>_<tool> ([mcp.NAME] if set)")
    mc.add_argument("--id", dest="worker_id", help=argparse.SUPPRESS)  # set by voxbus up: heartbeat as it
    where = mc.add_mutually_exclusive_group()
    where.add_argument("--url", help="a streamable-HTTP MCP server")
    where.add_argument(
        "--command",
        dest="command_line",
        nargs=argparse.REMAINDER,
        help="a stdio MCP server: the command that starts it",
    )
    mc.add_argument("--timeout", type=float, default=5.0, help="seconds a call to one of its tools may take")

    cr = sub.add_parser("creds", help="issue bus credentials for a third party (a 0600 file)")
    cr.add_argument("role", choices=["reader", "operator", "tools", "admin"], help="what it may do")
    cr.add_argument("--user", help="user name (default: the role)")
    cr.add_argument("--audio", action="store_true", help="a reader or operator may hear the calls")
    cr.add_argument("--tool", action="append", help="a tools credential serves only these tools (repeatable)")

    ce = sub.add_parser("certs", help="make a fleet CA and a NATS server certificate (TLS between machines)")
    ce.add_argument("--hosts", required=True, help="the NATS servers' names and addresses, comma-separated")
    ce.add_argument("--out", type=Path, help="folder (default: <data_dir>/tls)")
    ce.add_argument("--renew", action="store_true", help="a new server certificate under the same CA")

    from voxbus.console.cli import add_parsers as console_parsers

    console_parsers(sub)
    sub.add_parser("config", help="print the effective configuration")
    s = sub.add_parser("schemas", help="write the JSON Schema of every message and event")
    s.add_argument("--out", type=Path, required=True)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    supervisor = os.environ.pop("VOXBUS_SUPERVISOR_PID", None)
    if supervisor:
        from voxbus.bus.embedded import die_with_parent

        die_with_parent(int(supervisor))
    # flags go through the environment so that worker processes started by `up` inherit them
    for flag, env in (
        ("config", "VOXBUS_CONFIG"),
        ("profile", "VOXBUS_PROFILE"),
        ("nats_url", "VOXBUS_NATS_URL"),
        ("nats_creds", "VOXBUS_NATS_CREDS"),
    ):
        if getattr(args, flag):
            os.environ[env] = str(getattr(args, flag))
    try:
        settings = load_settings()
        listen_ports()  # VOXBUS_LISTEN_PORTS, checked before anything picks a port
    except (ValidationError, ConfigFileMissing, ValueError) as exc:
        print(f"voxbus: bad configuration: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    setup_logging(settings.log_level, settings.log_format, role=getattr(args, "role", None) or args.command)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        return _dispatch(args, settings)
    except CliError as exc:
        print(f"voxbus: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def _one_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"{where}: {first['msg']} (got {first.get('input')!r})"
    return str(exc)


def _run(coro: Coroutine[Any, Any, int]) -> int:
    import uvloop

    return uvloop.run(coro)


def _run_any(coro: Coroutine[Any, Any, Any]) -> Any:
    import uvloop

    return uvloop.run(coro)


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    from voxbus.bus.auth import CredentialsInvalid
    from voxbus.bus.connection import BusUnreachable
    from voxbus.engines.models import ModelMissing
    from voxbus.media.file_call import NoAgent
    from voxbus.media.wav import BadWav
    from voxbus.profiles import ProfileError
    from voxbus.supervisors.system import client_creds
    from voxbus.supervisors.tree import Escalation

    try:
        if args.command == "config":
            print(json.dumps(json.loads(settings.model_dump_json()), indent=2))
            return 0
        if args.command == "schemas":
            from voxbus.schemas.export import write_schemas

            written = write_schemas(args.out)
            print(f"wrote {len(written)} schemas to {args.out}")
            return 0
        if args.command == "models":
            return _models(args, settings)
        if args.command == "creds":
            from voxbus.supervisors.system import grant

            try:
                print(grant(settings, args.role, args.user or args.role, args.audio, tuple(args.tool or ())))
            except ValueError as exc:
                raise CliError(str(exc)) from None
            return 0
        if args.command == "certs":
            from voxbus.bus.tls import make_fleet_certs, server_tls_block

            hosts = [h.strip() for h in args.hosts.split(",") if h.strip()]
            folder = make_fleet_certs(args.out or settings.data_dir / "tls", hosts, renew=args.renew)
            print(
                f"# certificates in {folder} (0700); nats-server's configuration:\n{server_tls_block(folder)}"
            )
            return 0
        if args.command == "webhook":
            from voxbus.commands import webhook

            if not args.url.startswith(("http://", "https://")):
                raise CliError(f"webhook URL {args.url!r} must start with http:// or https://")
            return _run(webhook(settings, _running_url(settings), args.url, _secret(args), args.events))
        if args.command == "mcp":
            from voxbus.commands import serve_mcp

            command, url, timeout = _mcp_source(settings, args)
            url_now = _running_url(settings)
            return _run(serve_mcp(settings, url_now, args.server, command, url, timeout, args.worker_id))
        if args.command == "up":
            from voxbus.commands import up

            if args.cluster:
                settings.nats_cluster = args.cluster

            return _run(up(settings))
        if args.command in ("worker", "agent", "gateway"):
            from voxbus.actors.roles import run_role

            role = {"worker": getattr(args, "role", ""), "agent": "agent", "gateway": "sip"}[args.command]
            for option, field in (("port", "port"), ("rtp_port", "rtp_port")):
                if getattr(args, option, None):
                    settings.sip = settings.sip.model_copy(update={field: getattr(args, option)})
            worker_id = args.id or f"{role}-{os.getpid()}"
            return _run(run_role(settings, _require_url(settings), role, worker_id))
        if args.command == "talk":
            from voxbus.commands import talk

            return _run(talk(settings, _running_url(settings), args.wav, args.out, args.max_seconds))
        if args.command == "demo":
            from voxbus.commands import demo

            return _run(demo(settings, args.out, args.json))
        if args.command == "call":
            from voxbus.commands import sip_call

            heard, _, _ = _run_any(sip_call(_running_url(settings), settings, args.wav, args.out, args.uri))
            print(
                f"call ended ({heard.status} {heard.reason}, hung up by {heard.hung_up_by}); "
                f"recorded what was heard to {args.out}"
            )
            return 0 if heard.confirmed else 1
        if args.command == "dial":
            from voxbus.commands import dial

            target = (args.uri, args.agent, args.context)
            return _run(dial(_running_url(settings), target, args.timeout, client_creds(settings)))
        if args.command in ("console", "kpi", "calls"):
            return _console(args, settings)
        if args.command == "events":
            from voxbus.commands import tail_events

            url = _running_url(settings)
            return _run(tail_events(url, args.call, args.all, args.json, client_creds(settings)))
    except (
        ModelMissing,
        BadWav,
        BusUnreachable,
        NoAgent,
        Escalation,
        CredentialsInvalid,
        ProfileError,
    ) as exc:
        raise CliError(str(exc)) from None
    raise CliError(f"unknown command {args.command}")


def _console(args: argparse.Namespace, settings: Settings) -> int:
    from voxbus.console import cli as console

    try:
        if args.command == "kpi":
            return console.kpi(args, settings)
        if args.command == "calls":
            return console.calls(args, settings, lambda ids: _run_any(_erase(settings, ids)))
        if args.hash_password:
            return console.hash_password()
        if args.new_token:
            return console.new_token(args.new_token, args.role)
    except console.UsageError as exc:
        raise CliError(str(exc)) from None
    if not args.web:
        import getpass

        from voxbus.console.terminal import run_terminal
        from voxbus.supervisors.system import client_creds

        operator = args.operator or getpass.getuser()
        url, creds = _running_url(settings), client_creds(settings)
        return _run(run_terminal(url, creds, operator, settings.console.redact))
    from voxbus.actors.roles import run_role

    return _run(run_role(settings, _running_url(settings), "console", args.id or f"console-{os.getpid()}"))


async def _erase(settings: Settings, call_ids: list[str]) -> int:
    from voxbus.bus.connection import Bus
    from voxbus.console.erase import erase_calls
    from voxbus.console.service import records_path
    from voxbus.console.store import CallRecords
    from voxbus.supervisors.system import client_creds

    bus = Bus(_running_url(settings), name="voxbus-calls-erase", creds=client_creds(settings))
    await bus.connect(attempts=3)
    try:
        return await erase_calls(bus, CallRecords(records_path(settings)), call_ids, settings.sip.record_dir)
    finally:
        await bus.close()


def _require_url(settings: Settings) -> str:
    if not settings.nats_url:
        raise CliError("this command needs --nats-url (or VOXBUS_NATS_URL)")
    return settings.nats_url


def _secret(args: argparse.Namespace) -> bytes:
    """The webhook's HMAC secret, from the environment or a file (never from the configuration)."""
    from voxbus.secrets import SecretMissing, read_secret

    try:
        return read_secret("webhook secret", args.secret_env, args.secret_file).encode()
    except SecretMissing as exc:
        raise CliError(str(exc)) from None


def _mcp_source(settings: Settings, args: argparse.Namespace) -> tuple[list[str] | None, str | None, float]:
    """Where ``voxbus mcp`` finds its server: the command line, else ``[mcp.NAME]``."""
    if args.command_line is not None or args.url:
        return args.command_line, args.url, args.timeout
    if args.server not in settings.mcp:
        raise CliError(f"mcp: give --url or --command, or configure [mcp.{args.server}]")
    configured = settings.mcp[args.server]
    return configured.command or None, configured.url or None, configured.timeout_s


def _running_url(settings: Settings) -> str:
    if settings.nats_url:
        return settings.nats_url
    from voxbus.supervisors.system import url_file

    path = url_file(settings)
    if path.is_file():
        return path.read_text().strip()
    raise CliError("no running system found: start `voxbus up` or pass --nats-url")


def _models(args: argparse.Namespace, settings: Settings) -> int:
    from voxbus.engines import models

    profiles = ["default", "test"] if args.all_profiles else [settings.profile]
    specs = models.specs_for(profiles)  # type: ignore[arg-type]
    if args.name:
        unknown = [n for n in args.name if n not in models.CATALOGUE]
        if unknown:
            print(
                f"voxbus: no model {', '.join(unknown)} in the catalogue: {', '.join(models.CATALOGUE)}",
                file=sys.stderr,
            )
            return 2
        specs, profiles = [models.CATALOGUE[n] for n in args.name], args.name
    elif args.action == "list":
        specs = list(models.CATALOGUE.values())
    if args.action == "list":
        for spec in specs:
            folder = models.models_dir(settings) / spec.name
            have = all((folder / f.name).is_file() for f in spec.files)
            size = sum(f.size for f in spec.files) / 1e6
            print(
                f"{spec.kind:4} {spec.name:40} {size:8.1f} MB  "
                f"{'present' if have else 'missing':8} {spec.description}"
            )
        return 0
    if args.action == "fetch":
        for spec in specs:
            models.fetch(settings, spec)
    problems = [p for spec in specs for p in models.verify(settings, spec)]
    for problem in problems:
        print(f"voxbus: model {problem}", file=sys.stderr)
    if not problems:
        print(f"models of {', '.join(profiles)}: all present, sha256 verified")
    return 1 if problems else 0
