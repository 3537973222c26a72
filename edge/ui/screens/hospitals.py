"""Hospital selection (nearest first, multi-select, send to all), live answers, destination."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Button, Static

from edge.flow import CaseView, HospitalRow, Stage

from ._base import FlowScreen


def answer_text(row: HospitalRow, lang: str) -> tuple[str, str]:
    """(text, css class) of a hospital's 受入可否."""
    if not row.sent:
        return ("", "")
    if row.answer == "accept":
        return ("受入可" if lang != "en" else "Accepts", "accept")
    if row.answer == "decline":
        return ("受入不可" if lang != "en" else "Declines", "decline")
    return ("応答待ち" if lang != "en" else "Waiting", "waiting")


class HospitalsScreen(FlowScreen):
    STAGE = Stage.HOSPITALS
    TITLE_JA = "病院選択 — 近い順"
    TITLE_EN = "Hospitals — nearest first"

    def structure(self, view: CaseView) -> CaseView:
        # Answers arrive live: they change labels, not the buttons under a finger.
        rows = tuple(replace(h, answer=None) for h in view.hospitals)
        return replace(super().structure(view), hospitals=rows)

    def update_in_place(self, view: CaseView) -> None:
        for i, row in enumerate(view.hospitals):
            text, cls = answer_text(row, self.lang)
            for label in self.query(f"#answer-{i}").results(Static):
                label.update(text)
                label.set_classes(f"answer {cls}")
            for dest in self.query(f"#dest-{i}").results(Button):
                dest.variant = "success" if row.answer == "accept" else "default"

    def body(self) -> Iterable[Widget]:
        for i, row in enumerate(self.view.hospitals):
            dist = "" if row.distance_km is None else f"{row.distance_km:.1f} km"
            mark = "☑" if row.selected or row.sent else "☐"
            text, cls = answer_text(row, self.lang)
            pick = Button(
                f"{mark} {row.name}  {dist}",
                id=f"h-{i}",
                classes="hospital " + ("selected" if row.selected or row.sent else ""),
                disabled=row.sent,
            )
            parts: list[Widget] = [pick, Static(text, classes=f"answer {cls}", id=f"answer-{i}")]
            if row.sent:
                parts.append(
                    Button(
                        self.t("搬送先に決定", "Destination"),
                        id=f"dest-{i}",
                        variant="success" if row.answer == "accept" else "default",
                        classes="dest",
                    )
                )
            yield Horizontal(*parts, classes="hospital-row")

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

    def press_primary(self) -> None:
        self.edge.intent(self.edge.flow.send_selected)


class ConfirmedScreen(FlowScreen):
    STAGE = Stage.CONFIRMED
    TITLE_JA = "搬送先決定"
    TITLE_EN = "Destination confirmed"

    def body(self) -> Iterable[Widget]:
        dest = next((h for h in self.view.hospitals if h.id == self.view.destination), None)
        yield Static(dest.name if dest else "—", id="destination")
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
