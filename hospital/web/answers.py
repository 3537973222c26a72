"""A staff member's answer to a case: the page's form and the JSON API share one function.

``answer_case`` holds the rules (an answer is accept or decline; a decline needs one
of ``DECLINE_REASONS``; the case must be stored here; the platform must take the
answer before it is recorded and audited); both routes are signed in and CSRF
checked by the same dependencies (the form's ``csrf`` field, the API's
``X-CSRF-Token`` header) and answer the same refusals with the same codes.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from hospital.auth import SessionInfo
from hospital.service import ReceivingService
from hospital.web.deps import CsrfForm, CsrfHeader, Service
from hospital.web.errors import (
    AnswerDeliveryFailed,
    AnswerRequired,
    BadRequestBody,
    ReasonRequired,
    UnknownCase,
)
from sync import PlatformError
from sync.reasons import DECLINE_REASONS

__all__ = ["answer_case", "router"]

log = logging.getLogger("hospital.web")

router = APIRouter()


def answer_case(
    service: ReceivingService,
    who: SessionInfo,
    case_id: str,
    answer: str | None,
    reason: str | None,
) -> str:
    """Send ``who``'s answer to the platform, then record it; return the answer sent.

    Without an ``answer`` a ``reason`` is a decline (a reason button without JavaScript).

    Raises:
        AnswerRequired, ReasonRequired, UnknownCase: refused, nothing sent.
        AnswerDeliveryFailed: the platform did not take it; nothing recorded.
    """
    answer = answer or ("decline" if reason else None)
    if answer not in ("accept", "decline"):
        raise AnswerRequired()
    if answer == "decline" and reason not in DECLINE_REASONS:
        raise ReasonRequired()
    if service.store.case(case_id) is None:
        raise UnknownCase()
    try:
        service.answer(case_id, answer, reason if answer == "decline" else None, by=who.username)
    except PlatformError as exc:
        log.warning("answer not delivered: %s", exc.code)
        raise AnswerDeliveryFailed(exc.code) from None
    return answer


@router.post("/cases/{case_id}/answer")
def answer_form(
    request: Request,
    case_id: str,
    who: CsrfForm,
    service: Service,
    answer: Annotated[str | None, Form(pattern="^(accept|decline)$")] = None,
    reason: Annotated[str | None, Form(max_length=40)] = None,
) -> Response:
    """The card's buttons: back to the list, or ``{"ok": true}`` for the page's script."""
    answer_case(service, who, case_id, answer, reason)
    if request.headers.get("x-requested-with") == "fetch":
        return JSONResponse({"ok": True})
    return RedirectResponse("/", status_code=303)


def _text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    return value if isinstance(value, str) else None


@router.post("/api/cases/{case_id}/answer")
async def answer_api(request: Request, case_id: str, who: CsrfHeader, service: Service) -> Response:
    """``{"answer": "accept"}`` or ``{"answer": "decline", "reason": "満床"}``."""
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeError):
        raise BadRequestBody() from None
    if not isinstance(body, dict):
        raise BadRequestBody()
    sent = await run_in_threadpool(
        answer_case, service, who, case_id, _text(body, "answer"), _text(body, "reason")
    )
    reason = _text(body, "reason") if sent == "decline" else None
    return JSONResponse({"ok": True, "case_id": case_id, "answer": sent, "reason": reason})
