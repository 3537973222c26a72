"""The edge app: renders the case flow's state and sends it the crew's intents.

No protocol or network code here: the flow (``edge.flow``) does the work. Blocking
intents run in thread workers; the flow's changes come back as ``FlowChanged``
messages (``post_message`` is thread-safe) and the app re-reads the flow's view.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.cells import cell_len
from textual.app import App
from textual.binding import Binding
from textual.message import Message
from textual.screen import ModalScreen
from textual.theme import Theme
from textual.widgets import Button, Static

from edge.flow import CaseView, Stage

from .screens import FlowScreen, StandbyScreen, screen_for
from .screens.setup import Finding, SetupProblem, SetupScreen

if TYPE_CHECKING:
    from edge.flow import CaseFlow

__all__ = ["EdgeApp", "SetupApp"]

DAY = Theme(
    name="kyukyu-day",
    primary="#0046AD",
    secondary="#005A32",
    warning="#8A4B00",
    error="#B00020",
    success="#006B2E",
    accent="#0046AD",
    foreground="#000000",
    background="#FFFFFF",
    surface="#F2F2F2",
    panel="#E0E6F0",
    dark=False,
)
NIGHT = Theme(
    name="kyukyu-night",
    primary="#FFB000",
    secondary="#7FD1FF",
    warning="#FFB000",
    error="#FF5C5C",
    success="#5CFF8A",
    accent="#FFB000",
    foreground="#FFFFFF",
    background="#000000",
    surface="#101010",
    panel="#202020",
    dark=True,
)
THEMES = {"day": DAY, "night": NIGHT}
# The summary look-up's screen (取得中) shows only when the answer takes longer than this.
LOOKUP_SCREEN_AFTER_S = 0.3
# A reader that failed (pcscd not running, the reader unplugged, none configured) is
# asked again after this long, not at once in a loop that takes the CPU from the screen.
READER_RETRY_S = 1.0


@dataclass
class FlowChanged(Message):
    """The flow moved on (sent from whichever thread changed it)."""

    view: CaseView


class FlowNotOpen(RuntimeError):
    """The app's flow is still opening (or could not open): no intent can run yet."""


class OpenFailed(Exception):
    """What ``opener`` raises when the device cannot start a case: the screen says why."""

    def __init__(self, problem: SetupProblem, line: str = "") -> None:
        super().__init__(line or problem.kind)
        self.problem = problem
        self.line = line  # one line for the log / stderr (never a secret)


class EdgeApp(App[None]):
    """The paramedic's touchscreen."""

    CSS_PATH = "edge.tcss"
    TITLE = "マイナ救急"
    BINDINGS: ClassVar[list[Binding]] = [  # type: ignore[assignment]
        Binding("f2", "toggle_language", "日本語/English"),
        Binding("f3", "toggle_theme", "昼/夜"),
    ]

    def __init__(
        self,
        flow: CaseFlow | None = None,
        *,
        opener: Callable[[], CaseFlow] | None = None,
        diagnose: Callable[[], Sequence[Finding]] | None = None,
        language: str = "ja",
        theme: str = "day",
        idle_timeout_s: float = 300.0,
        watch_cards: bool = True,
        layout_file: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        start_flow: bool = False,
    ) -> None:
        """``flow``: the device's flow, open; or ``opener``, which opens it (the device
        key, JPKI roots, card reader, outbox) in a thread once the standby screen is on
        the display: until then the screen says 起動中… and takes no tap; when it raises
        ``OpenFailed`` the screen becomes 設定に誤り with ``diagnose``'s findings.
        ``start_flow``: start the flow's background work (sending, answers) once the
        first screen is on the display, not before (cold start: it would take the CPU
        the first screen needs); for a flow not yet started."""
        super().__init__()
        if (flow is None) == (opener is None):
            raise ValueError("EdgeApp needs a flow or an opener, not both")
        self._flow = flow
        self.opener = opener
        self.diagnose = diagnose
        # Set once the flow is open and the standby screen invites a tap.
        self.ready = threading.Event()
        # Why the flow could not open (the screen says it; the command logs the line).
        self.open_failed: OpenFailed | None = None
        # Set when the findings of a failed open (設定に誤り) are on screen.
        self.diagnosed = threading.Event()
        self.language = language
        self.theme_name = theme
        self.idle_timeout_s = idle_timeout_s
        self.watch_cards = watch_cards
        # The idle timeout's clock (seconds, monotonic); tests give a fake one and move it.
        self.clock = clock
        self.last_input = clock()
        self._busy = threading.Event()
        self._stop = threading.Event()
        self._flow_screen: FlowScreen | None = None
        self._lookup_timer = False
        self.standby_shown = threading.Event()
        # Kiosk calibration and browser tests: where each button is, in cells (no text).
        self.layout_file = layout_file
        self.start_flow = start_flow
        # Set once the first screen has been drawn (and the flow started, if asked).
        self.first_frame = threading.Event()

    # -- life -------------------------------------------------------------------------

    @property
    def flow(self) -> CaseFlow:
        """The device's flow (``FlowNotOpen`` while it is opening or when it failed)."""
        if self._flow is None:
            raise FlowNotOpen("the case flow is not open yet / 起動中です")
        return self._flow

    @property
    def opened_flow(self) -> CaseFlow | None:
        """The flow if it is open (the command closes it when the app ends)."""
        return self._flow

    def on_mount(self) -> None:
        for theme in THEMES.values():
            self.register_theme(theme)
        self.theme = THEMES[self.theme_name].name
        self.set_interval(1.0, self.forget_if_idle)
        if self.layout_file is not None:
            self.set_interval(0.2, self._write_layout)
        if self._flow is None:
            # Cold start: the standby screen first (起動中…), the flow after it.
            self._switch(CaseView(Stage.STANDBY))
            return
        self._flow_opened(self._flow)

    def _flow_opened(self, flow: CaseFlow) -> None:
        self._flow = flow  # here, on the app's thread: the screen and the flow agree
        flow.subscribe(self._flow_changed)
        starting = self._flow_screen
        view = flow.view()
        self._show(view)
        if isinstance(starting, StandbyScreen) and starting is self._flow_screen:
            # 起動中… becomes the invitation in place (no second build of the screen).
            starting.update_in_place(starting.view)
        if view.stage is Stage.STANDBY:
            self.standby_shown.set()
        if self.watch_cards:
            self.run_worker(self._watch_cards, thread=True, group="card", name="card-watch")
        if self.start_flow:
            # Sending and the answer stream (httpx and its first requests) start once
            # the invitation is drawn: they would delay it on a Pi-class CPU.
            self.screen.call_after_refresh(flow.start)
        self.ready.set()

    def _open_flow(self) -> None:
        """Thread worker: open the flow (imports the card layer, loads the keys)."""
        assert self.opener is not None
        try:
            flow = self.opener()
        except OpenFailed as exc:
            self.call_from_thread(self._show_open_failed, exc)
            return
        if self._stop.is_set():  # the app ended while it opened
            flow.close()
            return
        try:
            self.call_from_thread(self._flow_opened, flow)
        except BaseException:
            flow.close()  # the app ended: nobody else would close it
            raise

    def _show_open_failed(self, failed: OpenFailed) -> None:
        self.open_failed = failed
        self._flow_screen = None
        self.switch_screen(SetupScreen(failed.problem, self.diagnose))

    def on_unmount(self) -> None:
        self._stop.set()
        if self._flow is not None:
            self._flow.cancel_wait()

    def _watch_cards(self) -> None:
        """Card watcher: while the flow stands by, wait for a tap (cancelled by any intent)."""
        while not self._stop.is_set():
            standby, _ = self.flow.standing_by()
            if standby and not self._busy.is_set():
                tapped = self.flow.wait_for_card(timeout=2.0)
                if not tapped and self.flow.standing_by()[1] is False:
                    self._stop.wait(READER_RETRY_S)
            else:
                self._stop.wait(0.05)

    def _write_layout(self) -> None:
        """Stage, size and button regions of what is on screen; ids and numbers only."""
        assert self.layout_file is not None
        buttons = {}
        for b in self.screen.query(Button):
            r = b.region
            if b.id and r.width and r.height:
                buttons[b.id] = [r.x, r.y, r.width, r.height]
        # The hospital rows' states as their style classes (accept, decline reason-2 ...).
        states = {
            w.id: sorted(w.classes)
            for w in self.screen.query(".answer, .avail")
            if w.id and w.id.startswith(("answer-", "avail-"))
        }
        title: dict[str, Any] = {}
        for t in self.screen.query("#title"):
            # Where the title is and how many cells its text takes (kiosk fit tests).
            text = str(t.render()) if isinstance(t, Static) else ""
            title = {"region": list(t.region), "text_cells": cell_len(text)}
        doc = {
            "pid": os.getpid(),  # which session (each browser session is a process)
            "stage": self._flow.view().stage.value if self._flow else "starting",
            "title": title,
            "busy": self.busy,
            "modal": isinstance(self.screen, ModalScreen),
            "size": [self.size.width, self.size.height],
            "buttons": buttons,
            "states": states,
            # The hospital rows' ids in screen order (応需状況 orders them).
            "hospitals": [h.id for h in self._flow.view().hospitals] if self._flow else [],
        }
        tmp = self.layout_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc), encoding="utf-8")
        os.replace(tmp, self.layout_file)

    # -- flow -> screen ---------------------------------------------------------------

    def _flow_changed(self, view: CaseView) -> None:
        self.post_message(FlowChanged(view))

    def on_flow_changed(self, message: FlowChanged) -> None:
        self._show(self.flow.view())  # the newest, whatever order messages came in

    def _show(self, view: CaseView) -> None:
        current = self._flow_screen
        if current is not None and current.STAGE is view.stage:
            current.view = view  # recomposes only when something shown changed
            return
        if view.stage is Stage.LOOKING_UP and current is not None:
            # The look-up usually answers within tens of milliseconds: building the
            # 取得中 screen only for it to be replaced delays the summary (a whole screen
            # build, 0.1-0.2 s on a Pi-class CPU). The tapped screen stays (the intent
            # runs: taps are ignored) and 取得中 shows only if the answer takes longer.
            if not self._lookup_timer:
                self._lookup_timer = True
                self.set_timer(LOOKUP_SCREEN_AFTER_S, self._show_lookup_if_still)
            return
        self._switch(view)

    def _switch(self, view: CaseView) -> None:
        current = self._flow_screen
        while isinstance(self.screen, ModalScreen):
            self.pop_screen()
        screen = screen_for(view)
        if current is None:
            self.push_screen(screen)
            # Runs when the pushed screen is idle after its first refresh (Textual's
            # call_after_refresh goes to the screen's after-repaint callbacks).
            screen.call_after_refresh(self._after_first_frame)
        else:
            self.switch_screen(screen)
        self._flow_screen = screen
        if view.stage is Stage.STANDBY and self._flow is not None:
            self.standby_shown.set()

    def _after_first_frame(self) -> None:
        """What the first screen does not need, once it is drawn."""
        if self.first_frame.is_set():
            return
        self.first_frame.set()
        if self._flow is None:
            self.run_worker(self._open_flow, thread=True, group="open", name="open-flow")
        elif self.start_flow:
            self._flow.start()

    def _show_lookup_if_still(self) -> None:
        self._lookup_timer = False
        view = self.flow.view()
        current = self._flow_screen
        if view.stage is Stage.LOOKING_UP and (current is None or current.STAGE is not view.stage):
            self._switch(view)

    def rerender(self) -> None:
        """Language or theme changed: draw the same view again."""
        if self._flow_screen is not None:
            self._flow_screen.redraw()

    # -- intents ----------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """An intent is running: taps are ignored until it ends (a double tap is one tap)."""
        return self._busy.is_set()

    def intent(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run a blocking intent in a thread worker; one at a time (a double tap is one tap)."""
        if self._busy.is_set():
            return
        self._busy.set()
        self.flow.cancel_wait()

        def run() -> None:
            try:
                fn(*args, **kwargs)
            finally:
                self._busy.clear()

        self.run_worker(run, thread=True, group="flow", name=getattr(fn, "__name__", "intent"))

    def now(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """A quick intent (no card, no network): run it here."""
        if self._busy.is_set():
            return
        fn(*args, **kwargs)

    # -- input, idle, toggles ---------------------------------------------------------

    def on_event(self, event: Any) -> Any:
        from textual import events

        if isinstance(event, (events.Key, events.MouseDown)):
            self.last_input = self.clock()
        return super().on_event(event)

    def forget_if_idle(self) -> bool:
        """Forget an open case after ``idle_timeout_s`` without input (runs every second).

        True when it forgot the case. The time is ``clock``'s, so a test moves a fake
        clock past the limit and calls this (or waits for the timer) instead of sleeping.
        """
        if self._flow is None:
            return False
        view = self._flow.view()
        if not view.case_open or self._busy.is_set():
            return False
        if self.clock() - self.last_input >= self.idle_timeout_s:
            # Nothing about the patient stays on screen.
            self.flow.forget()
            return True
        return False

    def action_toggle_language(self) -> None:
        self.language = "en" if self.language == "ja" else "ja"
        self.rerender()

    def action_toggle_theme(self) -> None:
        self.theme_name = "night" if self.theme_name == "day" else "day"
        self.theme = THEMES[self.theme_name].name
        self.rerender()


class SetupApp(App[None]):
    """The screen of a device that cannot start a case (not enrolled, settings wrong).

    It stays open (the kiosk shows it instead of a browser error) until someone quits;
    ``diagnose`` runs ``kyukyu doctor``'s checks (given by the command: no I/O here).
    """

    CSS_PATH = "edge.tcss"
    TITLE = "マイナ救急"

    def __init__(
        self,
        problem: SetupProblem,
        *,
        diagnose: Callable[[], Sequence[Finding]] | None = None,
        language: str = "ja",
        theme: str = "day",
    ) -> None:
        super().__init__()
        self.problem = problem
        self.diagnose = diagnose
        self.language = language
        self.theme_name = theme
        # Set each time the findings are on screen (tests wait on it).
        self.diagnosed = threading.Event()

    def on_mount(self) -> None:
        for theme in THEMES.values():
            self.register_theme(theme)
        self.theme = THEMES[self.theme_name].name
        self.push_screen(SetupScreen(self.problem, self.diagnose))
