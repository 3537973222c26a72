"""The record's pickers: one tap per choice for GCS, oxygen, pupils, ECG, the stroke
scale and treatments, and a dialog for what is typed (the complaint's free text, what
was heard, the estimated age and sex, the ETA). Loaded with the vitals screen."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from edge.flow import (
    ECG_RHYTHMS,
    HEARD_KINDS,
    O2_PRESETS,
    PUPIL_REFLEXES,
    PUPIL_SIZES,
    TREATMENTS,
    VITAL_FIELD,
    VitalsDraft,
)

__all__ = [
    "ChoicePicker",
    "DetailsDialog",
    "GcsPicker",
    "PupilPicker",
    "cpss_picker",
    "ecg_picker",
    "o2_picker",
    "treatment_picker",
]

Result = dict[str, float | str]


class ChoicePicker(ModalScreen[str | None]):
    """One tap on one of ``choices`` (label, code) dismisses with its code."""

    def __init__(self, title: str, choices: tuple[tuple[str, str], ...], cancel: str) -> None:
        super().__init__()
        self.title_text = title
        self.choices = choices
        self.cancel = cancel

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.title_text, id="pad-title")
            with Grid(classes="pick-grid"):
                for i, (label, _) in enumerate(self.choices):
                    yield Button(label, id=f"pick-{i}")
            with Horizontal(classes="dialog-actions"):
                yield Button(self.cancel, id="pad-cancel")

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        bid = event.button.id or ""
        if bid.startswith("pick-"):
            self.dismiss(self.choices[int(bid.removeprefix("pick-"))][1])
        else:
            self.dismiss(None)


def o2_picker(cancel: str) -> ChoicePicker:
    """SpO2's oxygen: 室内気 or a flow (L/min), one tap."""
    return ChoicePicker("酸素 O2（L/分）", tuple((lb, str(v)) for lb, v in O2_PRESETS), cancel)


def ecg_picker(cancel: str) -> ChoicePicker:
    return ChoicePicker("心電図 / ECG", ECG_RHYTHMS, cancel)


def cpss_picker(cancel: str) -> ChoicePicker:
    f = VITAL_FIELD["cpss"]
    return ChoicePicker("脳卒中スケール CPSS（陽性項目数）", f.choices, cancel)


def treatment_picker(cancel: str) -> ChoicePicker:
    return ChoicePicker(
        "処置（今の時刻で記録）", tuple((v.ja, k) for k, v in TREATMENTS.items()), cancel
    )


class _Groups(ModalScreen[Result | None]):
    """Rows of choices, one value per row; closes by itself once every row was tapped."""

    GROUPS: tuple[tuple[str, str, tuple[tuple[str, float | str], ...]], ...] = ()
    TITLE = ""

    def __init__(self, current: VitalsDraft) -> None:
        super().__init__()
        self.chosen: Result = {}
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.TITLE, id="pad-title")
            for key, label, options in self.GROUPS:
                now = self.current.value(key)
                with Horizontal(classes="pick-row"):
                    yield Static(label, classes="pick-label")
                    for i, (text, value) in enumerate(options):
                        variant = "success" if now == value else "default"
                        yield Button(text, id=f"g-{key}-{i}", variant=variant)  # type: ignore[arg-type]
            with Horizontal(classes="dialog-actions"):
                yield Button("取消 / Cancel", id="pad-cancel")
                yield Button("OK", id="pad-ok", variant="primary")

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        bid = event.button.id or ""
        if bid == "pad-cancel":
            self.dismiss(None)
            return
        if bid == "pad-ok":
            self.dismiss(self.chosen)
            return
        if not bid.startswith("g-"):
            return
        key, index = bid.removeprefix("g-").rsplit("-", 1)
        options = next(o for k, _, o in self.GROUPS if k == key)
        self.chosen[key] = options[int(index)][1]
        for i in range(len(options)):
            for b in self.query(f"#g-{key}-{i}").results(Button):
                b.variant = "success" if i == int(index) else "default"
        if len(self.chosen) == len(self.GROUPS):
            self.dismiss(self.chosen)


class GcsPicker(_Groups):
    """GCS: E 1-4, V 1-5, M 1-6; the total is computed."""

    TITLE = "GCS  E（開眼）V（言語）M（運動）"
    GROUPS = (
        ("gcs_e", "E", tuple((str(n), float(n)) for n in range(1, 5))),
        ("gcs_v", "V", tuple((str(n), float(n)) for n in range(1, 6))),
        ("gcs_m", "M", tuple((str(n), float(n)) for n in range(1, 7))),
    )


class PupilPicker(_Groups):
    """瞳孔: size (mm) and light reflex, left and right."""

    TITLE = "瞳孔（mm）・対光反射  左 / 右"
    GROUPS = (
        ("pupil_l", "左", tuple((f"{s:g}", s) for s in PUPIL_SIZES)),
        ("reflex_l", "左反射", PUPIL_REFLEXES),
        ("pupil_r", "右", tuple((f"{s:g}", s) for s in PUPIL_SIZES)),
        ("reflex_r", "右反射", PUPIL_REFLEXES),
    )


class DetailsDialog(ModalScreen[dict[str, str] | None]):
    """What is typed: 主訴 free text, heard allergies / history / medications, the
    estimated age and sex (推定) and the crew's ETA in minutes."""

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="details"):
            yield Static("患者・搬送の情報（入力した項目だけ記録）", id="pad-title")
            yield Input(placeholder="主訴の補足（自由記載）", id="in-note")
            for key, label in HEARD_KINDS.items():
                yield Input(placeholder=f"聴取した{label.ja}", id=f"in-heard-{key}")
            with Horizontal(classes="pick-row"):
                yield Input(placeholder="推定年齢（歳）", id="in-age", type="integer")
                yield Button("男性（推定）", id="sex-male")
                yield Button("女性（推定）", id="sex-female")
            yield Input(placeholder="到着予定（分後）", id="in-eta", type="integer")
            with Horizontal(classes="dialog-actions"):
                yield Button("取消 / Cancel", id="pad-cancel")
                yield Button("OK", id="pad-ok", variant="primary")

    sex: str | None = None

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        bid = event.button.id or ""
        if bid.startswith("sex-"):
            self.sex = bid.removeprefix("sex-")
            for b in self.query(".pick-row Button").results(Button):
                b.variant = "success" if b.id == bid else "default"
            return
        if bid == "pad-cancel":
            self.dismiss(None)
            return
        out = {i.id or "": i.value.strip() for i in self.query(Input).results(Input)}
        out = {k.removeprefix("in-"): v for k, v in out.items() if v}
        if self.sex:
            out["sex"] = self.sex
        self.dismiss(out)
