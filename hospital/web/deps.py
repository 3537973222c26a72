"""The dashboard's dependencies: the service and its store, the authenticator, the
card renderer, the templates, the signed-in staff member and the CSRF check.

``create_app`` puts the objects on ``app.state``; the routes ask for them by type
(``Store``, ``Auth``, ``Staff``, ...), so a router holds no state of its own.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Form, Header, Request
from fastapi.templating import Jinja2Templates

from hospital.auth import Authenticator, SessionInfo
from hospital.service import ReceivingService
from hospital.settings import HospitalSettings
from hospital.store import HospitalStore
from hospital.web.cards import CardRenderer
from hospital.web.errors import CsrfRefused

__all__ = [
    "LOGIN_COOKIE",
    "SESSION_COOKIE",
    "Auth",
    "Cards",
    "CsrfForm",
    "CsrfHeader",
    "NeedLogin",
    "Service",
    "Settings",
    "Staff",
    "Store",
    "Templates",
    "client_of",
]

SESSION_COOKIE = "kk_session"
LOGIN_COOKIE = "kk_login"


class NeedLogin(Exception):
    """No live staff session: a browser page is sent to sign in, anything else gets 401."""


def client_of(request: Request) -> str:
    return request.client.host if request.client else "?"


def _service(request: Request) -> ReceivingService:
    service: ReceivingService = request.app.state.service
    return service


def _store(request: Request) -> HospitalStore:
    return _service(request).store


def _settings(request: Request) -> HospitalSettings:
    return _service(request).settings


def _auth(request: Request) -> Authenticator:
    auth: Authenticator = request.app.state.auth
    return auth


def _cards(request: Request) -> CardRenderer:
    cards: CardRenderer = request.app.state.cards
    return cards


def _templates(request: Request) -> Jinja2Templates:
    templates: Jinja2Templates = request.app.state.templates
    return templates


Service = Annotated[ReceivingService, Depends(_service)]
Store = Annotated[HospitalStore, Depends(_store)]
Settings = Annotated[HospitalSettings, Depends(_settings)]
Auth = Annotated[Authenticator, Depends(_auth)]
Cards = Annotated[CardRenderer, Depends(_cards)]
Templates = Annotated[Jinja2Templates, Depends(_templates)]


def _staff(request: Request, auth: Auth) -> SessionInfo:
    info = auth.session(request.cookies.get(SESSION_COOKIE))
    if info is None:
        raise NeedLogin()
    return info


Staff = Annotated[SessionInfo, Depends(_staff)]


def _checked(request: Request, who: SessionInfo, auth: Authenticator, token: str | None) -> None:
    # compare_digest takes ASCII text only: any other token is simply wrong.
    if token is None or not token.isascii() or not auth.csrf_ok(who, token):
        case_id = request.path_params.get("case_id")
        _store(request).audit(
            who.username, "csrf_refused", case_id=case_id, client=client_of(request)
        )
        raise CsrfRefused()


def _form_csrf(
    request: Request, who: Staff, auth: Auth, csrf: Annotated[str, Form(max_length=100)]
) -> SessionInfo:
    """The signed-in staff member, once the form's ``csrf`` field is the session's token."""
    _checked(request, who, auth, csrf)
    return who


def _header_csrf(
    request: Request,
    who: Staff,
    auth: Auth,
    x_csrf_token: Annotated[str | None, Header()] = None,
) -> SessionInfo:
    """The signed-in staff member, once ``X-CSRF-Token`` is the session's token (the API)."""
    _checked(request, who, auth, x_csrf_token)
    return who


CsrfForm = Annotated[SessionInfo, Depends(_form_csrf)]
CsrfHeader = Annotated[SessionInfo, Depends(_header_csrf)]
