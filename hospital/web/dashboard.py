"""The list of cases: the page, its HTML fragment, and the list as JSON (``/api/cases``).

The page renders every case on load. After that a browser keeps it current
through ``GET /api/cases`` (ids, states and versions, read from the rows without
opening any case) and fetches only the cards it lacks or whose version changed
(``GET /cases/{id}/card``): one new case costs one card, however many are stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from hospital.auth import SessionInfo
from hospital.web.cards import CardRenderer, case_state, case_version, iso
from hospital.web.deps import Cards, Service, Staff, Store, Templates, client_of

__all__ = ["router"]

router = APIRouter()


def _list_context(request: Request, who: SessionInfo, cards: CardRenderer) -> dict[str, Any]:
    rows = cards.store.cases()
    cards.store.audit_views(who.username, [r.case_id for r in rows], client_of(request))
    now = datetime.now(UTC)
    shown, _ = cards.cards(rows, now, who.csrf, detail=False)
    return {
        "cases": shown,
        "refused": len(cards.recent_rejections(now)),
        "now": now,
        "csrf": who.csrf,
        "who": who,
        # The key file the service could not take (it keeps its keys): for the administrator.
        "key_problem": request.app.state.service.keys.problem,
    }


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request, who: Staff, cards: Cards, templates: Templates) -> Response:
    return templates.TemplateResponse(request, "dashboard.html", _list_context(request, who, cards))


@router.get("/cases/list", response_class=HTMLResponse)
def case_list(request: Request, who: Staff, cards: Cards, templates: Templates) -> Response:
    return templates.TemplateResponse(request, "_cases.html", _list_context(request, who, cards))


@router.get("/cases/banner", response_class=HTMLResponse)
def refused_banner(request: Request, who: Staff, cards: Cards, templates: Templates) -> Response:
    """The refusals' banner alone (an HTML fragment), for the page's script."""
    refused = len(cards.recent_rejections(datetime.now(UTC)))
    return templates.TemplateResponse(request, "_banner.html", {"refused": refused})


@router.get("/api/cases")
def api_cases(who: Staff, store: Store, cards: Cards, service: Service) -> Response:
    """The stored cases, newest first: id, when received, state and version; how many
    refusals the banner counts; the key file's problem (``hospital.keyring``; null when
    none). Nothing of any case's content (nothing is opened)."""
    rows = store.cases()
    closed = store.closures([r.case_id for r in rows])
    items = [
        {
            "case_id": r.case_id,
            "received_at": iso(r.received_at),
            "state": case_state(r, r.case_id in closed),
            "answer": r.answer,
            "reason": r.answer_reason,
            "destination": r.destination,
            "version": case_version(r, r.case_id in closed),
        }
        for r in rows
    ]
    refused = len(cards.recent_rejections(datetime.now(UTC)))
    problem = service.keys.problem
    key_problem = (
        None if problem is None else {"code": problem.code, "message_ja": problem.message_ja}
    )
    return JSONResponse({"cases": items, "refused": refused, "key_problem": key_problem})
