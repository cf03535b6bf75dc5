"""``voxbus console``: the operator console in a terminal, for a server without a browser.

The live calls in a table (the same :class:`~voxbus.console.live.LiveCalls` as the web console,
fed by the call events and the agents' heartbeats), the highlighted call's transcript as it
happens, and the same steps in: ``h`` hang up, ``t`` transfer, ``s`` say, ``g`` guide. It speaks
to the bus directly with the operator's bus credential (``voxbus creds operator``); the operator's
name on each action is ``--operator`` (default: the login name). Textual draws it.
"""

from __future__ import annotations

import time
from typing import Any

from nats.aio.msg import Msg
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.widgets import DataTable, Footer, Header, Input, RichLog, Static

from voxbus.bus import subjects
from voxbus.bus.connection import Bus
from voxbus.console.history import call_events_so_far
from voxbus.console.live import LiveCalls
from voxbus.console.operate import ask_call_actor
from voxbus.privacy import Redactor
from voxbus.schemas.events import (
    BargeIn,
    Event,
    OperatorActed,
    SttFinal,
    ToolFailed,
    ToolResult,
    TransferReturned,
    TransferSummary,
    TtsRequested,
)
from voxbus.schemas.messages import Heartbeat, OperatorCommand

COLUMNS = ("call", "caller", "called", "agent", "state", "duration", "last turn")


def transcript_line(event: Event, redact: Any) -> str | None:
    """One event as a transcript line, or None when it is not one."""
    match event:
        case SttFinal(text=text) if text.strip():
            return f"[b]caller[/b]  {redact(text.strip())}"
        case TtsRequested(text=text) if text.strip():
            return f"[b blue]agent[/b blue]   {redact(text.strip())}"
        case BargeIn(decision="interrupt"):
            return "[red]        (interrupted by the caller)[/red]"
        case BargeIn(text=text) if text:
            return f"[dim]caller  {redact(text)} (backchannel)[/dim]"
        case ToolResult() | ToolFailed():
            outcome = "done" if isinstance(event, ToolResult) else event.failure
            return f"[magenta]tool    {event.name}: {outcome}[/magenta]"
        case OperatorActed():
            refused = "" if event.ok else f" (refused: {event.reason})"
            return f"[magenta]{event.operator}  {event.action} {event.text}{refused}[/magenta]"
        case TransferSummary():
            return f"[yellow]handover  {redact(event.summary)}[/yellow]"
        case TransferReturned():
            return f"[yellow]handover  not answered ({event.code}): back to the agent[/yellow]"
    return None


class TerminalConsole(App[None]):
    TITLE = "voxbus console"
    # Priority bindings act as their key is read, not once it has bubbled up from the call list:
    # the keys typed right after "g" are then already read into the box it opened, not into the
    # call list and its hotkeys ("h" of "hold on" hanging up). check_action keeps them as text.
    BINDINGS = [
        Binding("h", "step_in('hangup')", "Hang up", priority=True),
        Binding("t", "step_in('transfer')", "Transfer", priority=True),
        Binding("s", "ask_text('say')", "Say", priority=True),
        Binding("g", "ask_text('guide')", "Guide", priority=True),
        Binding("q", "quit", "Quit", priority=True),
        Binding("escape", "close_text", "Close"),
    ]
    CSS = (
        "#calls { height: 40%; } #transcript { height: 1fr; } #status { height: 1; } #text { display: none; }"
    )

    def __init__(self, bus: Bus, operator: str, redact: Any) -> None:
        super().__init__()
        self.bus, self.operator, self.redact = bus, operator, redact
        self.live = LiveCalls(redact, lambda _id: None)
        self.selected: str | None = None
        self.pending: str | None = None  # "say" or "guide" while its text is typed
        self.loading: list[Event] | None = None  # live events of the selected call while its history loads

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="calls", cursor_type="row")
        yield RichLog(id="transcript", markup=True, wrap=True)
        yield Input(id="text")
        yield Static("", id="status")
        yield Footer()

    async def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(*COLUMNS)
        await self.bus.subscribe(subjects.ALL_CALL_EVENTS, None, self._on_event)
        await self.bus.subscribe(subjects.ALL_HEALTH, Heartbeat, self._on_heartbeat)
        self.set_interval(1.0, self._refresh)

    async def _on_event(self, event: Event, _msg: Msg) -> None:
        self.live.on_event(event, time.time())
        if getattr(event, "call_id", None) == self.selected:
            if self.loading is not None:  # its history is being read: written after it
                self.loading.append(event)
            elif line := transcript_line(event, self.redact):
                self.query_one(RichLog).write(line)
        self._refresh()

    async def _on_heartbeat(self, beat: Heartbeat, _msg: Msg) -> None:
        self.live.on_heartbeat(beat, time.time())

    def _refresh(self) -> None:
        now = time.time()
        self.live.sweep(now)
        try:
            table = self.query_one(DataTable)
        except NoMatches:  # the app is closing: its widgets are gone before its timer and the bus
            return
        calls = self.live.snapshot()
        table.clear()
        for call in calls:
            seconds = int(now - call.started)
            latency = "-" if call.last_latency_ms is None else f"{call.last_latency_ms:.0f} ms"
            row = (call.call_id, call.caller, call.called, call.agent or "default", call.state)
            table.add_row(*row, f"{seconds // 60}:{seconds % 60:02d}", latency, key=call.call_id)
        if self.selected in self.live.calls:
            table.move_cursor(row=[c.call_id for c in calls].index(self.selected))
        elif calls:
            self._select(calls[0].call_id)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value and event.row_key.value != self.selected:
            self._select(str(event.row_key.value))

    def _select(self, call_id: str) -> None:
        self.selected = call_id
        self.loading = []
        log = self.query_one(RichLog)
        log.clear()
        log.write(f"[dim]call {call_id}[/dim]")
        self.run_worker(self._load_history(call_id), exclusive=True, group="history")

    async def _load_history(self, call_id: str) -> None:
        """What was said before the call was opened, then what arrived meanwhile (by time)."""
        try:
            events = await call_events_so_far(self.bus, call_id)
        except Exception as exc:  # no stream access (a credential without it): live lines only
            events = []
            self.query_one("#status", Static).update(f"no history for {call_id}: {exc}")
        if self.selected != call_id:
            return
        log = self.query_one(RichLog)
        for event in events:
            if line := transcript_line(event, self.redact):
                log.write(line)
        until = max((e.ts for e in events), default=0.0)
        waiting, self.loading = self.loading or [], None
        for event in waiting:
            if event.ts > until and (line := transcript_line(event, self.redact)):
                log.write(line)

    def action_ask_text(self, action: str) -> None:
        if self.selected is None:
            return
        self.pending = action
        box = self.query_one(Input)
        box.placeholder = "what the agent says next" if action == "say" else "a note for the agent only"
        box.styles.display = "block"
        self.screen.set_focus(box)  # at once: Widget.focus() waits for the keys already read

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """While a text is typed, letters are text: no hotkey but Escape acts."""
        return self.pending is None or action == "close_text"

    def action_close_text(self) -> None:
        self._close_text()

    def _close_text(self) -> str | None:
        box = self.query_one(Input)
        box.styles.display = "none"
        box.value = ""
        self.screen.set_focus(self.query_one(DataTable))
        action, self.pending = self.pending, None
        return action

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value
        action = self._close_text()
        if action and text.strip():
            await self.action_step_in(action, text)

    async def action_step_in(self, action: str, text: str = "") -> None:
        status = self.query_one("#status", Static)
        if self.selected is None:
            status.update("no call selected")
            return
        command = OperatorCommand(call_id=self.selected, operator=self.operator, action=action, text=text)  # type: ignore[arg-type]
        refused = await ask_call_actor(self.bus, command)
        status.update(f"{action}: {'done' if refused is None else refused}")


async def run_terminal(url: str, creds: Any, operator: str, redact_patterns: list[str]) -> int:
    redact = Redactor(redact_patterns)
    bus = Bus(url, name="voxbus-console-terminal", source=f"console/{operator}", creds=creds)
    await bus.connect(attempts=5)
    try:
        await TerminalConsole(bus, operator, redact).run_async()
    finally:
        await bus.close()
    return 0
