"""The terminal console's keyboard (Textual's own test harness, a stand-in bus): text typed right
after a hotkey goes into the box that the hotkey opened, even when the keys arrive in one read
before the box has been drawn; a letter that is also a hotkey ("h": hang up) is text there; a
refresh after the widgets are gone (the app closing) does nothing."""

from __future__ import annotations

from typing import Any

import pytest
from textual import events
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from voxbus.console import terminal
from voxbus.console.terminal import TerminalConsole
from voxbus.schemas.messages import OperatorCommand


class QuietBus:
    """Subscriptions that never deliver anything: these tests are about keys."""

    async def subscribe(self, *_args: Any, **_kwargs: Any) -> None:
        return None


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[OperatorCommand]:
    commands: list[OperatorCommand] = []

    async def record(_bus: Any, command: OperatorCommand) -> None:
        commands.append(command)

    monkeypatch.setattr(terminal, "ask_call_actor", record)
    return commands


@pytest.fixture
def app() -> TerminalConsole:
    return TerminalConsole(QuietBus(), "tess", lambda text: text)  # type: ignore[arg-type]


async def typed_on_a_call(app: TerminalConsole, pilot: Pilot[None], text: str) -> None:
    """With a call selected, keys as one read from the terminal delivers them: all queued before
    any is handled."""
    app.selected = "call-1"
    for char in text:
        app.post_message(events.Key(char, char))
    await pilot.pause()


async def test_a_note_typed_at_once_after_its_hotkey_goes_into_the_box(
    app: TerminalConsole, sent: list[OperatorCommand]
) -> None:
    async with app.run_test() as pilot:
        await typed_on_a_call(app, pilot, "ghold on")
        assert app.query_one(Input).value == "hold on"
        assert sent == []  # the "h" of "hold" did not hang up
        await pilot.press("enter")
        await pilot.pause()
    assert [(c.action, c.text) for c in sent] == [("guide", "hold on")]


async def test_escape_closes_the_box_and_sends_nothing(
    app: TerminalConsole, sent: list[OperatorCommand]
) -> None:
    async with app.run_test() as pilot:
        await typed_on_a_call(app, pilot, "shi")
        await pilot.press("escape")
        await pilot.pause()
        assert app.pending is None and not app.query_one(Input).display
        await pilot.press("enter")
        await pilot.pause()
    assert sent == []


async def test_a_refresh_while_the_app_closes_is_nothing(app: TerminalConsole) -> None:
    """The one-second refresh (or a bus event) can come after the app's widgets are gone: under
    load it did, and the console failed with NoMatches on its way out."""
    async with app.run_test() as pilot:
        await app.query_one(DataTable).remove()
        await pilot.pause()
        app._refresh()
