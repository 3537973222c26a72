"""主訴 and バイタル: a choice for the complaint, a numeric pad for each value.

Every set of the case is listed with its time (newest first, ⚠ out of range, ◆
abnormal); tapping one selects it for correction; its time changes only when the crew
keys a new one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from textual import on
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Static

from edge.flow import (
    CHIEF_COMPLAINTS,
    JCS_CHOICES,
    JST,
    PLAUSIBLE,
    SHOCK_INDEX,
    VITAL_FIELD,
    VITAL_FIELDS,
    VITAL_LABELS,
    VITAL_UNITS,
    CaseView,
    Stage,
    VitalField,
    VitalsDraft,
    abnormal,
    out_of_range,
)

from ..widgets import NumPad
from ._base import FlowScreen


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:g}"


def pad_flag(vital: str, keyed: str, lang: str) -> str:
    """The pad's line for a value being keyed: ⚠ out of the plausible range, ◆ past the
    alert threshold (both, as the set list marks them), or nothing."""
    try:
        value = float(keyed) if keyed else None
    except ValueError:
        value = None
    if value is None:
        return ""
    ja = lang != "en"
    notes = []
    if out_of_range(vital, value):
        notes.append("⚠ " + ("範囲外: 確認してください" if ja else "Out of range: check"))
    if abnormal(vital, value):
        notes.append("◆ " + ("異常値" if ja else "Abnormal"))
    return "  ".join(notes)


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
            decimal = VITAL_FIELD[self.vital].decimals > 0
            yield NumPad(max_len=5, decimal=decimal, value=self.current)
            with Horizontal(classes="dialog-actions"):
                yield Button("取消" if self.lang != "en" else "Cancel", id="pad-cancel")
                yield Button("OK", id="pad-ok", variant="primary")

    @on(NumPad.Changed)
    def _changed(self, event: NumPad.Changed) -> None:
        self.current = event.value
        self.query_one("#pad-flag", Static).update(pad_flag(self.vital, event.value, self.lang))

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


class TimePad(ModalScreen[str | None]):
    """Correct when a set was taken: HHMM on the numeric pad (JST)."""

    def __init__(self, title: str, current: str, lang: str) -> None:
        super().__init__()
        self.title_text = title
        self.current = current
        self.lang = lang

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.title_text, id="pad-title")
            yield NumPad(max_len=4, value=self.current)
            with Horizontal(classes="dialog-actions"):
                yield Button("取消" if self.lang != "en" else "Cancel", id="pad-cancel")
                yield Button("OK", id="pad-ok", variant="primary")

    @on(NumPad.Changed)
    def _changed(self, event: NumPad.Changed) -> None:
        self.current = event.value

    @on(Button.Pressed, "#pad-ok")
    def _ok(self) -> None:
        self.dismiss(self.current)

    @on(Button.Pressed, "#pad-cancel")
    def _cancel(self) -> None:
        self.dismiss(None)


def _hhmm(moment: datetime | None) -> str:
    return moment.astimezone(JST).strftime("%H:%M") if moment is not None else "--:--"


def _value_text(f: VitalField, value: float | str | None) -> str:
    if f.choices:
        return (f.choice_label(value) if isinstance(value, str) else None) or "—"
    return _fmt(value if isinstance(value, float | int) else None)


def _set_line(s: VitalsDraft) -> str:
    """One set on one line: BP 300⚠/60  P 118◆  … (⚠ out of range, ◆ abnormal)."""
    flagged, marked = set(s.flagged()), set(s.abnormal())
    out, before, shown = "", "", False  # the value before a joined one: BP 120/80, BP —/80
    for f in VITAL_FIELDS:
        joined = f.short.startswith("/")
        value = s.value(f.key)
        if not joined:
            before, shown = f.short, value is not None
        if value is None:
            continue
        mark = ("⚠" if f.key in flagged else "") + ("◆" if f.key in marked else "")
        text = _value_text(f, value) + mark
        if not joined:
            out += f"  {f.short} {text}"
        else:
            out += (f.short if shown else f"  {before} —{f.short}") + text
    if "shock_index" in marked:
        out += "  SI◆"
    return out.strip() or "（未入力）"


class SetList(Vertical):
    """The sets taken, under the tiles: brought into view when shown (at 100×30 the
    主訴 grid and the tiles fill the body, so the list would sit below the fold)."""

    def on_mount(self) -> None:
        self.call_after_refresh(self._into_view)

    def _into_view(self) -> None:
        # The body scrolls so the list's last line is on screen; the tiles stay above it.
        self.scroll_visible(animate=False, top=False)


class VitalsScreen(FlowScreen):
    STAGE = Stage.VITALS
    TITLE_JA = "主訴・バイタル"
    TITLE_EN = "Chief complaint & vitals"

    def structure(self, view: CaseView) -> CaseView:
        # Complaint, values and the set being edited change labels in place: quick taps
        # are never lost. A new set adds a row (a rebuild).
        sets = tuple(VitalsDraft() for _ in view.vitals)
        return replace(
            super().structure(view), chief_complaint=None, vitals=sets, vitals_selected=None
        )

    @staticmethod
    def _current(view: CaseView) -> tuple[int | None, VitalsDraft]:
        """The number (1 = first taken) and values of the set being edited."""
        n = view.vitals_selected
        if n is None or not 1 <= n <= len(view.vitals):
            return None, VitalsDraft()
        return n, view.vitals[len(view.vitals) - n]

    def _cc_face(self, i: int, view: CaseView) -> tuple[str, str]:
        text = CHIEF_COMPLAINTS[i]
        chosen = view.chief_complaint == text.ja
        return ("✓ " if chosen else "") + text.pick(self.lang), "success" if chosen else "default"

    def _tile_face(self, f: VitalField, current: VitalsDraft) -> tuple[str, str]:
        label = f"{f.label.pick(self.lang)} {_value_text(f, current.value(f.key))}"
        if f.key in current.flagged():
            return "⚠ " + label, "warning"
        if f.key in current.abnormal():
            return "◆ " + label, "error"
        return label, "default"

    def _time_face(self, current: VitalsDraft) -> str:
        return f"{self.t('測定時刻', 'Taken at')} {_hhmm(current.observed_at)}"

    def _flag_text(self, current: VitalsDraft) -> str:
        lines = []
        if current.flagged():
            lines.append(
                self.t(
                    "⚠ 範囲外の値があります。入力を確認してください（送信は可能です）。",
                    "⚠ Values out of range: check them (the case can still be sent).",
                )
            )
        marked = current.abnormal()
        if marked:
            names = [
                (SHOCK_INDEX if k == "shock_index" else VITAL_FIELD[k].label).pick(self.lang)
                for k in marked
            ]
            lines.append(self.t("◆ 異常値: ", "◆ Abnormal: ") + "、".join(names))
        return "\n".join(lines)

    def _title_text(self, view: CaseView) -> str:
        n, current = self._current(view)
        if n is None:
            return self.t("バイタル", "Vitals")
        total, at = len(view.vitals), _hhmm(current.observed_at)
        return self.t(
            f"バイタル  {n}回目（{at}測定）を編集中・全{total}回（一覧は下）",
            f"Vitals  editing set {n} of {total} (taken {at}; list below)",
        )

    def _row_face(self, view: CaseView, k: int) -> tuple[str, str]:
        n = len(view.vitals) - k
        s = view.vitals[k]
        chosen = view.vitals_selected == n
        label = f"{'▶ ' if chosen else '  '}{n}{self.t('回目', '.')} {_hhmm(s.observed_at)}"
        return f"{label}  {_set_line(s)}", "primary" if chosen else "default"

    def body(self) -> Iterable[Widget]:
        v = self.view
        _, current = self._current(v)
        mark = self.certificate_mark()
        if mark is not None:
            yield mark
        yield Static(self.t("主訴", "Chief complaint"), classes="section-title")
        buttons = []
        for i in range(len(CHIEF_COMPLAINTS)):
            label, variant = self._cc_face(i, v)
            buttons.append(Button(label, id=f"cc-{i}", variant=variant))  # type: ignore[arg-type]
        yield Grid(*buttons, id="cc-grid")
        yield Static(self._title_text(v), classes="section-title", id="vitals-title")
        tiles = []
        for f in VITAL_FIELDS:
            label, variant = self._tile_face(f, current)
            tiles.append(Button(label, id=f"vital-{f.key}", variant=variant))  # type: ignore[arg-type]
        if v.vitals:
            tiles.append(Button(self._time_face(current), id="vitals-time"))
        tiles.append(Button(self.t("＋新しい測定", "+ New set"), id="new-set"))
        yield Grid(*tiles, id="vitals-grid")
        yield Static(self._flag_text(current), classes="warning", id="vitals-flag")
        if v.vitals:
            rows: list[Widget] = [
                Static(
                    self.t(
                        "測定の記録（新しい順・タップで選んで修正）  ⚠範囲外 ◆異常値",
                        "Sets taken (newest first; tap one to correct it)  "
                        "⚠ out of range ◆ abnormal",
                    ),
                    classes="section-title",
                )
            ]
            for k in range(len(v.vitals)):
                label, variant = self._row_face(v, k)
                n = len(v.vitals) - k
                rows.append(
                    Button(label, id=f"vset-{n}", classes="vitals-set", variant=variant)  # type: ignore[arg-type]
                )
            yield SetList(*rows, id="vitals-sets")

    def update_in_place(self, view: CaseView) -> None:
        _, current = self._current(view)
        for i in range(len(CHIEF_COMPLAINTS)):
            for b in self.query(f"#cc-{i}").results(Button):
                b.label, b.variant = self._cc_face(i, view)
        for f in VITAL_FIELDS:
            for b in self.query(f"#vital-{f.key}").results(Button):
                b.label, b.variant = self._tile_face(f, current)
        for b in self.query("#vitals-time").results(Button):
            b.label = self._time_face(current)
        for st in self.query("#vitals-flag").results(Static):
            st.update(self._flag_text(current))
        for st in self.query("#vitals-title").results(Static):
            st.update(self._title_text(view))
        for k in range(len(view.vitals)):
            for b in self.query(f"#vset-{len(view.vitals) - k}").results(Button):
                b.label, b.variant = self._row_face(view, k)

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

    def press_vset(self, number: str) -> None:
        self.edge.now(self.edge.flow.select_vitals_set, int(number))

    def press_vitals_time(self) -> None:
        n, _ = self._current(self.view)
        if n is None:
            return
        title = self.t(f"{n}回目の測定時刻（時分4桁）", f"Set {n}: time taken (HHMM)")

        def keyed(text: str | None) -> None:
            if text:
                self.edge.now(self.edge.flow.set_vitals_time, n, text)

        self.app.push_screen(TimePad(title, "", self.lang), keyed)

    def press_cc(self, index: str) -> None:
        self.edge.now(self.edge.flow.set_chief_complaint, CHIEF_COMPLAINTS[int(index)].ja)

    def press_vital(self, name: str) -> None:
        _, current = self._current(self.view)
        if VITAL_FIELD[name].choices:

            def picked(code: str | None) -> None:
                if code is not None:
                    self.edge.now(self.edge.flow.set_vital, name, code)

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
        value = current.value(name)
        number = value if isinstance(value, float | int) else None
        self.app.push_screen(VitalPad(name, label, number, self.lang), keyed)
