"""Sign-in, sign-out and the session as the API sees it (``GET /api/session``)."""

from __future__ import annotations

import hmac
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from hospital.auth import LoginLocked, LoginRefused
from hospital.web.deps import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    Auth,
    CsrfForm,
    Settings,
    Store,
    Templates,
    client_of,
)

__all__ = ["router"]

router = APIRouter()

_FIELDS = ("username", "password", "totp", "csrf")


def _secure(settings: Settings) -> bool:
    return settings.cookie_secure or settings.tls_certfile is not None


def _with_login_token(response: Response, token: str, settings: Settings) -> Response:
    """``response`` with the pre-session CSRF token as the sign-in cookie (double submit)."""
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=_secure(settings),
        max_age=1800,
    )
    return response


def _login_page(
    request: Request,
    templates: Templates,
    settings: Settings,
    error: str | None = None,
    status: int = 200,
) -> Response:
    token = secrets.token_urlsafe(24)
    response = templates.TemplateResponse(
        request, "login.html", {"login_csrf": token, "error": error}, status_code=status
    )
    return _with_login_token(response, token, settings)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, templates: Templates, settings: Settings) -> Response:
    return _login_page(request, templates, settings)


async def _form_fields(request: Request) -> dict[str, str]:
    """The sign-in form's fields as text; anything else (a file, a malformed body) is ""."""
    fields = dict.fromkeys(_FIELDS, "")
    try:
        async with request.form() as form:  # closes any uploaded file
            for name in _FIELDS:
                value = form.get(name)
                fields[name] = value if isinstance(value, str) else ""
    except (HTTPException, ValueError, UnicodeError):  # a malformed body: no fields
        pass
    return fields


def _same(expected: str, given: str) -> bool:
    return bool(expected and given) and hmac.compare_digest(
        expected.encode("utf-8", "surrogatepass"), given.encode("utf-8", "surrogatepass")
    )


@router.post("/login")
async def login(request: Request, auth: Auth, templates: Templates, settings: Settings) -> Response:
    # The form is read here, not by FastAPI's validation: any body, any field (missing,
    # a megabyte, control characters, a file instead of text) gets the sign-in page
    # with 400 or 401, counted and audited, never a 422 or a 500.
    fields = await _form_fields(request)
    username, password, totp, csrf = (fields[n] for n in _FIELDS)
    client = client_of(request)
    if not _same(request.cookies.get(LOGIN_COOKIE) or "", csrf):
        await run_in_threadpool(auth.refuse_form, username, "bad_csrf", client)
        return _login_page(
            request,
            templates,
            settings,
            "ページの有効期限が切れました。もう一度入力してください。",
            400,
        )
    try:
        token, _ = await run_in_threadpool(auth.login, username, password, totp, client)
    except LoginLocked as exc:
        return _login_page(request, templates, settings, exc.message_ja, 429)
    except LoginRefused as exc:
        return _login_page(request, templates, settings, exc.message_ja, 401)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=_secure(settings),
        max_age=settings.session_ttl_seconds,
    )
    response.delete_cookie(LOGIN_COOKIE)
    return response


@router.post("/logout")
def logout(request: Request, who: CsrfForm, auth: Auth, store: Store) -> Response:
    auth.logout(request.cookies.get(SESSION_COOKIE))
    store.audit(who.username, "logout", client=client_of(request))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/api/session")
def api_session(request: Request, auth: Auth, settings: Settings) -> Response:
    """The signed-in staff member and the session's CSRF token (``X-CSRF-Token``); without
    a session, a sign-in token: set as the sign-in cookie and given as ``login_csrf``, for
    ``POST /login``'s ``csrf`` field."""
    who = auth.session(request.cookies.get(SESSION_COOKIE))
    if who is not None:
        return JSONResponse(
            {
                "signed_in": True,
                "username": who.username,
                "display_name": who.display_name,
                "csrf": who.csrf,
                "expires_at": who.expires_at.isoformat(),
            }
        )
    token = secrets.token_urlsafe(24)
    response = JSONResponse({"signed_in": False, "login_csrf": token})
    return _with_login_token(response, token, settings)
