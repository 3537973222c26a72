"""多数傷病者 (docs/mass-casualty.md): declare an incident, register triage tags, assign
them to hospitals within the capacities they declared, and see the live board.

Loaded only when the crew opens it (the standby screen's 「多数傷病者」 button). Every
call to the platform runs in a worker thread (``edge.flow.IncidentDesk``); the board
redraws when a call answers or a push arrives on the device's stream. A failure says
what to do next (``edge.flow.problem_text``). Age band, sex and injury go only into the
tag's sealed case, never to the platform in clear.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Input, Static

from edge.flow import AGE_BANDS, CATEGORY_JA, IncidentDesk, TagPatient, problem_text
from errbase import KyukyuError

if TYPE_CHECKING:
    from edge.flow import CaseFlow

    from ..app import EdgeApp

__all__ = ["IncidentScreen"]

log = logging.getLogger(__name__)

KINDS = ("交通事故", "火災", "爆発", "建物倒壊", "化学災害", "その他")
SEXES = (("male", "男"), ("female", "女"))
_desks: weakref.WeakKeyDictionary[CaseFlow, IncidentDesk] = weakref.WeakKeyDictionary()


def desk_of(flow: CaseFlow) -> IncidentDesk:
    """One desk per flow (it follows the flow's stream once made)."""
    desk = _desks.get(flow)
    if desk is None:
        desk = _desks[flow] = IncidentDesk(flow)
    return desk


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def board_lines(board: dict[str, Any]) -> list[str]:
    """The board as lines: each hospital's capacity left per category, then the tags (a
    field that is missing or of the wrong type shows as ?, never stops the screen)."""
    hospitals = _dicts(board.get("hospitals"))
    names = {h.get("hospital_id"): str(h.get("name", "?")) for h in hospitals}
    out = []
    for h in hospitals:
        name = str(h.get("name", "?"))
        left, cap = h.get("left"), h.get("capacity")
        if not h.get("answered") or not isinstance(left, dict) or not isinstance(cap, dict):
            out.append(f"{name}  未回答")
            continue
        per = "  ".join(
            f"{ja} 残{left.get(code, '?')}/{cap.get(code, '?')}" for code, ja in CATEGORY_JA.items()
        )
        out.append(f"{name}  {per}")
    for p in _dicts(board.get("patients")):
        where = names.get(p.get("hospital_id"), "未決定") if p.get("hospital_id") else "未決定"
        out.append(
            f"タグ {p.get('tag', '?')} {CATEGORY_JA.get(str(p.get('category')), '?')} → {where}"
        )
    return out


class IncidentScreen(Screen[None]):
    """The incident's own screen, over the standby screen; 「戻る」 leaves it."""

    def __init__(self) -> None:
        super().__init__(classes="incident")
        self.kind = KINDS[0]
        self.category = "red"
        self.age_band: str | None = None
        self.sex: str | None = None

    @property
    def edge(self) -> EdgeApp:
        return self.app  # type: ignore[return-value]

    @property
    def desk(self) -> IncidentDesk:
        return desk_of(self.edge.flow)

    def t(self, ja: str, en: str) -> str:
        return en if self.edge.language == "en" else ja

    def compose(self) -> ComposeResult:
        board = self.desk.board
        with VerticalScroll(id="incident-body"):
            yield Static(self.t("多数傷病者", "Mass casualty"), id="incident-title")
            yield Static("", id="incident-problem", classes="warning")
            if board is None or board.get("closed_at"):
                if board is not None:
                    yield Static("\n".join(self._tally(board)), id="incident-tally")
                yield Input(placeholder=self.t("発生場所", "Place"), id="place", max_length=200)
                with Horizontal(classes="choices"):
                    for i, k in enumerate(KINDS):
                        yield Button(k, id=f"kind-{i}", classes="kind")
                yield Input(
                    placeholder=self.t("推定傷病者数", "Estimated count"),
                    id="count",
                    type="integer",
                )
                yield Button(self.t("事案を宣言", "Declare"), id="declare", variant="error")
            else:
                yield Static(
                    f"{board.get('kind', '?')} ・ {board.get('place', '?')}"
                    f"（推定 {board.get('estimated_count', '?')} 名）",
                    id="incident-head",
                )
                yield Static("\n".join(board_lines(board)), id="incident-board")
                yield Input(placeholder=self.t("トリアージタグ番号", "Tag number"), id="tag")
                with Horizontal(classes="choices"):
                    for code, ja in CATEGORY_JA.items():
                        yield Button(ja, id=f"cat-{code}", classes="cat")
                with Horizontal(classes="choices"):
                    for i, band in enumerate(AGE_BANDS):
                        yield Button(band, id=f"age-{i}", classes="age")
                with Horizontal(classes="choices"):
                    for code, ja in SEXES:
                        yield Button(ja, id=f"sex-{code}", classes="sex")
                yield Input(placeholder=self.t("主な損傷", "Main injury"), id="injury")
                yield Static(self.t("搬送先（受入可能数の残る病院）", "Destination"))
                with Vertical(id="destinations"):
                    for i, h in enumerate(_dicts(board.get("hospitals"))):
                        label, usable = self._dest_label(h)
                        yield Button(label, id=f"dest-{i}", disabled=not usable, classes="dest")
                yield Button(self.t("事案を終了（集計）", "Close (tally)"), id="close-incident")
        with Horizontal(id="incident-actions"):
            yield Button(self.t("戻る", "Back"), id="incident-back")

    def on_mount(self) -> None:
        self.desk.subscribe(self._pushed)

    def on_unmount(self) -> None:
        self.desk.unsubscribe(self._pushed)

    def _pushed(self, board: dict[str, Any]) -> None:
        # From the stream's thread or a worker: redraw on the app's thread.
        with contextlib.suppress(RuntimeError):  # the app is closing
            self.app.call_from_thread(self._redraw)

    def _redraw(self) -> None:
        if self.is_current:
            self.refresh(recompose=True)

    def _tally(self, board: dict[str, Any]) -> list[str]:
        lines = [self.t("終了した事案の集計", "Tally of the closed incident")]
        for t in _dicts(board.get("tally")):
            per = "  ".join(f"{ja} {t.get(code, 0)}" for code, ja in CATEGORY_JA.items())
            lines.append(f"{t.get('name', '?')}  {per}")
        return lines

    def _say(self, text: str) -> None:
        self.query_one("#incident-problem", Static).update(text)

    @work(thread=True, exclusive=True, group="incident")
    def _call(self, fn: Callable[[], Any], after: Callable[[Any], None] | None = None) -> None:
        try:
            out = fn()
        except KyukyuError as exc:
            ja, en = problem_text(exc)
            self.app.call_from_thread(self._say, self.t(ja, en))
            return
        except Exception as exc:  # a bug must not end the screen: say so, keep it
            log.exception("incident call failed")
            ja, en = f"エラー（{type(exc).__name__}）。電話で連絡してください。", "Error: phone."
            self.app.call_from_thread(self._say, self.t(ja, en))
            return
        if after is not None:
            self.app.call_from_thread(after, out)
        self.app.call_from_thread(self._redraw)

    def _value(self, wid: str) -> str:
        return self.query_one(f"#{wid}", Input).value.strip()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        bid = event.button.id or ""
        event.stop()
        if bid == "incident-back":
            self.app.pop_screen()
        elif bid.startswith("kind-"):
            self.kind = KINDS[int(bid.removeprefix("kind-"))]
            self._mark("kind", event.button)
        elif bid.startswith("cat-"):
            self.category = bid.removeprefix("cat-")
            self._mark("cat", event.button)
            self._destinations()
        elif bid.startswith("age-"):
            self.age_band = list(AGE_BANDS)[int(bid.removeprefix("age-"))]
            self._mark("age", event.button)
        elif bid.startswith("sex-"):
            self.sex = bid.removeprefix("sex-")
            self._mark("sex", event.button)
        elif bid == "declare":
            self._declare()
        elif bid.startswith("dest-"):
            self._assign(int(bid.removeprefix("dest-")))
        elif bid == "close-incident":
            self._call(self.desk.close, self._show_tally)

    def _mark(self, group: str, chosen: Button) -> None:
        for b in self.query(f".{group}").results(Button):
            b.variant = "primary" if b is chosen else "default"

    def _destinations(self) -> None:
        board = self.desk.board or {}
        for i, h in enumerate(_dicts(board.get("hospitals"))):
            label, usable = self._dest_label(h)
            for b in self.query(f"#dest-{i}").results(Button):
                b.label = label
                b.disabled = not usable

    def _dest_label(self, h: dict[str, Any]) -> tuple[str, bool]:
        """A destination's button: its capacity left in the chosen category."""
        left = h.get("left")
        n = left.get(self.category) if isinstance(left, dict) else None
        usable = isinstance(n, int) and n > 0
        word = "未回答" if n is None else f"残{n}"
        return f"{h.get('name', '?')}（{CATEGORY_JA[self.category]} {word}）", usable

    def _declare(self) -> None:
        place, count = self._value("place"), self._value("count")
        if not place or not count.isdigit() or int(count) < 1:
            self._say(
                self.t("発生場所と推定傷病者数を入れてください。", "Give the place and count.")
            )
            return
        self._call(lambda: self.desk.declare(place, self.kind, int(count)))

    def _assign(self, index: int) -> None:
        tag = self._value("tag")
        if not tag:
            self._say(self.t("トリアージタグ番号を入れてください。", "Give the tag number."))
            return
        hospitals = _dicts((self.desk.board or {}).get("hospitals"))
        if not 0 <= index < len(hospitals) or not isinstance(
            hospitals[index].get("hospital_id"), str
        ):
            return
        hospital = hospitals[index]
        patient = TagPatient(
            tag, self.category, self.age_band, self.sex, self._value("injury") or None
        )

        def run() -> str:
            self.desk.register(patient)
            return self.desk.assign(patient, hospital["hospital_id"])

        self._call(run)

    def _show_tally(self, tally: dict[str, Any]) -> None:
        board = dict(self.desk.board or {})
        board.update(tally)
        self.desk.board = board
