"""Agent profiles: picked by the number called, merged over [agent], and wrong ones refused in
one line (the shipped clinic profile among them)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from voxbus.config import Settings
from voxbus.profiles import ProfileError, Profiles

CLINIC_TOML = Path(__file__).resolve().parents[2] / "examples" / "clinic" / "voxbus.toml"


def settings(tmp_path: Path, **fields: object) -> Settings:
    return Settings(data_dir=tmp_path, **fields)  # type: ignore[arg-type]


def test_the_number_called_picks_the_agent_and_others_get_the_base(tmp_path: Path) -> None:
    clinic = tomllib.loads(CLINIC_TOML.read_text())["agents"]
    profiles = Profiles(settings(tmp_path, agents=clinic))
    name, agent, profile = profiles.pick("2000")
    assert name == "clinic" and profile is not None and "+15550002000" in profile.numbers
    assert agent.start_tool == "find_patient" and agent.tools and agent.max_call_s == 600
    assert agent.request_timeout_s == profiles.base.request_timeout_s  # not overridden: the base's
    assert profiles.pick("+15550002000")[0] == "clinic"
    assert profiles.pick("3000") == ("", profiles.base, None)


def test_profiles_come_from_a_folder_of_files_too(tmp_path: Path) -> None:
    folder = tmp_path / "agents"
    folder.mkdir()
    (folder / "sales.toml").write_text('numbers = ["4000"]\n[agent]\ngreeting = "Sales, hello."\n')
    name, agent, _ = Profiles(settings(tmp_path, agents_dir=folder)).pick("4000")
    assert (name, agent.greeting) == ("sales", "Sales, hello.")


@pytest.mark.parametrize(
    ("files", "why"),
    [
        ({"a.toml": 'numbers = ["1"]', "b.toml": 'numbers = ["1"]'}, "claimed by agents a and b"),
        ({"a.toml": 'numbers = ["1"]\n[agent]\ngreting = "typo"'}, "agent.greting"),
        ({"a.toml": "[agent]\nmax_tokens = -3"}, "agent.max_tokens"),
        ({"a.toml": "numbers = [1"}, "not TOML"),
        ({"a.toml": 'number = ["1"]'}, "number"),
    ],
)
def test_a_wrong_profile_is_refused_in_one_line(tmp_path: Path, files: dict[str, str], why: str) -> None:
    folder = tmp_path / "agents"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    with pytest.raises(ProfileError, match=why) as refused:
        Profiles(settings(tmp_path, agents_dir=folder))
    assert "\n" not in str(refused.value)


def test_an_agents_prompt_is_warmed_with_the_tools_its_calls_are_offered(tmp_path: Path) -> None:
    from voxbus.actors.prewarm import offered

    clinic = tomllib.loads(CLINIC_TOML.read_text())["agents"]
    agent = Profiles(settings(tmp_path, agents=clinic)).pick("2000")[1]
    found = {
        n: {"type": "function", "function": {"name": n}}
        for n in ("reschedule", "find_patient", "book", "hang_up")
    }
    names = [t["function"]["name"] for t in offered(agent, found)]
    assert names == ["book", "reschedule", "transfer_to_human", "hang_up"]  # as a call offers them


def test_every_agents_prompt_is_sent_again_when_an_llm_worker_starts_serving(tmp_path: Path) -> None:
    from voxbus.actors.prewarm import PromptWarmer
    from voxbus.schemas.messages import Heartbeat

    clinic = tomllib.loads(CLINIC_TOML.read_text())["agents"]
    warmer = PromptWarmer(Profiles(settings(tmp_path, agents=clinic)))
    found = {"reschedule": {"type": "function", "function": {"name": "reschedule"}}}
    first = [name for name, _ in warmer.due(found)]
    assert first == ["", "clinic"] and warmer.due(found) == []  # sent once while nothing changes

    def beat(pid: int) -> Heartbeat:
        return Heartbeat(role="llm", worker_id="llm-1", pid=pid)

    assert warmer.llm_serving(beat(100)) and not warmer.llm_serving(beat(100))
    assert [name for name, _ in warmer.due(found)] == first  # a worker serving: its cache is empty
    assert warmer.due(found) == []
    assert warmer.llm_serving(beat(101))  # restarted: a new process
    assert len(warmer.due(found)) == 2
