"""Standby, reading and card problems."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from textual.widget import Widget
from textual.widgets import Button, Static

from edge.flow import CaseView, Stage

from ._base import FlowScreen

_STEPS = (
    ("token", "カード種別", "token type"),
    ("certificate", "証明書の読み取り・検証", "certificate read and checked"),
    ("signature", "暗証番号による署名", "PIN signature"),
    ("attributes", "券面事項の確認", "attributes verified"),
)
_TOKEN = {
    "card": ("マイナンバーカード", "My Number card"),
    "android": ("スマートフォン（Android）", "Android phone"),
    "iphone": ("スマートフォン（iPhone）", "iPhone"),
}


def token_text(token: str | None, lang: str) -> str:
    ja, en = _TOKEN.get(token or "", ("", ""))
    return en if lang == "en" else ja


class StandbyScreen(FlowScreen):
    STAGE = Stage.STANDBY
    TITLE_JA = "マイナ救急"
    TITLE_EN = "Myna Emergency"

    @property
    def starting(self) -> bool:
        """The flow is still opening (cold start): no tap is taken yet, so none is asked."""
        return self.edge.opened_flow is None

    def _prompt(self) -> tuple[str, str]:
        if self.starting:
            return (
                self.t("起動中…", "Starting…"),
                self.t(
                    "カードリーダーと端末の鍵を準備しています。しばらくお待ちください。",
                    "Getting the card reader and the device key ready. Please wait.",
                ),
            )
        return (
            self.t("カードをタッチしてください", "Tap the card or phone"),
            self.t(
                "マイナンバーカードまたはスマートフォンをリーダーにかざしてください。",
                "Hold the My Number card or the phone on the reader.",
            ),
        )

    def body(self) -> Iterable[Widget]:
        prompt, hint = self._prompt()
        yield Static(prompt, id="tap-prompt")
        yield Static(hint, id="tap-hint", classes="hint")
        if self.view.card_left_on_reader:
            yield Static(
                self.t(
                    "前の事案のカードがリーダーに置かれたままです。取り外してください。",
                    "The card of the last case is still on the reader. Take it away.",
                ),
                id="card-left",
                classes="warning",
            )

    def secondary(self) -> list[Button]:
        out = []
        if self.view.case_open:
            out.append(Button(self.t("戻る", "Back"), id="back"))
        else:
            out.append(Button("English" if self.lang != "en" else "日本語", id="lang"))
            out.append(Button(self.t("多数傷病者", "Mass casualty"), id="incident"))
            out.append(
                Button(
                    self.t("夜間表示", "Night")
                    if self.edge.theme_name == "day"
                    else self.t("昼間表示", "Day"),
                    id="theme",
                )
            )
        return out

    def primary(self) -> Button | None:
        if self.view.case_open:
            return None
        return Button(self.t("カードなしで開始", "Start without card"), disabled=self.starting)

    def update_in_place(self, view: CaseView) -> None:
        prompt, hint = self._prompt()
        self.query_one("#tap-prompt", Static).update(prompt)
        self.query_one("#tap-hint", Static).update(hint)
        for button in self.query("#primary").results(Button):
            button.disabled = self.starting or view.busy

    def press_primary(self) -> None:
        self.edge.now(self.edge.flow.start_without_card)

    def press_back(self) -> None:
        self.edge.now(self.edge.flow.back_to_case)

    def press_incident(self) -> None:
        """多数傷病者: its screen, loaded now (not with the standby screen)."""
        from .incident import IncidentScreen

        self.app.push_screen(IncidentScreen())

    def press_lang(self) -> None:
        self.edge.action_toggle_language()

    def press_theme(self) -> None:
        self.edge.action_toggle_theme()


class ReadingScreen(FlowScreen):
    STAGE = Stage.READING
    TITLE_JA = "読み取り中 — カードを離さないでください"
    TITLE_EN = "Reading — keep the card on the reader"

    def structure(self, view: CaseView) -> CaseView:
        # Each step read and the token type found update the lines in place: a
        # rebuilt screen per APDU step cost more than the step itself.
        return replace(super().structure(view), token_type=None)

    def body(self) -> Iterable[Widget]:
        for key, ja, en in _STEPS[:2]:
            done = key in self.view.progress
            yield Static(
                self._step_text(done, ja, en),
                id=f"step-{key}",
                classes="step done" if done else "step",
            )
        token = Static(token_text(self.view.token_type, self.lang), id="token-type", classes="hint")
        token.display = bool(self.view.token_type)
        yield token

    def _step_text(self, done: bool, ja: str, en: str) -> str:
        return f"{'✓' if done else '…'} {self.t(ja, en)}"

    def update_in_place(self, view: CaseView) -> None:
        for key, ja, en in _STEPS[:2]:
            done = key in view.progress
            step = self.query_one(f"#step-{key}", Static)
            step.update(self._step_text(done, ja, en))
            step.set_class(done, "done")
        token = self.query_one("#token-type", Static)
        token.update(token_text(view.token_type, self.lang))
        token.display = bool(view.token_type)


class CardProblemScreen(FlowScreen):
    STAGE = Stage.CARD_PROBLEM
    TITLE_JA = "カードを読み取れませんでした"
    TITLE_EN = "The card could not be read"

    def secondary(self) -> list[Button]:
        return [Button(self.t("カードなしで続ける", "Go on without card"), id="no-card")]

    def primary(self) -> Button | None:
        return Button(self.t("もう一度タッチ", "Tap again"))

    def press_primary(self) -> None:
        self.edge.now(self.edge.flow.retap)

    def press_no_card(self) -> None:
        self.edge.now(self.edge.flow.back_to_case)
