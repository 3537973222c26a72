"""The emergency summary at a glance.

Pinned above the scrolling body: one row of consent, identity and who verified the
certificate (then the verified attributes, a summary that is missing), so they never
scroll away. In the body: allergies and conditions first, then the other sections with
one line per drug (grouped in ``edge.flow``); a section of one line shares its title's
row; sections without data are stated once, together, at the end ("no data" is never a
blank). A typical patient (5 conditions, 10 drugs) fits two
screens at 100x30 and in the 800x480 kiosk.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.table import Table
from rich.text import Text
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Button, Static

from edge.flow import ASSURANCE_TEXT, CONSENT_TEXT, DRUG_DATES_SEP, Stage, SummarySection

from ._base import FlowScreen

_STATUS = {
    "found": ("", ""),
    "not_found": ("医療情報の登録なし", "No medical record"),
    "refused": ("同意なし: 閲覧しません", "Consent refused: nothing viewed"),
    "unavailable": ("サマリー取得不可（通信）", "Summary unavailable (network)"),
    "none": ("サマリーなし", "No summary"),
}
_FIRST = ("allergies", "conditions")  # always shown by name, with "no data" when empty


def _drug_table(lines: tuple[str, ...]) -> Table:
    """Drug lines as two columns, the dates and fills aligned on the right; a long drug
    name wraps inside its own column, never under the dates."""
    table = Table.grid(padding=(0, 2))
    table.add_column(ratio=1, overflow="fold")
    table.add_column(no_wrap=True)
    for line in lines:
        what, sep, when = line.rpartition(DRUG_DATES_SEP)
        if sep:
            table.add_row(Text(what), Text(when))
        else:  # a note ("ほか3剤は薬剤情報と同じ")
            table.add_row(Text(line), Text(""))
    return table


class SummaryScreen(FlowScreen):
    STAGE = Stage.SUMMARY
    TITLE_JA = "救急用サマリー"
    TITLE_EN = "Emergency summary"

    def pinned(self) -> Iterable[Widget]:
        v = self.view
        consent = CONSENT_TEXT[v.consent].pick(self.lang) if v.consent else "—"
        assurance = ASSURANCE_TEXT.get(v.assurance or "")
        badge = assurance.pick(self.lang) if assurance else "—"
        row: list[Widget] = [
            # No space after the Japanese label: a long consent folds beside it, not below.
            Static(self.t(f"同意：{consent}", f"Consent: {consent}"), id="consent-state"),
            Static(f"{self.t('本人確認', 'Identity')}: {badge}", id="assurance"),
        ]
        mark = self.certificate_mark()
        if mark is not None:
            row.append(mark)
        head: list[Widget] = [Horizontal(*row, id="summary-head")]
        if v.patient_label:
            head.append(Static(v.patient_label, id="patient-label", markup=False))
        status = v.summary_status or "none"
        if status != "found":
            ja, en = _STATUS.get(status, _STATUS["none"])
            head.append(Static(self.t(ja, en), id="summary-status", classes="warning"))
        yield from head

    def body(self) -> Iterable[Widget]:
        empty: list[str] = []
        for section in self.view.summary:
            title = section.title.pick(self.lang)
            first = section.key in _FIRST
            if not section.lines and not first:
                empty.append(title)
                continue
            yield from self._section(section, title, first)
        if empty:
            yield Static(
                f"■ {self.t('記録なし', 'No data')}: {'・'.join(empty)}",
                id="section-empty",
                classes="summary-title empty",
                markup=False,
            )

    def _section(self, section: SummarySection, title: str, first: bool) -> Iterable[Widget]:
        classes = "summary-title first" if first else "summary-title"
        sid = f"section-{section.key}"
        if not section.lines:
            no_data = self.t("記録なし", "no data")
            yield Static(f"■ {title}: {no_data}", id=sid, classes=classes, markup=False)
            return
        if section.drugs is not None:
            title += self.t(f"（{section.drugs}剤）", f" ({section.drugs} drugs)")
        heading = Static(f"■ {title}", id=sid, classes=classes, markup=False)
        if len(section.lines) == 1:  # one line: beside its title
            yield Horizontal(
                heading,
                Static(section.lines[0], classes="summary-body", markup=False),
                classes="summary-row",
            )
            return
        yield heading
        if section.drugs is not None:
            yield Static(_drug_table(section.lines), classes="summary-body drugs")
            return
        yield Static(
            "\n".join(f"  {line}" for line in section.lines),
            classes="summary-body",
            markup=False,
        )

    def primary(self) -> Button | None:
        return Button(self.t("主訴・バイタルへ", "Complaint & vitals"))

    def press_primary(self) -> None:
        self.edge.now(self.edge.flow.to_vitals)
