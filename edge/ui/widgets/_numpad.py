"""A numeric pad for gloved fingers: PIN, 照合番号B and vitals are keyed here, never typed."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.message import Message
from textual.widgets import Button, Static


class NumPad(Vertical):
    """Digits 0-9, delete, and optionally a decimal point; shows the value (masked if secret)."""

    DEFAULT_CSS = """
    NumPad { height: auto; width: 100%; max-width: 60; }
    NumPad #pad-display { height: 3; border: round $primary; content-align: center middle;
                          text-style: bold; width: 100%; }
    NumPad Grid { grid-size: 3 4; grid-gutter: 0 1; height: 12; width: 100%; }
    NumPad Grid Button { width: 100%; height: 3; min-width: 6; }
    """

    @dataclass
    class Changed(Message):
        pad: NumPad
        value: str

    def __init__(
        self,
        *,
        max_len: int = 4,
        secret: bool = False,
        decimal: bool = False,
        value: str = "",
        replace: bool = False,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.max_len = max_len
        self.secret = secret
        self.decimal = decimal
        self.value = value
        # The value shown is the one being corrected: the first digit starts a new one.
        self.replace = replace and bool(value)

    def compose(self) -> ComposeResult:
        yield Static(self._shown(), id="pad-display")
        keys = [Button(d, id=f"key-{d}") for d in "123456789"]
        keys.append(Button("." if self.decimal else "", id="key-dot", disabled=not self.decimal))
        keys.append(Button("0", id="key-0"))
        keys.append(Button("⌫", id="key-del", variant="warning"))
        for key in keys:
            # A PIN like 1111 is four quick taps on one key: none may be swallowed by
            # the button's press animation (which ignores clicks while it lasts).
            key.active_effect_duration = 0
        yield Grid(*keys)

    def _shown(self) -> str:
        if not self.value:
            return "—"
        return "●" * len(self.value) if self.secret else self.value

    def _set(self, value: str) -> None:
        self.value = value
        self.query_one("#pad-display", Static).update(self._shown())
        self.post_message(self.Changed(self, value))

    def clear(self) -> None:
        self._set("")

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        key = (event.button.id or "").removeprefix("key-")
        if self.replace and (key.isdigit() or key == "dot"):
            self.value = ""
        self.replace = False
        if key == "del":
            self._set(self.value[:-1])
        elif len(self.value) >= self.max_len:
            return
        elif key == "dot":
            if self.decimal and "." not in self.value:
                self._set(self.value + ".")
        elif key.isdigit():
            self._set(self.value + key)
