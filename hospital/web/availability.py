"""The availability panel (``/availability``: one tap per status, who changed what and
when) and the local API a bed-management system uses (``POST /api/availability``).

Both call ``hospital.availability.set_availability``. The page is for signed-in staff
(the form's CSRF token); the API takes either a signed-in session with ``X-CSRF-Token``
or, when ``availability_api_token`` is set, ``Authorization: Bearer <token>`` (recorded
as ``api``). A refused change says why; one the platform did not take changes nothing.
"""

from __future__ import annotations

import hmac
import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from errbase import KyukyuError
from hospital.availability import (
    AvailabilityRefused,
    history,
    parse_change,
    set_availability,
)
from hospital.service import ReceivingService
from hospital.web.deps import SESSION_COOKIE, CsrfForm, Service, Staff, Templates
from hospital.web.errors import WebError
from sync import PlatformError
from sync.availability import HospitalAvailability, parse_hospital_availability
from sync.vocabulary import AVAILABILITY_ITEM, AVAILABILITY_ITEMS, AVAILABILITY_STATUSES

__all__ = ["router"]

router = APIRouter()

_CHOICES = [(s, AVAILABILITY_STATUSES[s].ja) for s in ("available", "consult", "unavailable")]


class AvailabilityRejected(WebError):
    status = 422
    code = "availability_invalid"
    message_ja = AvailabilityRefused.message_ja
    message_en = AvailabilityRefused.message_en


class AvailabilityFailed(WebError):
    status = 502
    code = "availability_not_sent"
    message_ja = (
        "プラットフォームに送れませんでした。応需状況は変わっていません。もう一度押してください。"
    )
    message_en = "The platform did not take it; nothing changed. Retry."


class ApiNotAllowed(WebError):
    status = 401
    code = "not_signed_in"
    message_ja = "サインインするか、APIトークンを指定してください。"
    message_en = "Sign in, or give the API token."


def _rows(service: ReceivingService) -> tuple[list[dict[str, Any]], str | None]:
    now = datetime.now(UTC)
    problem: str | None = None
    doc: HospitalAvailability | None = None
    try:
        doc = parse_hospital_availability(service.client.availability())
    except (PlatformError, ValueError) as exc:
        code = getattr(exc, "code", "malformed")
        problem = f"現在の応需状況を取得できません（{code}）。ボタンでの変更は送れます。"
    rows = []
    for item in AVAILABILITY_ITEMS:
        held = doc.items.get(item.code) if doc else None
        status = doc.status(item.code, now) if doc else "unknown"
        rows.append(
            {
                "code": item.code,
                "label": item.label.ja,
                "status": status,
                "status_label": AVAILABILITY_STATUSES[status].ja,
                "note": held.note if held and status != "unknown" else None,
                "count": held.count if held and status != "unknown" else None,
                "expires_at": held.expires_at if held else None,
            }
        )
    return rows, problem


def _changes_shown(service: ReceivingService) -> list[dict[str, Any]]:
    out = []
    for c in history(service.store):
        item = AVAILABILITY_ITEM.get(str(c.get("code")))
        status = str(c.get("status"))
        out.append(
            {
                **c,
                "label": item.label.ja if item else str(c.get("code")),
                "status_label": AVAILABILITY_STATUSES[status].ja
                if status in AVAILABILITY_STATUSES
                else "取消",
                "expires": datetime.fromisoformat(c["expires_at"]) if c.get("expires_at") else None,
            }
        )
    return out


@router.get("/availability", response_class=HTMLResponse)
def availability_page(
    request: Request, who: Staff, service: Service, templates: Templates
) -> Response:
    rows, problem = _rows(service)
    return templates.TemplateResponse(
        request,
        "availability.html",
        {
            "rows": rows,
            "problem": problem,
            "choices": _CHOICES,
            "changes": _changes_shown(service),
            "hours": f"{service.settings.availability_hours:g}",
            "csrf": who.csrf,
            "who": who,
        },
    )


def _apply(service: ReceivingService, raw_items: list[Any], by: str) -> dict[str, Any]:
    try:
        changes = [
            parse_change(r, default_hours=service.settings.availability_hours) for r in raw_items
        ]
        return set_availability(service.client, service.store, changes, by=by)
    except AvailabilityRefused:
        raise AvailabilityRejected() from None
    except KyukyuError:
        raise AvailabilityFailed() from None


@router.post("/availability")
def availability_form(
    who: CsrfForm,
    service: Service,
    code: Annotated[str, Form(max_length=40)],
    status: Annotated[str, Form(max_length=20)],
    note: Annotated[str | None, Form(max_length=100)] = None,
) -> Response:
    """One tap: this item's status for the default time; back to the panel."""
    _apply(service, [{"code": code, "status": status, "note": note or None}], who.username)
    return RedirectResponse("/availability", status_code=303)


def _api_caller(request: Request, service: ReceivingService) -> str:
    """``api`` for the bearer token, the staff member for a session with its CSRF token."""
    token = service.settings.availability_api_token
    given = request.headers.get("authorization", "")
    if token and given.startswith("Bearer ") and given[7:].isascii():
        if hmac.compare_digest(given[7:].encode(), token.encode()):
            return "api"
        raise ApiNotAllowed()
    auth = request.app.state.auth
    info = auth.session(request.cookies.get(SESSION_COOKIE))
    csrf = request.headers.get("x-csrf-token")
    if info is None or csrf is None or not csrf.isascii() or not auth.csrf_ok(info, csrf):
        raise ApiNotAllowed()
    return str(info.username)


@router.post("/api/availability")
async def availability_api(request: Request, service: Service) -> Response:
    """``{"items": [{"code": "neurosurgery", "status": "unavailable", "note": "手術中",
    "hours": 4}, ...]}`` (or ``expires_at``); answers the platform's new document."""
    by = _api_caller(request, service)
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeError):
        raise AvailabilityRejected() from None
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list) or not 0 < len(items) <= 40:
        raise AvailabilityRejected()
    doc = await run_in_threadpool(_apply, service, items, by)
    return JSONResponse(doc)
