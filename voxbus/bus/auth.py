"""Who may do what on the bus: one NATS user per role, each with the least permissions it needs.

``voxbus up`` issues a credential per role (a random password, given to the process in a 0600
file; the server's configuration holds only its bcrypt hash) and starts the embedded nats-server
with the users and their permissions. An anonymous client is refused; a client that publishes or
subscribes outside its lists gets a permissions violation and its message goes nowhere. Replies
go to a per-user inbox prefix (``_INBOX_<user>``), so that no role can read another's replies.

NATS's own users with bcrypt passwords are used rather than nkeys or JWTs: one machine, one
server, and no extra key tooling for an operator to learn; accounts and JWTs fit a cluster of
several operators better and are a later step.
"""

from __future__ import annotations

import functools
import json
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, SecretStr, ValidationError

from voxbus.bus import subjects
from voxbus.sip.settings import CALL_ROLES

__all__ = [
    "ROLES",
    "Credentials",
    "CredentialsInvalid",
    "Permissions",
    "issue",
    "permissions",
    "server_config",
    "subject_matches",
]

P = subjects.PREFIX
TOOL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")  # as voxbus.tools.contract.NAME
EVENTS = (f"{P}.call.*.evt.>", f"{P}.sys.evt.>")
EVENTS_STREAM_API = (
    f"$JS.API.STREAM.INFO.{subjects.EVENTS_STREAM}",
    f"$JS.API.STREAM.CREATE.{subjects.EVENTS_STREAM}",
)
KV = f"KV_{subjects.CALL_STATE_BUCKET}"


def _consumer_api(stream: str) -> tuple[str, ...]:
    """What reading a stream through a consumer needs (nats-py's ordered consumer and kv.keys)."""
    return (
        f"$JS.API.STREAM.INFO.{stream}",
        f"$JS.API.STREAM.MSG.GET.{stream}",
        f"$JS.API.CONSUMER.CREATE.{stream}",
        f"$JS.API.CONSUMER.CREATE.{stream}.>",
        f"$JS.API.CONSUMER.INFO.{stream}.>",
        f"$JS.API.CONSUMER.DELETE.{stream}.>",
        f"$JS.API.CONSUMER.MSG.NEXT.{stream}.>",
        f"$JS.ACK.{stream}.>",
        f"$JS.FC.{stream}.>",  # an ordered consumer's flow control
    )


READ_EVENTS_API = _consumer_api(subjects.EVENTS_STREAM)


@dataclass(frozen=True)
class Permissions:
    """Subject patterns a user may publish to and subscribe to; ``responses``: it may answer the
    requests it receives (NATS ``allow_responses``) without a publish right on the inbox."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    responses: bool = False
    deny_subscribe: tuple[str, ...] = field(default=())


def _worker(role: str, publish: tuple[str, ...], subscribe: tuple[str, ...]) -> Permissions:
    """A worker role: its own subjects, plus events, its heartbeat and the events stream's info."""
    return Permissions(
        publish=(*publish, *EVENTS, *EVENTS_STREAM_API, f"{P}.sys.health.{role}.*"),
        subscribe=subscribe,
        responses=True,
    )


def _reader(audio: bool) -> Permissions:
    return Permissions(
        publish=READ_EVENTS_API,
        subscribe=(*EVENTS, f"{P}.sys.health.>", *((f"{P}.call.*.audio.>",) if audio else ())),
        deny_subscribe=() if audio else (f"{P}.call.*.audio.>",),
    )


def permissions(role: str, audio: bool = False, tools: tuple[str, ...] = ()) -> Permissions:
    """The least a role needs (``audio``: a reader or operator granted the calls' audio; ``tools``:
    the only tool names a tools credential may serve, all when empty)."""
    for name in tools:
        if not TOOL_NAME.match(name):
            raise ValueError(f"tool name {name!r} must match {TOOL_NAME.pattern}")
    call = f"{P}.call.*"
    table = {
        "admin": Permissions(publish=(">",), subscribe=(">",), responses=True),
        "sip": _worker(
            "sip",
            (f"{call}.audio.in", subjects.AGENT_CALLS, f"{subjects.SIP_LOAD}.*"),
            (
                f"{call}.audio.out",
                f"{call}.ctl",
                subjects.SIP_DIAL,
                f"{subjects.SIP_LOAD}.*",
                # the roles a call needs, serving or not (voxbus.sip.readiness)
                *(subjects.health(role, "*") for role in CALL_ROLES),
            ),
        ),
        "stt": _worker(
            "stt",
            (),
            (
                subjects.STT_SESSIONS,
                f"{call}.audio.in",
                f"{call}.stt.vocabulary",
                f"{call}.stt.said",
                f"{call}.evt.call.ended",
            ),
        ),
        "llm": _worker("llm", (f"{call}.llm",), (subjects.LLM_GENERATE, f"{call}.cancel")),
        "tts": _worker(
            "tts", (f"{call}.audio.out",), (subjects.TTS_SPEAK, f"{P}.tts.worker.*", f"{call}.cancel")
        ),
        "agent": _worker(
            "agent",
            (
                subjects.LLM_GENERATE,
                subjects.STT_SESSIONS,
                subjects.TTS_SPEAK,
                f"{P}.tts.worker.*",
                f"{call}.cancel",
                f"{call}.ctl",
                f"{call}.stt.vocabulary",
                f"{call}.stt.said",
                f"{P}.tool.>",
                "$SRV.INFO",  # which tools are up
                f"$KV.{subjects.CALL_STATE_BUCKET}.>",
                *_consumer_api(KV),  # kv.keys() (resuming calls) reads the bucket with a consumer
                f"$JS.API.DIRECT.GET.{KV}.>",
            ),
            (
                subjects.AGENT_CALLS,
                f"{call}.evt.>",
                f"{call}.llm",
                f"{call}.op",
                f"{P}.sys.evt.worker.started",
                subjects.health("llm", "*"),  # an LLM worker serving: its prompts warmed again
            ),
        ),
        "reader": _reader(audio),
        "operator": Permissions(
            publish=(*READ_EVENTS_API, *EVENTS_STREAM_API, f"{call}.ctl", f"{call}.op", subjects.SIP_DIAL),
            subscribe=_reader(audio).subscribe,
            deny_subscribe=_reader(audio).deny_subscribe,
        ),
        "console": Permissions(  # the operator console: reads, steps in, erases by retention
            publish=(
                *READ_EVENTS_API,
                *EVENTS_STREAM_API,
                *_consumer_api(KV),
                f"{call}.op",  # steps in through the call actor, never straight to the gateway
                f"$JS.API.STREAM.PURGE.{subjects.EVENTS_STREAM}",
                f"$KV.{subjects.CALL_STATE_BUCKET}.>",
                f"{P}.sys.evt.>",
                f"{P}.sys.health.console.*",
            ),
            subscribe=(*EVENTS, f"{P}.sys.health.>", *((f"{call}.audio.>",) if audio else ())),
            deny_subscribe=() if audio else (f"{P}.call.*.audio.>",),  # listen-in only when granted
        ),
        "mcp": Permissions(  # voxbus up's bridge to an MCP server: any tool, and its heartbeat
            publish=("$SRV.>", f"{P}.sys.health.mcp.*"),
            subscribe=(f"{P}.tool.>", "$SRV.>"),
            responses=True,
        ),
        "tools": Permissions(
            publish=("$SRV.>",),
            subscribe=(*(subjects.tool(n) for n in tools or (">",)), "$SRV.>"),
            responses=True,
        ),
    }
    if role not in table:
        raise ValueError(f"unknown bus role {role!r}: one of {', '.join(ROLES)}")
    return table[role]


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: ``*`` is one token, ``>`` the rest."""
    p, s = pattern.split("."), subject.split(".")
    for i, token in enumerate(p):
        if token == ">":
            return len(s) > i
        if i >= len(s) or (token != "*" and token != s[i]):
            return False
    return len(p) == len(s)


@functools.lru_cache(maxsize=4096)
def may_publish(role: str, subject: str) -> bool:
    return any(subject_matches(p, subject) for p in permissions(role).publish)


ROLES = ("admin", "sip", "stt", "llm", "tts", "agent", "reader", "operator", "console", "tools", "mcp")
SERVICE_ROLES = (
    "admin",
    "sip",
    "stt",
    "llm",
    "tts",
    "agent",
    "console",
    "mcp",
)  # issued by `voxbus up` itself


class CredentialsInvalid(ValueError):
    """A credentials file that is missing, unreadable or readable by others."""


class Credentials(BaseModel):
    """What a process needs to connect: its user, password and inbox prefix."""

    user: str
    password: SecretStr
    role: str
    audio: bool = False
    ca_pem: str | None = None  # the fleet CA the bus's TLS certificate must chain to (voxbus.bus.tls)

    @property
    def inbox_prefix(self) -> str:
        return f"_INBOX_{self.user}"

    @classmethod
    def load(cls, path: Path) -> Credentials:
        try:
            mode = path.stat().st_mode & 0o077
            if mode:
                raise CredentialsInvalid(f"{path}: readable by others (mode {oct(mode)}); chmod 600 it")
            return cls.model_validate_json(path.read_text())
        except OSError as exc:
            raise CredentialsInvalid(f"{path}: {exc.strerror or exc}") from None
        except ValidationError as exc:
            problem = f"not a voxbus credentials file ({exc.error_count()} errors)"
            raise CredentialsInvalid(f"{path}: {problem}") from None


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(path, 0o600)


def issue(
    auth_dir: Path,
    user: str,
    role: str,
    audio: bool = False,
    tools: tuple[str, ...] = (),
    ca_pem: str | None = None,
) -> Path:
    """A credential for ``user`` in ``role`` (kept if it exists): its file, 0600, in ``auth_dir``;
    the user's bcrypt hash joins ``users.json``, from which the server's configuration is made.
    ``ca_pem``: the bus speaks TLS with a certificate of this CA, which the file then carries."""
    import bcrypt

    permissions(role, audio, tools)  # an unknown role or a bad name fails here, before anything is written
    path = auth_dir / f"{user}.json"
    users = _users(auth_dir)
    if path.is_file() and user in users:
        if bool(users[user].get("audio")) != audio:  # the grant of audio changed: the same password
            users[user]["audio"] = audio
            _write_private(auth_dir / "users.json", json.dumps(users, indent=1) + "\n")
        kept = json.loads(path.read_text())
        if kept.get("ca_pem") != ca_pem:  # TLS turned on or off, or a new CA: the same password
            _write_private(path, json.dumps({**kept, "ca_pem": ca_pem}) + "\n")
        return path
    password = secrets.token_urlsafe(32)
    creds = Credentials(user=user, password=SecretStr(password), role=role, audio=audio, ca_pem=ca_pem)
    payload = {**creds.model_dump(), "password": password}
    _write_private(path, json.dumps(payload) + "\n")
    # nats-server's bcrypt (Go) reads the 2a prefix; 2b is the same algorithm for our passwords
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()
    hashed = hashed.replace("$2b$", "$2a$", 1)
    users[user] = {"role": role, "audio": audio, "tools": list(tools), "hash": hashed}
    _write_private(auth_dir / "users.json", json.dumps(users, indent=1) + "\n")
    return path


def _users(auth_dir: Path) -> dict[str, dict[str, object]]:
    path = auth_dir / "users.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def server_config(auth_dir: Path) -> str:
    """The ``authorization`` block of nats-server's configuration, from ``users.json``."""
    entries = []
    for user, entry in sorted(_users(auth_dir).items()):
        perms = permissions(str(entry["role"]), bool(entry.get("audio")), tuple(entry.get("tools") or ()))  # type: ignore[arg-type]
        inbox = f"_INBOX_{user}.>"
        subscribe: dict[str, list[str]] = {"allow": [*perms.subscribe, inbox]}
        if perms.deny_subscribe:
            subscribe["deny"] = list(perms.deny_subscribe)
        rules: dict[str, object] = {"publish": {"allow": list(perms.publish)}, "subscribe": subscribe}
        if perms.responses:
            rules["allow_responses"] = True
        entries.append({"user": user, "password": entry["hash"], "permissions": rules})
    # NATS's configuration format reads JSON
    return "authorization: " + json.dumps({"users": entries}, indent=1) + "\n"


def secure_embedded_server(
    auth_dir: Path, config_path: Path, listen_in: bool = False, tls_dir: Path | None = None
) -> Path:
    """Issue the service roles' credentials (kept across restarts) and write nats-server's
    configuration (0600) with every user issued so far; returns the configuration's path.
    ``listen_in``: the console may subscribe to the calls' audio (``console.listen_in``);
    ``tls_dir``: the server speaks TLS only, with the certificates there (``voxbus.bus.tls``)."""
    from voxbus.bus.tls import server_tls_block

    ca_pem = (tls_dir / "ca.pem").read_text() if tls_dir else None
    for role in SERVICE_ROLES:
        issue(auth_dir, role, role, audio=listen_in and role == "console", ca_pem=ca_pem)
    _write_private(config_path, server_config(auth_dir) + (server_tls_block(tls_dir) if tls_dir else ""))
    return config_path
