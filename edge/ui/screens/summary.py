"""The emergency summary at a glance: allergies and conditions first, "no data" stated."""

from __future__ import annotations

from collections.abc import Iterable

from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Button, Static

from edge.flow import ASSURANCE_TEXT, CONSENT_TEXT, Stage

from ._base import FlowScreen

_STATUS = {
    "found": ("", ""),
    "not_found": ("医療情報の登録なし", "No medical record"),
    "refused": ("同意なし: 閲覧しません", "Consent refused: nothing viewed"),
    "unavailable": ("サマリー取得不可（通信）", "Summary unavailable (network)"),
    "none": ("サマリーなし", "No summary"),
}
_FIRST = ("allergies", "conditions")


class SummaryScreen(FlowScreen):
    STAGE = Stage.SUMMARY
    TITLE_JA = "救急用サマリー"
    TITLE_EN = "Emergency summary"

    def body(self) -> Iterable[Widget]:
        v = self.view
        consent = CONSENT_TEXT[v.consent].pick(self.lang) if v.consent else "—"
        assurance = ASSURANCE_TEXT.get(v.assurance or "")
        badge = assurance.pick(self.lang) if assurance else "—"
        yield Horizontal(
            Static(f"{self.t('同意', 'Consent')}: {consent}", id="consent-state"),
            Static(f"{self.t('本人確認', 'Identity')}: {badge}", id="assurance"),
            id="summary-head",
        )
        mark = self.certificate_mark()
        if mark is not None:
            yield mark
        if v.patient_label:
            yield Static(v.patient_label, id="patient-label")
        status = v.summary_status or "none"
        if status != "found":
            ja, en = _STATUS.get(status, _STATUS["none"])
            yield Static(self.t(ja, en), id="summary-status", classes="warning")
        no_data = self.t("記録なし", "no data")
        for section in v.summary:
            first = section.key in _FIRST
            lines = section.lines or (no_data,)
            yield Static(
                f"■ {section.title.pick(self.lang)}",
                classes="section-title first" if first else "section-title",
                id=f"section-{section.key}",
            )
            yield Static(
                "\n".join(f"  {line}" for line in lines),
                classes="section-body empty" if not section.lines else "section-body",
            )

    def primary(self) -> Button | None:
        return Button(self.t("主訴・バイタルへ", "Complaint & vitals"))

    def press_primary(self) -> None:
        self.edge.now(self.edge.flow.to_vitals)
