"""The emergency department's dashboard (FastAPI, server-rendered HTML, one small JS file).

Every page and API needs a signed-in staff session except the sign-in page and
the two static files; every state change needs the session's CSRF token; every
case shown is audited with who and when. Live updates: ``GET /live`` is a
Server-Sent Events stream of short notices; the page then re-fetches the list.

Every stored case is shown, whatever it holds: each case card is rendered on its
own, and a case that cannot be read or rendered at all shows as a row saying so
(received time, sender), never as an error page for the whole list. Cases the
receiving service refused (``rejections``) are announced in a banner and listed,
code explained, at ``GET /rejections`` (never any content).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.templating import Jinja2Templates
from markupsafe import escape
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from hospital.auth import Authenticator, LoginLocked, LoginRefused, SessionInfo
from hospital.casefile import (
    RANGES,
    REFUSAL_ACTION_JA,
    CaseView,
    Sender,
    from_unix,
    read_case,
    refusal_ja,
    sender_of,
    time_text,
)
from hospital.service import ReceivingService
from hospital.store import CaseRow, Rejection
from sync import PlatformError
from sync.reasons import DECLINE_REASONS

__all__ = ["create_app"]

log = logging.getLogger("hospital.web")

SESSION_COOKIE = "kk_session"
LOGIN_COOKIE = "kk_login"
_STATIC = {"app.js": "text/javascript", "app.css": "text/css"}
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


class _NeedLogin(Exception):
    pass


class _Headers(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = _CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        if "cache-control" not in response.headers:
            response.headers["Cache-Control"] = "no-store"
        return response


def _staff(request: Request) -> SessionInfo:
    auth: Authenticator = request.app.state.auth
    info = auth.session(request.cookies.get(SESSION_COOKIE))
    if info is None:
        raise _NeedLogin()
    return info


Staff = Annotated[SessionInfo, Depends(_staff)]


# A start (覚知 / 接触 / sealing) later than now by more, or longer ago, is not counted from.
_FUTURE_SLACK = timedelta(minutes=5)
_LONGEST = timedelta(days=31)


def _plausible_start(start: datetime | None, now: datetime) -> datetime | None:
    if start is None:
        return None
    try:
        return start if now - _LONGEST <= start <= now + _FUTURE_SLACK else None
    except (OverflowError, TypeError):
        return None


def _since(start: datetime | None, now: datetime) -> str:
    if start is None:
        return "—"
    if _plausible_start(start, now) is None:
        return "—（時刻不正）"
    minutes = max(0, int((now - start).total_seconds() // 60))
    if minutes < 60:
        return f"{minutes}分"
    return f"{minutes // 60}時間{minutes % 60}分"


def _iso(moment: datetime | None) -> str:
    try:
        return moment.isoformat() if moment is not None else ""
    except (OverflowError, ValueError):
        return ""


@dataclass
class _Card:
    """One case of the list: its row, what could be read of it, and its rendered card."""

    row: CaseRow
    view: CaseView | None
    sender: Sender
    html: str = ""  # rendered by the autoescaping templates: shown as it is

    @property
    def answer(self) -> str | None:
        return self.row.answer

    @property
    def destination(self) -> str | None:
        return self.row.destination

    @property
    def case_id(self) -> str:
        return self.row.case_id


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def create_app(service: ReceivingService, auth: Authenticator) -> FastAPI:
    store = service.store
    settings = service.settings
    secure_cookies = settings.cookie_secure or settings.tls_certfile is not None
    templates = Jinja2Templates(directory=str(resources.files("hospital") / "templates"))
    templates.env.globals.update(
        reasons=DECLINE_REASONS, ranges=RANGES, hospital_name=service.identity.name
    )
    templates.env.filters["jst"] = time_text
    templates.env.filters["iso"] = _iso
    static = {n: (resources.files("hospital") / "static" / n).read_bytes() for n in _STATIC}

    app = FastAPI(title="kyukyu hospital", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(_Headers)
    app.state.auth = auth

    @app.exception_handler(_NeedLogin)
    async def need_login(request: Request, exc: _NeedLogin) -> Response:
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            return RedirectResponse("/login", status_code=303)
        return JSONResponse(
            {"error": {"code": "not_signed_in", "message_ja": "サインインしてください。"}},
            status_code=401,
        )

    def client_of(request: Request) -> str:
        return request.client.host if request.client else "?"

    case_template = templates.get_template("_case.html")
    unreadable_template = templates.get_template("_case_unreadable.html")

    def read(row: CaseRow) -> CaseView | None:
        """What can be read of the case, or None when nothing can (logged: no content)."""
        try:
            view = read_case(row.case_id, store.bundle_of(row))
        except Exception as exc:
            log.warning("case of event %s unreadable: %s", row.event_id, type(exc).__name__)
            return None
        if view.call_at is None and view.contact_at is None and not row.sealed_at_suspect:
            view.call_at = from_unix(row.sealed_at)
        return view

    def cards(
        rows: list[CaseRow],
        closures: dict[str, tuple[str, datetime]],
        now: datetime,
        csrf: str,
        detail: bool,
    ) -> list[_Card]:
        out: list[_Card] = []
        for row in rows:
            view = read(row)
            card = _Card(row, view, sender_of(view, row.device_id, row.sender_department))
            ctx = {
                "row": row,
                "v": view,
                "sender": card.sender,
                "sealed": from_unix(row.sealed_at),
                "closure": closures.get(row.case_id),
                "now": now,
                "started": _plausible_start(view.started_at(), now) if view else None,
                "since": lambda v: _since(v.started_at(), now),
                "csrf": csrf,
                "detail": detail,
                "index": len(out) + 1,
            }
            html = None
            if view is not None:
                try:
                    html = case_template.render(ctx)
                except Exception as exc:  # one odd field never takes the list down
                    log.warning("case of event %s not shown: %s", row.event_id, type(exc).__name__)
            if html is None:
                try:
                    html = unreadable_template.render(ctx)
                except Exception:  # the row itself is odd: the least that can be said
                    html = (
                        f'<article class="case unreadable" data-case-id="{escape(row.case_id)}">'
                        "<p>この事案は表示できません。送信元の消防本部に電話で確認してください。"
                        "</p></article>"
                    )
            card.html = html
            out.append(card)
        return out

    def recent_rejections(now: datetime) -> list[Rejection]:
        since = now - timedelta(seconds=settings.retention_seconds)
        rows = [r for r in store.rejections() if _aware(r.at) >= since]
        return sorted(rows, key=lambda r: _aware(r.at), reverse=True)

    def list_context(request: Request, who: SessionInfo) -> dict[str, Any]:
        rows = store.cases()
        store.audit_views(who.username, [r.case_id for r in rows], client_of(request))
        now = datetime.now(UTC)
        closures = store.closures([r.case_id for r in rows])
        return {
            "cases": cards(rows, closures, now, who.csrf, False),
            "closures": closures,
            "refused": len(recent_rejections(now)),
            "now": now,
            "csrf": who.csrf,
            "who": who,
        }

    # -- static --------------------------------------------------------------------

    @app.get("/static/{name}", include_in_schema=False)
    def static_file(name: str) -> Response:
        if name not in _STATIC:
            return Response(status_code=404)
        return Response(
            static[name], media_type=_STATIC[name], headers={"Cache-Control": "max-age=300"}
        )

    # -- sign-in -------------------------------------------------------------------

    def login_page(request: Request, error: str | None = None, status: int = 200) -> Response:
        token = secrets.token_urlsafe(24)
        response = templates.TemplateResponse(
            request, "login.html", {"login_csrf": token, "error": error}, status_code=status
        )
        response.set_cookie(
            LOGIN_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=secure_cookies,
            max_age=1800,
        )
        return response

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request) -> Response:
        return login_page(request)

    @app.post("/login")
    async def login(request: Request) -> Response:
        # The form is read here, not by FastAPI's validation: any body, any field (missing,
        # a megabyte, control characters, a file instead of text) gets the sign-in page
        # with 400 or 401, counted and audited, never a 422 or a 500.
        names = ("username", "password", "totp", "csrf")
        fields = dict.fromkeys(names, "")
        try:
            async with request.form() as form:  # closes any uploaded file
                for name in names:
                    value = form.get(name)
                    fields[name] = value if isinstance(value, str) else ""
        except (HTTPException, ValueError, UnicodeError):  # a malformed body: no fields
            pass
        username, password, totp, csrf = (fields[n] for n in names)
        client = client_of(request)
        expected = request.cookies.get(LOGIN_COOKIE) or ""
        if (
            not expected
            or not csrf
            or not hmac.compare_digest(
                expected.encode("utf-8", "surrogatepass"), csrf.encode("utf-8", "surrogatepass")
            )
        ):
            await run_in_threadpool(auth.refuse_form, username, "bad_csrf", client)
            return login_page(
                request, "ページの有効期限が切れました。もう一度入力してください。", 400
            )
        try:
            token, _ = await run_in_threadpool(auth.login, username, password, totp, client)
        except LoginLocked as exc:
            return login_page(request, exc.message_ja, 429)
        except LoginRefused as exc:
            return login_page(request, exc.message_ja, 401)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=secure_cookies,
            max_age=settings.session_ttl_seconds,
        )
        response.delete_cookie(LOGIN_COOKIE)
        return response

    @app.post("/logout")
    def logout(
        request: Request, who: Staff, csrf: Annotated[str, Form(max_length=100)]
    ) -> Response:
        if not auth.csrf_ok(who, csrf):
            return Response("CSRF", status_code=403)
        auth.logout(request.cookies.get(SESSION_COOKIE))
        store.audit(who.username, "logout", client=client_of(request))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    # -- dashboard -----------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse)
    def dashboard(request: Request, who: Staff) -> Response:
        return templates.TemplateResponse(request, "dashboard.html", list_context(request, who))

    @app.get("/cases/list", response_class=HTMLResponse)
    def case_list(request: Request, who: Staff) -> Response:
        return templates.TemplateResponse(request, "_cases.html", list_context(request, who))

    @app.get("/cases/{case_id}", response_class=HTMLResponse)
    def case_detail(request: Request, case_id: str, who: Staff) -> Response:
        row = store.case(case_id)
        if row is None:
            return Response("not found", status_code=404)
        store.audit_views(who.username, [case_id], client_of(request))
        now = datetime.now(UTC)
        closures = store.closures([row.case_id])
        ctx = {
            "cases": cards([row], closures, now, who.csrf, True),
            "closures": closures,
            "refused": 0,
            "now": now,
            "csrf": who.csrf,
            "who": who,
            "detail": True,
        }
        return templates.TemplateResponse(request, "dashboard.html", ctx)

    @app.get("/rejections", response_class=HTMLResponse)
    def rejections(request: Request, who: Staff) -> Response:
        """Cases the receiving service refused (retention window): when, from which
        device, why in words for staff, what to do. Never any content."""
        now = datetime.now(UTC)
        rows = recent_rejections(now)
        store.audit(who.username, "rejections_viewed", client=client_of(request))
        items = [
            {
                "at": _aware(r.at),
                "device_id": r.device_id,
                "code": r.code,
                "why": refusal_ja(r.code),
            }
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

    @app.post("/cases/{case_id}/answer")
    def answer(
        request: Request,
        case_id: str,
        who: Staff,
        csrf: Annotated[str, Form(max_length=100)],
        answer: Annotated[str | None, Form(pattern="^(accept|decline)$")] = None,
        reason: Annotated[str | None, Form(max_length=40)] = None,
    ) -> Response:
        # Without JavaScript a reason button submits only the reason: that is a decline.
        answer = answer or ("decline" if reason else None)
        if answer is None:
            return JSONResponse({"error": {"code": "answer_required"}}, status_code=422)
        fetch = request.headers.get("x-requested-with") == "fetch"
        if not auth.csrf_ok(who, csrf):
            store.audit(who.username, "csrf_refused", case_id=case_id, client=client_of(request))
            return JSONResponse({"error": {"code": "csrf"}}, status_code=403)
        if answer == "decline" and reason not in DECLINE_REASONS:
            return JSONResponse({"error": {"code": "reason_required"}}, status_code=422)
        if store.case(case_id) is None:
            return JSONResponse({"error": {"code": "unknown_case"}}, status_code=404)
        try:
            service.answer(
                case_id, answer, reason if answer == "decline" else None, by=who.username
            )
        except PlatformError as exc:
            log.warning("answer not delivered: %s", exc.code)
            body = {
                "error": {
                    "code": exc.code,
                    "message_ja": (
                        "プラットフォームに応答を送れませんでした。電話で連絡してください。"
                    ),
                }
            }
            return JSONResponse(body, status_code=502)
        if fetch:
            return JSONResponse({"ok": True})
        return RedirectResponse("/", status_code=303)

    @app.get("/live")
    async def live(request: Request, who: Staff) -> StreamingResponse:
        async def stream() -> AsyncIterator[bytes]:
            q = service.news.subscribe()
            try:
                yield b"retry: 1000\n\n"
                while True:
                    try:
                        notice = await asyncio.wait_for(q.get(), timeout=15)
                    except TimeoutError:
                        if await request.is_disconnected():
                            return
                        if auth.session(request.cookies.get(SESSION_COOKIE)) is None:
                            yield b"event: signed-out\ndata: 1\n\n"
                            return
                        yield b": ping\n\n"
                        continue
                    yield f"event: cases\ndata: {notice}\n\n".encode()
            finally:
                service.news.unsubscribe(q)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    return app
