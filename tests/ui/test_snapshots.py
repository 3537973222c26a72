"""Snapshots of the main screens at the panel's size, in the day and the night theme.

The screens render a fixed ``CaseView`` (a frozen flow), so the pictures do not move
with the date or the network. Update after an intended change with
``pytest tests/ui/test_snapshots.py --snapshot-update`` and review the SVGs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from edge.doctor import Check
from edge.flow import (
    CaseView,
    Consent,
    EraOffer,
    HospitalRow,
    IdentityMethod,
    Notice,
    Stage,
    SummarySection,
    Text,
    VitalsDraft,
)
from edge.flow import _texts as T
from edge.flow._summary import SECTION_ORDER
from edge.ui import EdgeApp, SetupApp, SetupProblem

PANEL = (100, 30)
STATUS: dict[str, Any] = {
    "reader_ok": True,
    "network_ok": True,
    "platform_ok": True,
    "waiting_sealed": 0,
}
LINES = {
    "conditions": ("慢性心不全（I50.9） 2003/02/28〜", "2型糖尿病（E11） 2009/02/02〜"),
    "medications": (
        "フロセミド錠20mg 1日1回朝食後 1回1錠 42日分  2026/08/31〜2026/11/26 計3回",
        "カンデサルタン錠8mg 1日1回朝食後 1回1錠 42日分  2026/11/26 計1回",
    ),
    "visits": ("2026/11/20 外来 内科（デモ中央病院）",),
}
DRUG_COUNTS = {"medications": 2}
SUMMARY = tuple(
    SummarySection(k, t, LINES.get(k, ()), DRUG_COUNTS.get(k)) for k, t in SECTION_ORDER
)
HOSPITALS = (
    HospitalRow(
        "h1", "テスト駅前クリニック", 0.1, selected=True, sent=True, answer="accept", route="direct"
    ),
    HospitalRow(
        "h2",
        "テスト中央病院",
        0.5,
        selected=True,
        sent=True,
        answer="decline",
        reason="満床",
        route="platform",
    ),
    HospitalRow("h3", "テスト救命救急センター", 2.3, selected=True),
)

VIEWS = {
    "standby": CaseView(Stage.STANDBY, **STATUS),
    "consent": CaseView(
        Stage.CONSENT,
        case_open=True,
        card_used=True,
        token_type="card",
        identity_options=tuple(IdentityMethod),
        **STATUS,
    ),
    "pin": CaseView(
        Stage.PIN,
        case_open=True,
        card_used=True,
        token_type="card",
        pin_tries_left=2,
        notice=Notice(Text("暗証番号が違います。残り2回です。", "Wrong PIN: 2 left")),
        **STATUS,
    ),
    "collation_b": CaseView(
        Stage.COLLATION_B,
        case_open=True,
        card_used=True,
        token_type="card",
        collation_b_tries_left=9,
        notice=Notice(
            Text(T.COLLATION_B_WRONG.ja.format(tries=9), T.COLLATION_B_WRONG.en.format(tries=9))
        ),
        **STATUS,
    ),
    "collation_b_era": CaseView(
        Stage.COLLATION_B,
        case_open=True,
        card_used=True,
        token_type="card",
        era_offer=EraOffer(Text("1980年3月1日", "1980-03-01"), "昭和55年3月1日", "550301"),
        notice=Notice(
            Text(
                T.ERA_OFFER.ja.format(
                    western="1980年3月1日", era="昭和55年3月1日", digits="550301"
                ),
                "",
            ),
            "info",
        ),
        **STATUS,
    ),
    "summary": CaseView(
        Stage.SUMMARY,
        case_open=True,
        card_used=True,
        token_type="card",
        consent=Consent.CONSENTED,
        assurance="face_check",
        summary_status="found",
        summary=SUMMARY,
        **STATUS,
    ),
    "vitals": CaseView(
        Stage.VITALS,
        case_open=True,
        card_used=True,
        chief_complaint="胸痛",
        summary_status="found",
        vitals=(  # newest first: the second set is being edited, the first stays listed
            VitalsDraft(
                systolic=300,
                diastolic=60,
                pulse=118,
                respiration=24,
                spo2=91,
                o2=4,
                temperature=36.4,
                jcs="10R",
                gcs_e=3,
                gcs_v=4,
                gcs_m=5,
                observed_at=datetime(2026, 1, 1, 1, 12, tzinfo=UTC),
            ),
            VitalsDraft(
                systolic=150,
                diastolic=92,
                pulse=88,
                respiration=18,
                spo2=97,
                temperature=36.8,
                jcs="1",
                observed_at=datetime(2026, 1, 1, 1, 2, tzinfo=UTC),
            ),
        ),
        vitals_selected=2,
        **STATUS,
    ),
    "hospitals": CaseView(
        Stage.HOSPITALS,
        case_open=True,
        hospitals=HOSPITALS,
        **{
            **STATUS,
            "network_ok": False,
            "platform_ok": False,
            "waiting_sealed": 1,
            "waiting_by_kind": (("case", 1),),
        },
    ),
}


class FrozenFlow:
    """Stands still at one view (rendering only; intents do nothing)."""

    def __init__(self, view: CaseView) -> None:
        self._view = view

    def view(self) -> CaseView:
        return self._view

    def subscribe(self, listener: Callable[[CaseView], None]) -> None:
        pass

    def cancel_wait(self) -> None:
        pass

    def forget(self) -> None:
        pass


@pytest.mark.parametrize("theme", ["day", "night"])
@pytest.mark.parametrize("screen", sorted(VIEWS))
def test_screen_snapshot(snap_compare: Any, screen: str, theme: str) -> None:
    app = EdgeApp(FrozenFlow(VIEWS[screen]), theme=theme, watch_cards=False)  # type: ignore[arg-type]
    assert snap_compare(app, terminal_size=PANEL)


_NOT_ENROLLED = (
    Check("pcscd", "ok", "pcscd sees 1 reader(s)", "リーダーを1台認識しています"),
    Check(
        "platform",
        "fail",
        "no platform configured (not enrolled)",
        "プラットフォームが設定されていません",
        "kyukyu provision enroll",
        "kyukyu provision enroll を実行する",
    ),
    Check(
        "enrollment",
        "fail",
        "device not enrolled",
        "端末が登録されていません",
        "kyukyu provision enroll",
        "kyukyu provision enroll を実行する",
    ),
    Check("disk", "ok", "12.0 GB free", "空き容量 12.0 GB"),
)
_INVALID = (
    Check(
        "settings",
        "fail",
        "settings invalid (KYUKYU_EDGE_BASE_LAT: ...)",
        "端末の設定に誤りがあります",
        "fix /etc/kyukyu/edge.env",
        "設定ファイルを直す",
    ),
)
SETUP = {
    "not_enrolled": (SetupProblem("not_enrolled"), _NOT_ENROLLED),
    "invalid": (
        SetupProblem(
            "invalid",
            "KYUKYU_EDGE_BASE_LAT: Input should be a valid number, unable to parse string "
            "as a number (got 'north')",
        ),
        _INVALID,
    ),
}


@pytest.mark.parametrize("kind", sorted(SETUP))
def test_setup_screen_snapshot(snap_compare: Any, kind: str) -> None:
    """未設定 / 設定に誤り with fixed findings (the doctor's checks vary by machine)."""
    import asyncio

    problem, findings = SETUP[kind]
    app = SetupApp(problem, diagnose=lambda: findings)

    async def diagnosed(pilot: Any) -> None:
        assert await asyncio.to_thread(app.diagnosed.wait, 30)
        await pilot.pause()

    assert snap_compare(app, terminal_size=PANEL, run_before=diagnosed)
