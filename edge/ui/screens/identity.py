"""Consent and identity: oral consent / unconscious / refused; face check, PIN or 照合番号B."""

from __future__ import annotations

from collections.abc import Iterable

from textual.widget import Widget
from textual.widgets import Button, Static

from edge.flow import CONSENT_TEXT, Consent, IdentityMethod, Stage

from ..widgets import NumPad
from ._base import FlowScreen
from .card import token_text


class ConsentScreen(FlowScreen):
    STAGE = Stage.CONSENT
    TITLE_JA = "同意の確認"
    TITLE_EN = "Consent"

    def body(self) -> Iterable[Widget]:
        yield Static(
            self.t(
                f"{token_text(self.view.token_type, 'ja')}を読み取りました。"
                "医療情報の閲覧について確認してください。",
                f"{token_text(self.view.token_type, 'en')} read. "
                "Ask about viewing the medical data.",
            ),
            classes="hint",
        )
        yield Button(
            CONSENT_TEXT[Consent.UNCONSCIOUS].pick(self.lang),
            id="consent-unconscious",
            variant="warning",
            classes="choice",
        )
        yield Button(
            CONSENT_TEXT[Consent.REFUSED].pick(self.lang),
            id="consent-refused",
            variant="error",
            classes="choice",
        )

    def primary(self) -> Button | None:
        return Button(CONSENT_TEXT[Consent.CONSENTED].pick(self.lang))

    def press_primary(self) -> None:
        # Oral consent only moves to the identity step (no card, no network): at once,
        # not through a thread worker.
        self.edge.now(self.edge.flow.choose_consent, Consent.CONSENTED)

    def press_consent(self, which: str) -> None:
        self.edge.intent(self.edge.flow.choose_consent, Consent(which))


class IdentityScreen(FlowScreen):
    STAGE = Stage.IDENTITY
    TITLE_JA = "本人確認"
    TITLE_EN = "Identity"

    def body(self) -> Iterable[Widget]:
        yield Static(
            self.t(
                "カードの顔写真と本人が一致することを確認してください。",
                "Check that the patient matches the card photo.",
            ),
            classes="hint",
        )
        opts = self.view.identity_options
        if IdentityMethod.PIN in opts:
            yield Button(
                self.t("暗証番号（4桁）で確認", "Confirm with the PIN (4 digits)"),
                id="identity-pin",
                classes="choice",
            )
        if IdentityMethod.COLLATION_B in opts:
            yield Button(
                self.t("照合番号B（券面の数字）で確認", "Confirm with collation number B"),
                id="identity-collation_b",
                classes="choice",
            )

    def primary(self) -> Button | None:
        if IdentityMethod.FACE not in self.view.identity_options:
            return None
        return Button(self.t("顔写真で本人確認済み", "Face matches the photo"))

    def press_primary(self) -> None:
        self.edge.intent(self.edge.flow.choose_identity, IdentityMethod.FACE)

    def press_identity(self, which: str) -> None:
        self.edge.intent(self.edge.flow.choose_identity, IdentityMethod(which))


class _PadScreen(FlowScreen):
    MAX_LEN = 4
    SECRET = True

    def __init__(self, view: object) -> None:
        super().__init__(view)  # type: ignore[arg-type]
        self.entered = ""

    def pad(self) -> NumPad:
        return NumPad(max_len=self.MAX_LEN, secret=self.SECRET, value=self.entered, id="pad")

    def on_num_pad_changed(self, event: NumPad.Changed) -> None:
        self.entered = event.value

    def secondary(self) -> list[Button]:
        return [Button(self.t("戻る", "Back"), id="cancel")]

    def press_cancel(self) -> None:
        self.entered = ""
        self.edge.now(self.edge.flow.cancel_identity)


class PinScreen(_PadScreen):
    STAGE = Stage.PIN
    TITLE_JA = "暗証番号（4桁）"
    TITLE_EN = "PIN (4 digits)"

    def body(self) -> Iterable[Widget]:
        tries = self.view.pin_tries_left
        hint = self.t(
            "本人に利用者証明用の暗証番号（数字4桁）を入力してもらってください。",
            "Ask the patient to key the 4-digit PIN.",
        )
        if tries is not None:
            hint += self.t(f"（残り{tries}回）", f" ({tries} tries left)")
        yield Static(hint, classes="hint")
        yield self.pad()

    def primary(self) -> Button | None:
        if self.view.pin_needs_confirmation:
            return Button(self.t("最後の1回: 確定", "Last try: confirm"))
        return Button(self.t("確定", "OK"))

    def press_primary(self) -> None:
        if len(self.entered) != 4:
            return
        pin, self.entered = self.entered, ""
        confirm = self.view.pin_needs_confirmation
        self.edge.intent(self.edge.flow.submit_pin, pin, confirm_last_try=confirm)


class CollationScreen(_PadScreen):
    """照合番号B keyed from the card face; a Western birth date can be converted first.

    The crew keys the Western date (8 digits) and presses 西暦から和暦に変換: the flow
    offers the era digits (its notice compares the two dates) and they replace what was
    keyed only when the crew presses 「550301を使う」.
    """

    STAGE = Stage.COLLATION_B
    TITLE_JA = "照合番号B"
    TITLE_EN = "Collation number B"
    MAX_LEN = 14
    SECRET = False

    def body(self) -> Iterable[Widget]:
        hint = self.t(
            "券面の数字14桁: 生年月日（和暦6桁。例 昭和55年3月1日→550301、平成7年→07…、"
            "元年→01）＋有効期限の年（西暦4桁）＋セキュリティコード（4桁）",
            "The 14 digits on the card: birth date in the Japanese era (6; Showa 55-03-01 -> "
            "550301, Heisei 7 -> 07..., first year 01) + expiry year (4) + security code (4)",
        )
        tries = self.view.collation_b_tries_left
        if tries:
            hint += self.t(f"（残り{tries}回）", f" ({tries} tries left)")
        yield Static(hint, classes="hint", id="collation-hint")
        yield self.pad()

    def secondary(self) -> list[Button]:
        if self.view.era_offer is not None:
            return [Button(self.t("使わない", "Don't use"), id="era-dismiss")]
        return [
            *super().secondary(),
            Button(self.t("西暦から和暦に変換", "Western to era"), id="era-convert"),
        ]

    def primary(self) -> Button | None:
        offer = self.view.era_offer
        if offer is not None:
            return Button(self.t(f"{offer.digits}を使う", f"Use {offer.digits}"))
        if self.view.collation_b_needs_confirmation:
            return Button(self.t("最後の1回: 確定", "Last try: confirm"))
        return Button(self.t("確定", "OK"))

    def press_primary(self) -> None:
        offer = self.view.era_offer
        if offer is not None:
            if not self.edge.busy:
                self.entered = offer.digits  # the crew confirmed: the pad shows 550301...
                self.edge.now(self.edge.flow.close_era_offer)
            return
        digits, self.entered = self.entered, ""
        confirm = self.view.collation_b_needs_confirmation
        self.edge.intent(self.edge.flow.submit_collation_b, digits, confirm_last_try=confirm)

    def press_era_convert(self) -> None:
        self.edge.now(self.edge.flow.convert_birth_date, self.entered)

    def press_era_dismiss(self) -> None:
        self.edge.now(self.edge.flow.close_era_offer)


class LookingUpScreen(FlowScreen):
    STAGE = Stage.LOOKING_UP
    TITLE_JA = "救急用サマリーを取得中"
    TITLE_EN = "Fetching the emergency summary"

    def body(self) -> Iterable[Widget]:
        yield Static(self.t("しばらくお待ちください…", "Please wait…"), id="tap-prompt")
