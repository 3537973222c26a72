"""主訴 and バイタル: a choice for the complaint, a numeric pad for each value."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from textual import on
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Static

from edge.flow import (
    CHIEF_COMPLAINTS,
    JCS_CHOICES,
    PLAUSIBLE,
    VITAL_LABELS,
    VITAL_UNITS,
    CaseView,
    Stage,
    VitalsDraft,
    out_of_range,
)

from ..widgets import NumPad
from ._base import FlowScreen

VITALS = ("systolic", "diastolic", "pulse", "respiration", "spo2", "temperature")


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:g}"


def _jcs_label(code: str | None) -> str:
    return next((label for label, c in JCS_CHOICES if c == code), "—")


class VitalPad(ModalScreen[str | None]):
    """Key one vital on a numeric pad; out-of-range values are flagged, not refused."""

    def __init__(self, name: str, label: str, current: float | None, lang: str) -> None:
        super().__init__()
        self.vital = name
        self.label = label
        self.current = "" if current is None else f"{current:g}"
        self.lang = lang

    def compose(self) -> ComposeResult:
        lo, hi = PLAUSIBLE[self.vital]
        with Vertical(id="dialog"):
            yield Static(f"{self.label} ({VITAL_UNITS[self.vital]})  {lo:g}–{hi:g}", id="pad-title")
            yield Static("", id="pad-flag")
            yield NumPad(max_len=5, decimal=self.vital == "temperature", value=self.current)
            with Horizontal(classes="dialog-actions"):
                yield Button("取消" if self.lang != "en" else "Cancel", id="pad-cancel")
                yield Button("OK", id="pad-ok", variant="primary")

    @on(NumPad.Changed)
    def _changed(self, event: NumPad.Changed) -> None:
        self.current = event.value
        try:
            flagged = out_of_range(self.vital, float(event.value)) if event.value else False
        except ValueError:
            flagged = False
        note = "範囲外: 確認してください" if self.lang != "en" else "Out of range: check"
        self.query_one("#pad-flag", Static).update(f"⚠ {note}" if flagged else "")

    @on(Button.Pressed, "#pad-ok")
    def _ok(self) -> None:
        self.dismiss(self.current)

    @on(Button.Pressed, "#pad-cancel")
    def _cancel(self) -> None:
        self.dismiss(None)


class JcsPicker(ModalScreen[str | None]):
    """JCS as a choice: 0, I-1..3, II-10..30, III-100..300."""

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static("意識レベル JCS / Japan Coma Scale", id="pad-title")
            with Grid(id="jcs-grid"):
                for label, code in JCS_CHOICES:
                    yield Button(label, id=f"jcs-{code}")
            with Horizontal(classes="dialog-actions"):
                yield Button("取消 / Cancel", id="pad-cancel")

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        bid = event.button.id or ""
        self.dismiss(bid.removeprefix("jcs-") if bid.startswith("jcs-") else None)


class VitalsScreen(FlowScreen):
    STAGE = Stage.VITALS
    TITLE_JA = "主訴・バイタル"
    TITLE_EN = "Chief complaint & vitals"

    def structure(self, view: CaseView) -> CaseView:
        # Complaint and values change labels in place: quick taps are never lost.
        return replace(super().structure(view), chief_complaint=None, vitals=())

    def _cc_face(self, i: int, view: CaseView) -> tuple[str, str]:
        text = CHIEF_COMPLAINTS[i]
        chosen = view.chief_complaint == text.ja
        return ("✓ " if chosen else "") + text.pick(self.lang), "success" if chosen else "default"

    def _tile_face(self, name: str, current: VitalsDraft) -> tuple[str, str]:
        if name == "jcs":
            return f"{VITAL_LABELS['jcs'].pick(self.lang)} {_jcs_label(current.jcs)}", "default"
        warn = name in current.flagged()
        label = f"{VITAL_LABELS[name].pick(self.lang)} {_fmt(getattr(current, name))}"
        return ("⚠ " + label if warn else label), "warning" if warn else "default"

    def _flag_text(self, current: VitalsDraft) -> str:
        if not current.flagged():
            return ""
        return self.t(
            "⚠ 範囲外の値があります。入力を確認してください（送信は可能です）。",
            "⚠ Values out of range: check them (the case can still be sent).",
        )

    def _sets_text(self, view: CaseView) -> str:
        n = len(view.vitals)
        return self.t("バイタル", "Vitals") + (f"  ({n}{self.t('回目', ' sets')})" if n > 1 else "")

    def body(self) -> Iterable[Widget]:
        v = self.view
        current = v.vitals[0] if v.vitals else VitalsDraft()
        mark = self.certificate_mark()
        if mark is not None:
            yield mark
        yield Static(self.t("主訴", "Chief complaint"), classes="section-title")
        buttons = []
        for i in range(len(CHIEF_COMPLAINTS)):
            label, variant = self._cc_face(i, v)
            buttons.append(Button(label, id=f"cc-{i}", variant=variant))  # type: ignore[arg-type]
        yield Grid(*buttons, id="cc-grid")
        yield Static(self._sets_text(v), classes="section-title", id="vitals-title")
        tiles = []
        for name in (*VITALS, "jcs"):
            label, variant = self._tile_face(name, current)
            tiles.append(Button(label, id=f"vital-{name}", variant=variant))  # type: ignore[arg-type]
        tiles.append(Button(self.t("＋新しい測定", "+ New set"), id="new-set"))
        yield Grid(*tiles, id="vitals-grid")
        yield Static(self._flag_text(current), classes="warning", id="vitals-flag")

    def update_in_place(self, view: CaseView) -> None:
        current = view.vitals[0] if view.vitals else VitalsDraft()
        for i in range(len(CHIEF_COMPLAINTS)):
            for b in self.query(f"#cc-{i}").results(Button):
                b.label, b.variant = self._cc_face(i, view)
        for name in (*VITALS, "jcs"):
            for b in self.query(f"#vital-{name}").results(Button):
                b.label, b.variant = self._tile_face(name, current)
        for st in self.query("#vitals-flag").results(Static):
            st.update(self._flag_text(current))
        for st in self.query("#vitals-title").results(Static):
            st.update(self._sets_text(view))

    def secondary(self) -> list[Button]:
        out = []
        if not self.view.card_used:
            out.append(Button(self.t("カードを読む", "Read card"), id="take-card"))
        if self.view.summary_status is not None:
            out.append(Button(self.t("サマリー", "Summary"), id="show-summary"))
        return out

    def primary(self) -> Button | None:
        return Button(self.t("病院選択へ", "Hospitals"))

    def press_primary(self) -> None:
        self.edge.intent(self.edge.flow.to_hospitals)

    def press_take_card(self) -> None:
        self.edge.now(self.edge.flow.take_card)

    def press_show_summary(self) -> None:
        self.edge.now(self.edge.flow.show_summary)

    def press_new_set(self) -> None:
        self.edge.now(self.edge.flow.new_vitals_set)

    def press_cc(self, index: str) -> None:
        self.edge.now(self.edge.flow.set_chief_complaint, CHIEF_COMPLAINTS[int(index)].ja)

    def press_vital(self, name: str) -> None:
        current = self.view.vitals[0] if self.view.vitals else VitalsDraft()
        if name == "jcs":

            def picked(code: str | None) -> None:
                if code is not None:
                    self.edge.now(self.edge.flow.set_vital, "jcs", code)

            self.app.push_screen(JcsPicker(), picked)
            return

        def keyed(text: str | None) -> None:
            if text is None:
                return
            try:
                value = float(text) if text else None
            except ValueError:
                return
            self.edge.now(self.edge.flow.set_vital, name, value)

        label = VITAL_LABELS[name].pick(self.lang)
        self.app.push_screen(VitalPad(name, label, getattr(current, name), self.lang), keyed)
