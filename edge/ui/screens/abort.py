"""中止 / 不搬送: the reason, chosen in a dialog that says what ending the case does.

Offered on every screen of an open case (``FlowScreen`` adds the 「中止」 button).
Choosing a reason is the confirmation; 「戻る」 leaves the case as it was.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from edge.flow import CLOSURE_REASONS

__all__ = ["AbortDialog"]


class AbortDialog(ModalScreen[str | None]):
    """Which reason (one of ``CLOSURE_REASONS``), or None: not ended."""

    def __init__(self, lang: str, sent: bool) -> None:
        super().__init__()
        self.lang = lang
        self.sent = sent

    def compose(self) -> ComposeResult:
        ja = self.lang != "en"
        if self.sent:
            what = (
                "事案を送った病院には中止と理由を通知します。患者情報は端末から消去します。"
                if ja
                else "The hospitals sent the case are told, with the reason. The device"
                " forgets the patient."
            )
        else:
            what = (
                "病院へは何も送信しません（未送信の事案は破棄）。患者情報は端末から消去します。"
                if ja
                else "Nothing is sent (an unsent case is discarded). The device forgets the"
                " patient."
            )
        with Vertical(id="dialog"):
            yield Static(
                "事案を中止しますか？ 理由を選んでください"
                if ja
                else "End this case? Choose the reason",
                id="pad-title",
            )
            yield Static(what, classes="hint")
            with Grid(id="abort-grid"):
                for i, reason in enumerate(CLOSURE_REASONS):
                    yield Button(reason.pick(self.lang), id=f"abort-{i}", variant="error")
            with Horizontal(classes="dialog-actions"):
                yield Button("戻る（中止しない）" if ja else "Back (keep the case)", id="abort-no")

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        bid = event.button.id or ""
        event.stop()
        if bid.startswith("abort-") and bid != "abort-no":
            self.dismiss(CLOSURE_REASONS[int(bid.removeprefix("abort-"))].ja)
        else:
            self.dismiss(None)
