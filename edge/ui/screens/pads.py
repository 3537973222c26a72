"""The pads of the 主訴・バイタル screen: a vital keyed on a numeric pad (flagged, never
refused), JCS as a choice with its suffixes, a time keyed as HHMM."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from edge.flow import (
    JCS_CHOICES,
    JCS_SUFFIXES,
    PLAUSIBLE,
    VITAL_FIELD,
    VITAL_UNITS,
    abnormal,
    jcs_code,
    jcs_parts,
    out_of_range,
)

from ..widgets import NumPad


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


# The pads keyed one after the other: 「次へ」 keeps the value and opens the next pad.
PAD_CHAIN = ("systolic", "diastolic", "pulse", "respiration", "spo2", "temperature")


class VitalPad(ModalScreen[tuple[str, bool] | None]):
    """Key one vital on a numeric pad; out-of-range values are flagged, not refused.

    Dismissed with (keyed text, go on to the next pad of ``PAD_CHAIN``)."""

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
            yield NumPad(max_len=5, decimal=decimal, value=self.current, replace=True)
            with Horizontal(classes="dialog-actions"):
                yield Button("取消" if self.lang != "en" else "Cancel", id="pad-cancel")
                yield Button("OK", id="pad-ok", variant="primary")
                if self.vital in PAD_CHAIN[:-1]:
                    yield Button("次へ ▶" if self.lang != "en" else "Next ▶", id="pad-next")

    @on(NumPad.Changed)
    def _changed(self, event: NumPad.Changed) -> None:
        self.current = event.value
        self.query_one("#pad-flag", Static).update(pad_flag(self.vital, event.value, self.lang))

    @on(Button.Pressed, "#pad-ok")
    def _ok(self) -> None:
        self.dismiss((self.current, False))

    @on(Button.Pressed, "#pad-next")
    def _next(self) -> None:
        self.dismiss((self.current, True))

    @on(Button.Pressed, "#pad-cancel")
    def _cancel(self) -> None:
        self.dismiss(None)


class JcsPicker(ModalScreen[str | None]):
    """JCS as a choice: 0, I-1..3, II-10..30, III-100..300; the suffixes R, I, A are
    toggled first, the level's tap closes it."""

    def __init__(self, current: str | None) -> None:
        super().__init__()
        parts = jcs_parts(current) if current else None
        self.suffixes = set(parts[1]) if parts else set()

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static("意識レベル JCS / Japan Coma Scale", id="pad-title")
            with Horizontal(classes="pick-row"):
                for code, word in JCS_SUFFIXES:
                    variant = "success" if code in self.suffixes else "default"
                    yield Button(word.ja, id=f"sfx-{code}", variant=variant)  # type: ignore[arg-type]
            with Grid(id="jcs-grid"):
                for label, code in JCS_CHOICES:
                    yield Button(label, id=f"jcs-{code}")
            with Horizontal(classes="dialog-actions"):
                yield Button("取消 / Cancel", id="pad-cancel")

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        bid = event.button.id or ""
        if bid.startswith("sfx-"):
            code = bid.removeprefix("sfx-")
            self.suffixes ^= {code}
            event.button.variant = "success" if code in self.suffixes else "default"
            return
        if bid.startswith("jcs-"):
            self.dismiss(jcs_code(bid.removeprefix("jcs-"), "".join(self.suffixes)))
        else:
            self.dismiss(None)


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
