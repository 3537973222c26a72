"""Hospital selection (nearest first, multi-select, send to all), live answers, destination.

Each sent row says where the case stands there, in the one vocabulary of
``DELIVERY_TEXT`` (未送信（封緘）→ 送信済み → 病院に到着 → 受入可 / 受入不可（理由）), with
``ROUTE_TEXT``'s 直接送信 when the case went straight to the hospital (docs/disaster.md);
one line above the rows names the route the case took (``route_line``). A hospital the
case cannot go to reads 要電話 and cannot be chosen (``answer_text``). A row offers
「搬送先に決定」 only once that hospital answered 受入可; until then (or after a decline)
its button is 「電話で受入確認済み」, which asks "電話で受入を確認しましたか？" before the
destination is recorded as confirmed by phone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Static

from edge.flow import DELIVERY_TEXT, REFUSAL_REASONS, ROUTE_TEXT, CaseView, HospitalRow, Stage

from ..widgets import availability_line, availability_source
from ._base import FlowScreen


def answer_text(row: HospitalRow, lang: str) -> tuple[str, str]:
    """(text, css class) of where the case stands at a hospital (受入可否 once answered);
    要電話 for a hospital the case cannot go to (the platform takes post-quantum cases
    only and this hospital has no hybrid key yet): the crew phones it."""
    if row.phone_only:
        return ("要電話" if lang != "en" else "Phone only", "phone-only")
    state = row.state()
    if state is None:
        return ("", "")
    text = DELIVERY_TEXT[state].pick(lang)
    cls = {"accept": "accept", "decline": "decline", "refused": "refused"}.get(state, "waiting")
    if state == "decline" and row.reason in REFUSAL_REASONS:
        text += f"（{row.reason}）" if lang != "en" else f" ({row.reason})"
        cls += f" reason-{REFUSAL_REASONS.index(row.reason)}"  # for the kiosk's layout file
    if row.route == "direct":
        # 直接送信: the platform was cut off (docs/disaster.md). The platform's own route
        # reads as before: 送信済み is the platform's receipt (プラットフォーム経由).
        route = ROUTE_TEXT["direct"].pick(lang)
        text += f"・{route}" if lang != "en" else f" · {route}"
        cls += " direct"
    return (text, cls)


def route_line(rows: Iterable[HospitalRow], lang: str) -> str:
    """Which route the case took, once it left: 送信経路: プラットフォーム経由, 直接送信
    (the platform was cut off), or both with the count of hospitals reached directly;
    empty while nothing has left."""
    left = [r for r in rows if r.sent and r.route is not None]
    routes = [r.route for r in left]
    if not routes:
        return ""
    direct = routes.count("direct")
    # The platform has every case that went directly (reconciled): it is not cut off now.
    reconciled = all(r.on_platform for r in left if r.route == "direct")
    platform = ROUTE_TEXT["platform"].pick(lang)
    straight = ROUTE_TEXT["direct"].pick(lang)
    ja = lang != "en"
    if direct == 0:
        return f"送信経路: {platform}" if ja else f"Route: {platform.lower()}"
    if direct == len(routes) and reconciled:
        return f"送信経路: {straight}" if ja else f"Route: {straight.lower()}"
    if direct == len(routes):
        return (
            f"送信経路: {straight}（プラットフォームに接続できません）"
            if ja
            else f"Route: {straight.lower()} (the platform is unreachable)"
        )
    return (
        f"送信経路: {platform}・{straight} {direct}病院"
        if ja
        else f"Route: {platform.lower()}; {straight.lower()} to {direct}"
    )


def dest_button(i: int, row: HospitalRow, lang: str) -> Button:
    """A sent row's destination button: 「搬送先に決定」 (``dest-i``) once it answered 受入可,
    「電話で受入確認済み」 (``phone-i``, a confirm dialog first) otherwise."""
    if row.answer == "accept":
        label = "搬送先に決定" if lang != "en" else "Destination"
        return Button(label, id=f"dest-{i}", variant="success", classes="dest")
    label = "電話で受入確認済み" if lang != "en" else "Accepted by phone"
    return Button(label, id=f"phone-{i}", classes="dest")


class PhoneConfirm(ModalScreen[bool]):
    """The explicit step before choosing a hospital that did not answer 受入可."""

    def __init__(self, name: str, lang: str) -> None:
        super().__init__()
        self.hospital = name
        self.lang = lang

    def compose(self) -> ComposeResult:
        ja = self.lang != "en"
        with Vertical(id="dialog"):
            yield Static(
                "電話で受入を確認しましたか？" if ja else "Did the hospital accept by phone?",
                id="pad-title",
            )
            yield Static(self.hospital, id="phone-hospital")
            yield Static(
                "この病院は受入可と回答していません。電話で受入を確認した場合のみ搬送先に決定します"
                "（病院には「搬送先決定（電話確認）」と表示されます）。"
                if ja
                else "This hospital has not answered accept. Choose it only after a phone"
                " acceptance (it is shown as confirmed by phone).",
                classes="hint",
            )
            with Horizontal(classes="dialog-actions"):
                yield Button("戻る" if ja else "Back", id="phone-cancel")
                yield Button(
                    "はい、電話で確認済み" if ja else "Yes, accepted by phone",
                    id="phone-ok",
                    variant="warning",
                )

    @on(Button.Pressed, "#phone-ok")
    def _ok(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#phone-cancel")
    def _cancel(self) -> None:
        self.dismiss(False)


class HospitalsScreen(FlowScreen):
    STAGE = Stage.HOSPITALS
    TITLE_JA = "病院選択 — 近い順"
    TITLE_EN = "Hospitals — nearest first"

    def structure(self, view: CaseView) -> CaseView:
        # Answers arrive live: they change labels, not the buttons under a finger; only a
        # 受入可 changes a row's button (「電話で受入確認済み」 becomes 「搬送先に決定」).
        rows = tuple(
            replace(
                h,
                answer="accept" if h.answer == "accept" else None,
                delivery=None,
                reason=None,
                availability=(),
                availability_age_s=None,
            )
            for h in view.hospitals
        )
        return replace(super().structure(view), hospitals=rows)

    def update_in_place(self, view: CaseView) -> None:
        for label in self.query("#route-line").results(Static):
            line = route_line(view.hospitals, self.lang)
            label.update(line)
            label.display = bool(line)
        for label in self.query("#avail-source").results(Static):
            label.update(availability_source(view.availability_live, self.lang))
        for i, row in enumerate(view.hospitals):
            text, cls = availability_line(row, self.lang, view.availability_live)
            for label in self.query(f"#avail-{i}").results(Static):
                label.update(text)
                label.set_classes(cls)
            text, cls = answer_text(row, self.lang)
            for label in self.query(f"#answer-{i}").results(Static):
                label.update(text)
                label.set_classes(f"answer {cls}")

    def body(self) -> Iterable[Widget]:
        if any(h.sent for h in self.view.hospitals):
            line = route_line(self.view.hospitals, self.lang)
            route = Static(line, id="route-line")
            route.display = bool(line)  # nothing has left yet: no empty line
            yield route
        if self.view.availability_needs:
            yield Static(
                availability_source(self.view.availability_live, self.lang), id="avail-source"
            )
        for i, row in enumerate(self.view.hospitals):
            dist = "" if row.distance_km is None else f"{row.distance_km:.1f} km"
            mark = "☑" if row.selected or row.sent else "☐"
            text, cls = answer_text(row, self.lang)
            pick = Button(
                f"{mark} {row.name}  {dist}",
                id=f"h-{i}",
                classes="hospital " + ("selected" if row.selected or row.sent else ""),
                disabled=row.sent or row.phone_only,
            )
            parts: list[Widget] = [pick, Static(text, classes=f"answer {cls}", id=f"answer-{i}")]
            if row.sent:
                parts.append(dest_button(i, row, self.lang))
            buttons = Horizontal(*parts, classes="hospital-row")
            if not self.view.availability_needs:
                yield buttons
                continue
            # The 応需状況 on its own line under the row: beside the name it would take the
            # width the name needs (a row showing only ☐).
            line, avail_cls = availability_line(row, self.lang, self.view.availability_live)
            yield Vertical(
                buttons, Static(line, classes=avail_cls, id=f"avail-{i}"), classes="hospital-block"
            )

    def secondary(self) -> list[Button]:
        return [Button(self.t("バイタルへ戻る", "Back to vitals"), id="back")]

    def primary(self) -> Button | None:
        n = sum(1 for h in self.view.hospitals if h.selected and not h.sent)
        return Button(self.t(f"選択した{n}病院へ一斉送信", f"Send to {n} selected"))

    def press_back(self) -> None:
        self.edge.now(self.edge.flow.to_vitals)

    def press_h(self, index: str) -> None:
        row = self.view.hospitals[int(index)]
        self.edge.now(self.edge.flow.toggle_hospital, row.id)

    def press_dest(self, index: str) -> None:
        row = self.view.hospitals[int(index)]
        self.edge.intent(self.edge.flow.confirm_destination, row.id)

    def press_phone(self, index: str) -> None:
        row = self.view.hospitals[int(index)]

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.edge.intent(self.edge.flow.confirm_destination, row.id, via="phone")

        self.app.push_screen(PhoneConfirm(row.name, self.lang), confirmed)

    def press_primary(self) -> None:
        self.edge.intent(self.edge.flow.send_selected)


class ConfirmedScreen(FlowScreen):
    STAGE = Stage.CONFIRMED
    TITLE_JA = "搬送先決定"
    TITLE_EN = "Destination confirmed"

    def body(self) -> Iterable[Widget]:
        v = self.view
        dest = next((h for h in v.hospitals if h.id == v.destination), None)
        yield Static(dest.name if dest else "—", id="destination")
        how = (
            self.t("電話で受入確認済み", "accepted by phone")
            if v.destination_via == "phone"
            else self.t("受入可の回答", "answered accept")
        )
        state = v.destination_state or ""
        told = (
            self.t("病院へ通知済み", "the hospital was told")
            if state == "delivered"
            else self.t("送信できません（電話で連絡）", "not sent: call by phone")
            if state.startswith("refused") or not state
            else self.t("送信待ち", "waiting to be sent")
        )
        yield Static(f"{how} ・ {told}", id="destination-state")
        yield Static(
            self.t(
                "「事案終了」で患者情報を端末から消去します。",
                "“Close case” makes the device forget the patient.",
            ),
            classes="hint",
        )

    def secondary(self) -> list[Button]:
        return [Button(self.t("病院一覧", "Hospitals"), id="back")]

    def press_back(self) -> None:
        self.edge.now(self.edge.flow.to_hospitals_view)

    def primary(self) -> Button | None:
        return Button(self.t("事案終了", "Close case"))

    def press_primary(self) -> None:
        self.edge.now(self.edge.flow.finish)
