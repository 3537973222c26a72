"""The frame of every screen: the notice line, the action bar and the status bar."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, Static

from edge.flow import CaseView, Notice

_MARK = {True: "●", False: "✕", None: "…"}


class NoticeLine(Static):
    """What happened and what to do next (or nothing)."""

    def __init__(self, notice: Notice | None, language: str) -> None:
        text = "" if notice is None else notice.text.pick(language)
        super().__init__(text, id="notice", classes=notice.level if notice else "empty")


class ActionBar(Horizontal):
    """Secondary actions on the left; the primary action always bottom right (``#primary``)."""

    def __init__(self, *secondary: Button, primary: Button | None = None) -> None:
        super().__init__(id="actions")
        self._secondary = secondary
        self._primary = primary

    def compose(self) -> ComposeResult:
        yield from self._secondary
        yield Static(classes="spacer")
        if self._primary is not None:
            self._primary.id = "primary"
            self._primary.variant = "primary"
            yield self._primary


def status_text(view: CaseView, language: str) -> str:
    ja = language != "en"
    parts = [
        f"{'リーダー' if ja else 'Reader'} {_MARK[view.reader_ok]}",
        f"{'通信' if ja else 'Network'} {_MARK[view.network_ok]}",
        f"{'プラットフォーム' if ja else 'Platform'} {_MARK[view.platform_ok]}",
        (
            f"{'送信待ち(封緘)' if ja else 'Sealed waiting'} {view.waiting_sealed}"
            + ("件" if ja else "")
        ),
    ]
    return "  │  ".join(parts)


class StatusBar(Static):
    """Reader, network, platform, sealed cases waiting."""

    def __init__(self, view: CaseView, language: str) -> None:
        super().__init__(status_text(view, language), id="status")
