"""The frame every flow screen shares: title, notice, pinned lines, body, action bar,
status bar.

A screen renders one ``CaseView`` (``self.view``; a new view recomposes it) and
turns button presses into the flow's intents through the app: blocking intents
run in a thread worker (``app.intent``), quick ones at once (``app.now``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.css.query import NoMatches
from textual.reactive import reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Button, Static

from edge.flow import CERTIFICATE_TEXT, CaseView, Stage

from ..widgets import ActionBar, NoticeLine, StatusBar, status_text

if TYPE_CHECKING:
    from ..app import EdgeApp

_BUSY = ("処理中…", "Working…")


class FlowScreen(Screen[None]):
    """One stage of the flow."""

    STAGE: ClassVar[Stage]
    TITLE_JA: ClassVar[str] = ""
    TITLE_EN: ClassVar[str] = ""

    view: reactive[CaseView] = reactive(CaseView(Stage.STANDBY))

    def __init__(self, view: CaseView) -> None:
        super().__init__(classes=f"stage-{self.STAGE.value}")
        self.set_reactive(FlowScreen.view, view)

    @property
    def edge(self) -> EdgeApp:
        return self.app  # type: ignore[return-value]

    @property
    def lang(self) -> str:
        return self.edge.language

    def t(self, ja: str, en: str) -> str:
        return en if self.lang == "en" else ja

    # -- updates: in place when only live values changed ------------------------------

    def structure(self, view: CaseView) -> CaseView:
        """The view without its live values (status bar; a screen may drop more).

        When two views have the same structure the screen is updated in place, so a
        tap that is under way is never lost to a rebuilt button.
        """
        # The card read's progress is shown by the reading screen only, in place.
        return replace(
            view,
            reader_ok=None,
            network_ok=None,
            platform_ok=None,
            waiting_sealed=0,
            waiting_by_kind=(),
            progress=(),
            # 応需状況 moves rows and labels of the hospitals screen only (it keeps the
            # order; the labels update in place); no other screen rebuilds for it.
            hospitals=tuple(
                sorted(
                    (
                        replace(h, availability=(), availability_age_s=None, fit=0)
                        for h in view.hospitals
                    ),
                    key=lambda h: h.id,
                )
            ),
            availability_live=False,
        )

    def watch_view(self, old: CaseView, new: CaseView) -> None:
        if not self.is_mounted:
            return
        if self.structure(old) != self.structure(new):
            self.refresh(recompose=True)
            return
        for bar in self.query(StatusBar):
            bar.update(status_text(new, self.lang))
        try:
            self.update_in_place(new)
        except NoMatches:
            # A rebuild asked for by an earlier change is still on its way (its old
            # widgets are gone, the new ones not mounted yet): it will draw this view.
            # Never let it take the device's screen down.
            self.refresh(recompose=True)

    def update_in_place(self, view: CaseView) -> None:
        """Show the live values of ``view`` without rebuilding (override per screen)."""

    def redraw(self) -> None:
        """Language or theme changed: rebuild."""
        self.refresh(recompose=True)

    # -- what a screen fills in ------------------------------------------------------

    def pinned(self) -> Iterable[Widget]:
        """What stays above the scrolling body (e.g. the summary's consent / identity)."""
        return ()

    def body(self) -> Iterable[Widget]:
        return ()

    def secondary(self) -> list[Button]:
        return []

    def primary(self) -> Button | None:
        return None

    def certificate_mark(self) -> Static | None:
        """Who verified the card's certificate (端末で検証済み / プラットフォームで検証済み /
        端末では未検証 ...); None before a card was read."""
        text = CERTIFICATE_TEXT.get(self.view.certificate_status or "")
        if text is None:
            return None
        warn = self.view.certificate_status in ("not_verified_on_device", "untrusted")
        return Static(
            f"{self.t('証明書', 'Certificate')}: {text.pick(self.lang)}",
            id="certificate-state",
            classes="warning" if warn else None,
        )

    def title_text(self) -> str:
        return self.t(self.TITLE_JA, self.TITLE_EN)

    # -- the frame -------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(self.title_text(), id="title")
        if self.view.busy:
            yield Static(self.t(*_BUSY), id="notice", classes="info")
        else:
            yield NoticeLine(self.view.notice, self.lang)
        yield from self.pinned()
        with VerticalScroll(id="body"):
            yield from self.body()
        primary = self.primary()
        if primary is not None and self.view.busy:
            primary.disabled = True
        secondary = self.secondary()
        if self.view.case_open:
            # 中止 / 不搬送: on every screen of an open case, with or without a card.
            secondary = [
                Button(self.t("中止", "End case"), id="abort", variant="error"),
                *secondary,
            ]
        yield ActionBar(*secondary, primary=primary)
        yield StatusBar(self.view, self.lang)

    def press_abort(self) -> None:
        """中止: the reason dialog; a reason ends the case (``CaseFlow.abort``)."""
        from .abort import AbortDialog

        def chosen(reason: str | None) -> None:
            if reason is not None:
                self.edge.intent(self.edge.flow.abort, reason)

        sent = any(h.sent for h in self.view.hospitals)
        self.app.push_screen(AbortDialog(self.lang, sent), chosen)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        bid = event.button.id or ""
        handler: Callable[[], Any] | None = getattr(self, "press_" + bid.replace("-", "_"), None)
        if handler is not None:
            event.stop()
            handler()
        elif "-" in bid:
            # Rows of choices: "cc-3", "h-1", "dest-0", "jcs-10" ... -> press_cc("3")
            kind, _, arg = bid.partition("-")
            indexed: Callable[[str], Any] | None = getattr(self, "press_" + kind, None)
            if indexed is not None:
                event.stop()
                indexed(arg)
