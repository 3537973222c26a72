"""The screen of a device that cannot start a case: not enrolled, or its settings are wrong.

It says which (未設定 / 設定に誤り, the bad setting named: the settings loader never puts a
secret in its message), what to do, and the ``kyukyu doctor`` findings, one line per
check. The findings come from a callable the command hands in (``kyukyu edge`` runs
``edge.doctor``'s checks): the UI itself does no I/O. No case can start from here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from textual import work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Static

from ..widgets import ActionBar

if TYPE_CHECKING:
    from ..app import EdgeApp, SetupApp

__all__ = ["Finding", "SetupProblem", "SetupScreen"]


class Finding(Protocol):
    """One check's result (``edge.doctor.Check``): status, id, message and fix."""

    @property
    def id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def message_ja(self) -> str: ...
    @property
    def message_en(self) -> str: ...
    @property
    def fix_ja(self) -> str | None: ...
    @property
    def fix_en(self) -> str | None: ...


@dataclass(frozen=True)
class SetupProblem:
    """Why no case can start: ``not_enrolled`` (未設定) or ``invalid`` (設定に誤り)."""

    kind: Literal["not_enrolled", "invalid"]
    # The loader's own words: the variable and what is wrong with it (no secret values).
    detail: str = ""


_LABEL = {"ok": "OK", "warn": "注意", "fail": "不可"}
_LABEL_EN = {"ok": "OK", "warn": "WARN", "fail": "FAIL"}


def finding_line(f: Finding, lang: str) -> str:
    """``kyukyu doctor``'s line for one check, in the screen's language."""
    if lang == "en":
        fix = f"; fix: {f.fix_en}" if f.fix_en else ""
        return f"{_LABEL_EN.get(f.status, f.status)} {f.id}: {f.message_en}{fix}"
    fix = f"（対処: {f.fix_ja}）" if f.fix_ja else ""
    return f"{_LABEL.get(f.status, f.status)} {f.id}: {f.message_ja}{fix}"


class SetupScreen(Screen[None]):
    """未設定 / 設定に誤り: what is wrong, what to do, the doctor's findings."""

    def __init__(
        self, problem: SetupProblem, diagnose: Callable[[], Sequence[Finding]] | None
    ) -> None:
        super().__init__(classes=f"setup-{problem.kind.replace('_', '-')}")
        self.problem = problem
        self.diagnose = diagnose
        self.findings: Sequence[Finding] | None = None

    @property
    def edge(self) -> SetupApp | EdgeApp:
        return self.app  # type: ignore[return-value]

    def t(self, ja: str, en: str) -> str:
        return en if self.edge.language == "en" else ja

    def compose(self) -> ComposeResult:
        p = self.problem
        if p.kind == "not_enrolled":
            title = self.t("未設定", "Not enrolled")
            notice = self.t(
                "この端末はまだ登録されていません。事案は開始できません。",
                "This device is not enrolled yet. No case can start.",
            )
        else:
            title = self.t("設定に誤り", "Settings are wrong")
            notice = self.t(
                "端末の設定に誤りがあります。事案は開始できません。",
                "The device's settings are wrong. No case can start.",
            )
        yield Static(self.t(f"マイナ救急：{title}", f"Myna Emergency: {title}"), id="title")
        yield Static(notice, id="notice", classes="error")
        with VerticalScroll(id="body"):
            if p.detail:
                yield Static(
                    f"{self.t('誤りのある設定', 'The wrong setting')}: {p.detail}",
                    id="setup-detail",
                )
            yield Static(
                self.t(
                    "技術担当者に連絡してください。技術担当者は `kyukyu doctor` で診断し、"
                    + (
                        "`kyukyu provision enroll` で端末を登録します。登録の後、"
                        if p.kind == "not_enrolled"
                        else "設定ファイルを直します。直した後、"
                    )
                    + "端末を再起動してください。",
                    "Call the technician. They run `kyukyu doctor`, then "
                    + (
                        "enroll the device (`kyukyu provision enroll`)."
                        if p.kind == "not_enrolled"
                        else "fix the settings file."
                    )
                    + " Restart the device afterwards.",
                ),
                id="setup-todo",
                classes="hint",
            )
            yield Static(
                self.t("診断結果（kyukyu doctor）", "Diagnosis (kyukyu doctor)"),
                classes="section-title",
            )
            yield Static(self._findings_text(), id="findings")
        yield ActionBar(
            Button("English" if self.edge.language != "en" else "日本語", id="lang"),
            primary=Button(self.t("再診断", "Check again")),
        )

    def _findings_text(self) -> str:
        if self.diagnose is None:
            return self.t("診断できません。", "No diagnosis available.")
        if self.findings is None:
            return self.t("診断中…", "Checking…")
        return "\n".join(finding_line(f, self.edge.language) for f in self.findings)

    def on_mount(self) -> None:
        self.run_diagnosis()

    @work(thread=True, exclusive=True, group="diagnosis")
    def run_diagnosis(self) -> None:
        """The checks touch the network and the readers: off the UI thread."""
        if self.diagnose is None:
            return
        self.app.call_from_thread(self._show_findings, None)
        findings = list(self.diagnose())
        self.app.call_from_thread(self._show_findings, findings)

    def _show_findings(self, findings: Sequence[Finding] | None) -> None:
        self.findings = findings
        self.query_one("#findings", Static).update(self._findings_text())
        if findings is not None:
            self.edge.diagnosed.set()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "primary":
            self.edge.diagnosed.clear()
            self.run_diagnosis()
        elif event.button.id == "lang":
            self.edge.language = "en" if self.edge.language == "ja" else "ja"
            self.refresh(recompose=True)
