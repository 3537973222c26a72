"""Who verified the card's certificate is on screen in Japanese (issue 13): the summary and
the vitals screens show 証明書: 端末で検証済み / プラットフォームで検証済み / 端末では未検証."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from textual.widgets import Static

from edge.flow import CaseView, Consent, Stage
from edge.ui import EdgeApp
from tests.ui._pilot import PANEL, screen_text

pytestmark = pytest.mark.anyio

LABELS = {
    "trusted": "証明書: 端末で検証済み",
    "verified_by_platform": "証明書: プラットフォームで検証済み",
    "not_verified_on_device": "証明書: 端末では未検証",
    "untrusted": "証明書: 証明書に問題あり",
}


class FrozenFlow:
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


@pytest.mark.parametrize("stage", [Stage.SUMMARY, Stage.VITALS])
@pytest.mark.parametrize("status", sorted(LABELS))
async def test_the_certificate_mark_is_shown(stage: Stage, status: str) -> None:
    view = CaseView(
        stage,
        case_open=True,
        card_used=True,
        token_type="card",
        consent=Consent.CONSENTED,
        certificate_ok=status != "untrusted",
        certificate_status=status,
        summary_status="unavailable",
    )
    app = EdgeApp(FrozenFlow(view), watch_cards=False)  # type: ignore[arg-type]
    async with app.run_test(size=PANEL) as pilot:
        await pilot.pause()
        assert app.screen.query_one("#certificate-state", Static).region.height >= 1  # on screen
        assert LABELS[status] in screen_text(app)
        warned = app.screen.query_one("#certificate-state", Static).has_class("warning")
        assert warned == (status in ("not_verified_on_device", "untrusted"))


async def test_no_mark_before_a_card_was_read() -> None:
    app = EdgeApp(FrozenFlow(CaseView(Stage.VITALS, case_open=True)), watch_cards=False)  # type: ignore[arg-type]
    async with app.run_test(size=PANEL) as pilot:
        await pilot.pause()
        assert "証明書:" not in screen_text(app)
