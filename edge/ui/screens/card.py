"""Standby, reading and card problems."""

from __future__ import annotations

from collections.abc import Iterable

from textual.widget import Widget
from textual.widgets import Button, Static

from edge.flow import Stage

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

    def body(self) -> Iterable[Widget]:
        yield Static(
            self.t("カードをタッチしてください", "Tap the card or phone"),
            id="tap-prompt",
        )
        yield Static(
            self.t(
                "マイナンバーカードまたはスマートフォンをリーダーにかざしてください。",
                "Hold the My Number card or the phone on the reader.",
            ),
            classes="hint",
        )

    def secondary(self) -> list[Button]:
        out = []
        if self.view.case_open:
            out.append(Button(self.t("戻る", "Back"), id="back"))
        else:
            out.append(Button("English" if self.lang != "en" else "日本語", id="lang"))
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
        return Button(self.t("カードなしで開始", "Start without card"))

    def press_primary(self) -> None:
        self.edge.now(self.edge.flow.start_without_card)

    def press_back(self) -> None:
        self.edge.now(self.edge.flow.back_to_case)

    def press_lang(self) -> None:
        self.edge.action_toggle_language()

    def press_theme(self) -> None:
        self.edge.action_toggle_theme()


class ReadingScreen(FlowScreen):
    STAGE = Stage.READING
    TITLE_JA = "読み取り中 — カードを離さないでください"
    TITLE_EN = "Reading — keep the card on the reader"

    def body(self) -> Iterable[Widget]:
        done = set(self.view.progress)
        for key, ja, en in _STEPS[:2]:
            mark = "✓" if key in done else "…"
            yield Static(f"{mark} {self.t(ja, en)}", classes="step done" if key in done else "step")
        if self.view.token_type:
            yield Static(token_text(self.view.token_type, self.lang), classes="hint")


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
