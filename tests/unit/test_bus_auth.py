"""Bus credentials and the least permissions of each role, without a server."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from voxbus.bus import subjects
from voxbus.bus.auth import (
    ROLES,
    Credentials,
    CredentialsInvalid,
    issue,
    permissions,
    server_config,
    subject_matches,
)


def may(patterns: tuple[str, ...], subject: str) -> bool:
    return any(subject_matches(p, subject) for p in patterns)


def test_subject_matching_follows_nats() -> None:
    assert subject_matches("voxbus.call.*.ctl", "voxbus.call.c1.ctl")
    assert not subject_matches("voxbus.call.*.ctl", "voxbus.call.c1.ctl.x")
    assert subject_matches("voxbus.call.>", "voxbus.call.c1.evt.x")
    assert not subject_matches("voxbus.call.>", "voxbus.call")
    assert subject_matches(">", "anything.at.all")


def test_only_the_agent_and_the_operator_may_send_call_control() -> None:
    ctl = subjects.control("c1")
    allowed = {role for role in ROLES if may(permissions(role).publish, ctl)}
    assert allowed == {"admin", "agent", "operator"}


def test_only_the_operator_and_the_console_may_step_into_a_call_and_only_the_agent_hears_them() -> None:
    op = subjects.operator("c1")
    assert {role for role in ROLES if may(permissions(role).publish, op)} == {"admin", "operator", "console"}
    assert {role for role in ROLES if may(permissions(role).subscribe, op)} == {"admin", "agent"}


def test_only_stt_hears_the_caller_only_the_gateway_the_agent_and_a_reader_only_when_granted() -> None:
    audio = subjects.audio_in("c1")
    assert {role for role in ROLES if may(permissions(role).subscribe, audio)} == {"admin", "stt"}
    agent_audio = subjects.audio_out("c1")
    assert {role for role in ROLES if may(permissions(role).subscribe, agent_audio)} == {"admin", "sip"}
    assert may(permissions("reader").deny_subscribe, audio)
    granted = permissions("reader", audio=True)
    assert may(granted.subscribe, audio) and not granted.deny_subscribe
    # the console listens in only when console.listen_in granted it the calls' audio
    assert may(permissions("console").deny_subscribe, audio)
    listening = permissions("console", audio=True)
    assert may(listening.subscribe, audio) and may(listening.subscribe, agent_audio)
    assert not may(listening.publish, audio) and not listening.deny_subscribe


def test_a_grant_of_audio_follows_the_setting_and_keeps_the_password(tmp_path: Path) -> None:
    path = issue(tmp_path, "console", "console", audio=True)
    password = Credentials.load(path).password.get_secret_value()
    assert issue(tmp_path, "console", "console", audio=False) == path
    users = json.loads((tmp_path / "users.json").read_text())
    assert users["console"]["audio"] is False
    assert Credentials.load(path).password.get_secret_value() == password
    config = json.loads(server_config(tmp_path).removeprefix("authorization: "))
    rules = next(u["permissions"] for u in config["users"] if u["user"] == "console")
    assert rules["subscribe"]["deny"] == ["voxbus.call.*.audio.>"]


def test_each_service_queue_is_served_by_its_own_role_only() -> None:
    served = {
        subjects.STT_SESSIONS: "stt",
        subjects.LLM_GENERATE: "llm",
        subjects.TTS_SPEAK: "tts",
        subjects.AGENT_CALLS: "agent",
        subjects.SIP_DIAL: "sip",
        subjects.tool("book"): "tools",
    }
    for subject, role in served.items():
        expected = {"admin", role, *(["mcp"] if role == "tools" else [])}  # voxbus up's MCP bridges
        assert {r for r in ROLES if may(permissions(r).subscribe, subject)} == expected, subject


def test_readers_see_events_and_workers_publish_them() -> None:
    event = subjects.call_event("c1", "turn.metrics")
    for role in ("reader", "operator"):
        assert may(permissions(role).subscribe, event) and not may(permissions(role).publish, event)
    for role in ("sip", "stt", "llm", "tts", "agent"):
        assert may(permissions(role).publish, event)
        assert may(permissions(role).publish, subjects.health(role, f"{role}-1"))
        assert not may(permissions(role).publish, subjects.health("llm" if role != "llm" else "tts", "x-1"))


def test_an_unknown_role_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown bus role"):
        permissions("root")


def test_issued_credentials_are_private_kept_and_hashed_for_the_server(tmp_path: Path) -> None:
    path = issue(tmp_path / "auth", "crm", "reader")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert issue(tmp_path / "auth", "crm", "reader") == path  # kept across restarts
    creds = Credentials.load(path)
    assert creds.user == "crm" and creds.inbox_prefix == "_INBOX_crm"
    assert "crm" not in repr(creds.password) and creds.password.get_secret_value() not in repr(creds)
    config = server_config(tmp_path / "auth")
    assert creds.password.get_secret_value() not in config
    users = json.loads(config.removeprefix("authorization: "))["users"]
    assert users[0]["password"].startswith("$2a$")
    assert "_INBOX_crm.>" in users[0]["permissions"]["subscribe"]["allow"]


def test_a_credentials_file_readable_by_others_or_broken_is_refused(tmp_path: Path) -> None:
    path = issue(tmp_path / "auth", "crm", "reader")
    os.chmod(path, 0o644)
    with pytest.raises(CredentialsInvalid, match="readable by others"):
        Credentials.load(path)
    os.chmod(path, 0o600)
    path.write_text("{}")
    with pytest.raises(CredentialsInvalid, match="not a voxbus credentials file"):
        Credentials.load(path)
    with pytest.raises(CredentialsInvalid, match="No such file"):
        Credentials.load(tmp_path / "missing.json")


def test_a_tools_credential_may_be_narrowed_to_the_tools_it_serves(tmp_path: Path) -> None:
    from voxbus.bus.auth import issue, permissions, server_config

    narrow = permissions("tools", tools=("list_free_slots", "book"))
    assert subject_matches(narrow.subscribe[0], "voxbus.tool.list_free_slots")
    assert not any(subject_matches(p, "voxbus.tool.transfer") for p in narrow.subscribe)
    assert any(subject_matches(p, "voxbus.tool.transfer") for p in permissions("tools").subscribe)
    issue(tmp_path, "calendar", "tools", tools=("book",))
    assert '"voxbus.tool.book"' in server_config(tmp_path) and '"voxbus.tool.>"' not in server_config(
        tmp_path
    )
    with pytest.raises(ValueError, match="tool name"):
        permissions("tools", tools=("rm -rf",))


def test_voxbus_ups_mcp_bridge_serves_tools_and_heartbeats_and_nothing_else() -> None:
    publish = permissions("mcp").publish
    assert may(publish, "$SRV.INFO.voxbus-tools") and may(publish, "voxbus.sys.health.mcp.mcp-crm")
    assert not may(publish, "voxbus.sys.health.llm.llm-1")
    assert not may(publish, subjects.control("c1")) and not may(publish, subjects.SIP_DIAL)
    assert not may(publish, subjects.call_event("c1", "call.ended"))
    subscribe = permissions("mcp").subscribe
    assert may(subscribe, subjects.tool("crm_lookup")) and not may(subscribe, subjects.audio_in("c1"))


@pytest.mark.parametrize("subject", [subjects.stt_vocabulary("c1"), subjects.stt_said("c1")])
def test_only_the_agent_tells_the_stt_session_a_callers_words_and_only_stt_hears_them(subject: str) -> None:
    assert {role for role in ROLES if may(permissions(role).publish, subject)} == {"admin", "agent"}
    assert {role for role in ROLES if may(permissions(role).subscribe, subject)} == {"admin", "stt"}


def test_a_gateway_hears_whether_the_roles_a_call_needs_serve_and_nothing_else_of_health() -> None:
    sip = permissions("sip")
    for role in ("stt", "llm", "tts", "agent"):
        assert may(sip.subscribe, subjects.health(role, f"{role}-1"))
    assert not may(sip.subscribe, subjects.health("console", "console-1"))
    assert not may(sip.publish, subjects.health("llm", "llm-1"))  # nobody speaks for the LLM
