"""One case: its page (``GET /cases/{id}``) and its card alone (``GET /cases/{id}/card``)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from hospital.web.deps import Cards, Staff, Store, Templates, client_of

__all__ = ["router"]

router = APIRouter()


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_detail(
    request: Request, case_id: str, who: Staff, store: Store, cards: Cards, templates: Templates
) -> Response:
    row = store.case(case_id)
    if row is None:
        return Response("not found", status_code=404)
    store.audit_views(who.username, [case_id], client_of(request))
    now = datetime.now(UTC)
    shown, _ = cards.cards([row], now, who.csrf, detail=True)
    ctx = {
        "cases": shown,
        "refused": 0,
        "now": now,
        "csrf": who.csrf,
        "who": who,
        "detail": True,
        "key_problem": request.app.state.service.keys.problem,
    }
    return templates.TemplateResponse(request, "dashboard.html", ctx)


@router.get("/cases/{case_id}/card", response_class=HTMLResponse)
def case_card(request: Request, case_id: str, who: Staff, store: Store, cards: Cards) -> Response:
    """The case's card as the list shows it (an HTML fragment; a view, audited)."""
    row = store.case(case_id)
    if row is None:
        return Response("not found", status_code=404)
    store.audit_views(who.username, [case_id], client_of(request))
    shown, _ = cards.cards([row], datetime.now(UTC), who.csrf, detail=False)
    return HTMLResponse(shown[0].html)
