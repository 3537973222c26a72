"""受信できない事案: the cases the receiving service refused, never any content."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from hospital.casefile import REFUSAL_ACTION_JA, refusal_ja
from hospital.web.cards import aware
from hospital.web.deps import Cards, Settings, Staff, Store, Templates, client_of

__all__ = ["router"]

router = APIRouter()


@router.get("/rejections", response_class=HTMLResponse)
def rejections(
    request: Request,
    who: Staff,
    store: Store,
    cards: Cards,
    settings: Settings,
    templates: Templates,
) -> Response:
    """Cases the receiving service refused (retention window): when, from which
    device, why in words for staff, what to do. Never any content."""
    rows = cards.recent_rejections(datetime.now(UTC))
    store.audit(who.username, "rejections_viewed", client=client_of(request))
    items = [
        {"at": aware(r.at), "device_id": r.device_id, "code": r.code, "why": refusal_ja(r.code)}
        for r in rows
    ]
    ctx = {
        "items": items,
        "action": REFUSAL_ACTION_JA,
        "retention_days": max(1, settings.retention_seconds // 86400),
        "csrf": who.csrf,
        "who": who,
    }
    return templates.TemplateResponse(request, "rejections.html", ctx)
