"""主訴 and バイタル: a choice for the complaint, a numeric pad for each value.

Every set of the case is listed with its time (newest first, ⚠ out of range, ◆
abnormal); tapping one selects it for correction; its time changes only when the crew
keys a new one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from textual.containers import Grid, Vertical
from textual.widget import Widget
from textual.widgets import Button, Static

from edge.flow import (
    CHIEF_COMPLAINTS,
    DERIVED_MARKS,
    EMS_TIMES,
    JST,
    TREATMENTS,
    VITAL_FIELD,
    VITAL_FIELDS,
    VITAL_LABELS,
    CaseView,
    Stage,
    VitalField,
    VitalsDraft,
)

from ._base import FlowScreen
from .pads import PAD_CHAIN, JcsPicker, TimePad, VitalPad
from .record import (
    DetailsDialog,
    GcsPicker,
    PupilPicker,
    cpss_picker,
    ecg_picker,
    o2_picker,
    treatment_picker,
)


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:g}"


def _hhmm(moment: datetime | None) -> str:
    return moment.astimezone(JST).strftime("%H:%M") if moment is not None else "--:--"


def _value_text(f: VitalField, value: float | str | None) -> str:
    return f.text(value)


# One tile per value, or per group of values keyed on one picker (GCS E/V/M, pupils).
TILES: tuple[str, ...] = tuple(dict.fromkeys(f.tile for f in VITAL_FIELDS))


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
    if "anisocoria" in marked:
        out += "  瞳孔不同◆"
    return out.strip() or "（未入力）"


class SetList(Vertical):
    """The sets taken, right under the tiles (the times and treatments come after
    them): brought into view when shown (at 100×30 the 主訴 grid and the tiles fill
    the body, so the list would sit below the fold)."""

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
            super().structure(view),
            chief_complaint=None,
            vitals=sets,
            vitals_selected=None,
            chief_complaint_note=None,
            times=(),
            treatments=(),
            estimate_age=None,
            estimate_sex=None,
            heard=(),
            eta_minutes=None,
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

    def _tile_face(self, tile: str, current: VitalsDraft) -> tuple[str, str]:
        fields = [f for f in VITAL_FIELDS if f.tile == tile]
        marked = set(current.abnormal())
        if tile == "gcs":
            total = current.gcs_total
            parts = "".join(f"{f.short}{_value_text(f, current.value(f.key))}" for f in fields)
            name = VITAL_FIELD["gcs"].label.pick(self.lang)
            label = f"{name} {_fmt(total)}" + (f" {parts}" if "—" not in parts else "")
            marked |= {f.key for f in fields} if "gcs" in marked else set()
        elif tile == "pupils":
            v = [_value_text(f, current.value(f.key)) for f in fields]
            label = self.t("瞳孔", "Pupils") + f" {v[0]}/{v[1]}"
            if v[2] != "—" or v[3] != "—":
                label += f" {v[2]}/{v[3]}"
            marked |= {f.key for f in fields} if "anisocoria" in marked else set()
        else:
            f = fields[0]
            label = f"{f.label.pick(self.lang)} {_value_text(f, current.value(f.key))}"
        keys = {f.key for f in fields}
        if keys & set(current.flagged()):
            return "⚠ " + label, "warning"
        if keys & marked:
            return "◆ " + label, "error"
        return label, "default"

    def _stamp_face(self, attr: str, view: CaseView) -> tuple[str, str]:
        label = next(t.label for t in EMS_TIMES if t.attr == attr).pick(self.lang)
        at = dict(view.times).get(attr)
        return f"{label} {_hhmm(at) if at else '—'}", "success" if at else "default"

    def _treatment_text(self, view: CaseView) -> str:
        if not view.treatments:
            return self.t("処置: なし", "Treatments: none")
        done = [
            f"{_hhmm(at)} {TREATMENTS[code].pick(self.lang)}" + (f"（{note}）" if note else "")
            for code, at, note in view.treatments
        ]
        return self.t("処置: ", "Treatments: ") + "、".join(done)

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
                (DERIVED_MARKS[k] if k in DERIVED_MARKS else VITAL_FIELD[k].label).pick(self.lang)
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
        for tile in TILES:
            label, variant = self._tile_face(tile, current)
            tiles.append(Button(label, id=f"vital-{tile}", variant=variant))  # type: ignore[arg-type]
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
        yield Static(
            self.t("活動時刻・処置（タップで今の時刻）", "Times & treatments (tap: now)"),
            classes="section-title",
        )
        stamps = []
        for t in EMS_TIMES:
            label, variant = self._stamp_face(t.attr, v)
            stamps.append(Button(label, id=f"time-{t.attr}", variant=variant))  # type: ignore[arg-type]
        stamps.append(Button(self.t("＋処置", "+ Treatment"), id="tx-add"))
        stamps.append(Button(self.t("患者・搬送情報", "Patient & ETA"), id="details"))
        yield Grid(*stamps, id="times-grid")
        yield Static(self._treatment_text(v), id="tx-list")

    def update_in_place(self, view: CaseView) -> None:
        _, current = self._current(view)
        for i in range(len(CHIEF_COMPLAINTS)):
            for b in self.query(f"#cc-{i}").results(Button):
                b.label, b.variant = self._cc_face(i, view)
        for tile in TILES:
            for b in self.query(f"#vital-{tile}").results(Button):
                b.label, b.variant = self._tile_face(tile, current)
        for t in EMS_TIMES:
            for b in self.query(f"#time-{t.attr}").results(Button):
                b.label, b.variant = self._stamp_face(t.attr, view)
        for st in self.query("#tx-list").results(Static):
            st.update(self._treatment_text(view))
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

    def press_time(self, attr: str) -> None:
        """One touch stamps now; a time already stamped opens the pad to correct it."""
        if attr not in dict(self.view.times):
            self.edge.now(self.edge.flow.stamp_time, attr)
            return
        label = next(t.label for t in EMS_TIMES if t.attr == attr).pick(self.lang)

        def keyed(text: str | None) -> None:
            if text:
                self.edge.now(self.edge.flow.set_time, attr, text)

        self.app.push_screen(
            TimePad(self.t(f"{label}の時刻（時分4桁）", f"{label} (HHMM)"), "", self.lang), keyed
        )

    def press_tx_add(self) -> None:
        def picked(code: str | None) -> None:
            if code is not None:
                self.edge.now(self.edge.flow.add_treatment, code)

        self.app.push_screen(treatment_picker(self.t("取消", "Cancel")), picked)

    def press_details(self) -> None:
        def entered(out: dict[str, str] | None) -> None:
            if not out:
                return
            flow = self.edge.flow
            if "note" in out:
                self.edge.now(flow.set_chief_complaint_note, out["note"])
            for kind in ("allergies", "conditions", "medications"):
                if f"heard-{kind}" in out:
                    self.edge.now(flow.add_heard, kind, out[f"heard-{kind}"])
            age = int(out["age"]) if out.get("age", "").isdigit() else None
            if age is not None or "sex" in out:
                self.edge.now(lambda: flow.set_estimate(age=age, sex=out.get("sex")))
            if out.get("eta", "").isdigit():
                self.edge.now(flow.set_eta, int(out["eta"]))

        self.app.push_screen(DetailsDialog(), entered)

    def press_vital(self, name: str) -> None:
        _, current = self._current(self.view)
        cancel = self.t("取消", "Cancel")

        def set_value(key: str, value: float | str | None) -> None:
            self.edge.now(self.edge.flow.set_vital, key, value)

        def groups(out: dict[str, float | str] | None) -> None:
            for key, value in (out or {}).items():
                set_value(key, value)

        def picked(code: str | None) -> None:
            if code is not None:
                set_value(name, float(code) if name == "o2" else code)

        if name in ("gcs", "pupils"):
            group = GcsPicker(current) if name == "gcs" else PupilPicker(current)
            self.app.push_screen(group, groups)
            return
        if name == "jcs":
            self.app.push_screen(JcsPicker(current.jcs), picked)
            return
        if name in ("o2", "ecg", "cpss"):
            choose = {"o2": o2_picker, "ecg": ecg_picker, "cpss": cpss_picker}[name]
            self.app.push_screen(choose(cancel), picked)
            return
        self._pad(name, current)

    def _pad(self, name: str, current: VitalsDraft) -> None:
        def keyed(result: tuple[str, bool] | None) -> None:
            if result is None:
                return
            text, go_on = result
            try:
                value = float(text) if text else None
            except ValueError:
                return
            self.edge.now(self.edge.flow.set_vital, name, value)
            if go_on and name in PAD_CHAIN[:-1]:
                _, now = self._current(self.edge.flow.view())
                self._pad(PAD_CHAIN[PAD_CHAIN.index(name) + 1], now)

        label = VITAL_LABELS[name].pick(self.lang)
        value = current.value(name)
        number = value if isinstance(value, float | int) else None
        self.app.push_screen(VitalPad(name, label, number, self.lang), keyed)
