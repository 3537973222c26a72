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


# What waits in the outbox, each kind by its name: a sealed case, the destination chosen,
# a 中止 (closure).
_KIND = {
    "case": ("事案", "case"),
    "destination": ("搬送先", "destination"),
    "closure": ("中止", "abort"),
}


def waiting_text(view: CaseView, language: str) -> str:
    """送信待ち 0件 / 送信待ち 事案1・搬送先1 (Waiting 0 / Waiting: 1 case, 1 destination)."""
    ja = language != "en"
    kinds = [(k, n) for k, n in view.waiting_by_kind if n]
    if not kinds:
        return f"送信待ち {view.waiting_sealed}件" if ja else f"Waiting {view.waiting_sealed}"
    if ja:
        return "送信待ち " + "・".join(f"{_KIND.get(k, (k, k))[0]}{n}" for k, n in kinds)
    names = [f"{n} {_KIND.get(k, (k, k))[1]}{'' if n == 1 else 's'}" for k, n in kinds]
    return "Waiting: " + ", ".join(names)


def status_text(view: CaseView, language: str) -> str:
    ja = language != "en"
    parts = [
        f"{'リーダー' if ja else 'Reader'} {_MARK[view.reader_ok]}",
        f"{'通信' if ja else 'Network'} {_MARK[view.network_ok]}",
        f"{'プラットフォーム' if ja else 'Platform'} {_MARK[view.platform_ok]}",
        waiting_text(view, language),
    ]
    return "  │  ".join(parts)


class StatusBar(Static):
    """Reader, network, platform, sealed cases waiting."""

    def __init__(self, view: CaseView, language: str) -> None:
        super().__init__(status_text(view, language), id="status")
