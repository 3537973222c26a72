"""``/incidents``: the 多数傷病者 incidents this hospital was alerted of, one form per open
incident to answer how many it can take now per START category (赤/黄/緑), the capacity
left and the tags assigned here (``hospital.incidents``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from errbase import KyukyuError
from hospital.incidents import CATEGORIES, answer_capacity, incidents
from hospital.web.deps import CsrfForm, Service, Staff, Templates
from hospital.web.errors import WebError

__all__ = ["router"]

router = APIRouter()

Count = Annotated[int, Form(ge=0, le=1000)]


class CapacityNotSent(WebError):
    status = 502
    code = "capacity_not_sent"
    message_ja = (
        "プラットフォームに送れませんでした。受入可能数は変わっていません。もう一度送ってください。"
    )
    message_en = "The platform did not take it; nothing changed. Retry."


class IncidentClosed(WebError):
    status = 409
    code = "incident_closed"
    message_ja = "この事案は終了しています。受入可能数は送っていません。"
    message_en = "The incident is closed; nothing was sent."


@router.get("/incidents", response_class=HTMLResponse)
def incidents_page(
    request: Request, who: Staff, service: Service, templates: Templates
) -> Response:
    problem = None
    try:
        shown = incidents(service.client)
    except KyukyuError as exc:
        shown = []
        code = getattr(exc, "code", "error")
        problem = f"事案を取得できません（{code}）。再読み込みしてください。"
    return templates.TemplateResponse(
        request,
        "incidents.html",
        {
            "incidents": shown,
            "categories": CATEGORIES,
            "problem": problem,
            "csrf": who.csrf,
            "who": who,
        },
    )


@router.post("/incidents/{incident_id}/capacity")
def capacity_form(
    incident_id: Annotated[str, Path(pattern=r"^inc-[0-9a-f]{16}$")],
    who: CsrfForm,
    service: Service,
    red: Count,
    yellow: Count,
    green: Count,
) -> Response:
    try:
        answer_capacity(
            service.client,
            service.store,
            incident_id,
            {"red": red, "yellow": yellow, "green": green},
            by=who.username,
        )
    except KyukyuError as exc:
        if getattr(exc, "hub_code", None) == "incident_closed":
            raise IncidentClosed() from None
        raise CapacityNotSent() from None
    return RedirectResponse("/incidents", status_code=303)
