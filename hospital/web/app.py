"""The app factory: templates, security headers, static files, the routers."""

from __future__ import annotations

import os
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from errbase import error_body
from hospital.auth import Authenticator
from hospital.casefile import RANGES, time_text
from hospital.service import ReceivingService
from hospital.web import (
    answers,
    availability,
    dashboard,
    detail,
    incidents,
    live,
    rejections,
    signin,
)
from hospital.web.cards import CardRenderer, iso
from hospital.web.deps import NeedLogin
from hospital.web.errors import WebError
from sync.reasons import DECLINE_REASONS

__all__ = ["create_app"]

_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class _SecurityHeaders:
    """Every answer: a strict CSP and friends, and ``no-store`` unless it says otherwise."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _HEADERS.items():
                    headers[name] = value
                if "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _Static(StaticFiles):
    """The package's two static files, cached five minutes by the browser."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = "max-age=300"
        return response


def _templates(service: ReceivingService) -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(resources.files("hospital") / "templates"))
    templates.env.globals.update(
        reasons=DECLINE_REASONS, ranges=RANGES, hospital_name=service.identity.name
    )
    templates.env.filters["jst"] = time_text
    templates.env.filters["iso"] = iso
    return templates


async def _need_login(request: Request, exc: Exception) -> Response:
    if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
        return RedirectResponse("/login", status_code=303)
    return JSONResponse(
        error_body("not_signed_in", "Sign in first.", "サインインしてください。"),
        status_code=401,
    )


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, WebError)
    return JSONResponse(
        error_body(exc.code, exc.message_en, exc.message_ja), status_code=exc.status
    )


def create_app(service: ReceivingService, auth: Authenticator) -> FastAPI:
    templates = _templates(service)
    app = FastAPI(title="kyukyu hospital", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(_SecurityHeaders)
    app.state.service = service
    app.state.auth = auth
    app.state.templates = templates
    app.state.cards = CardRenderer(
        service.store, service.settings, templates, service.identity.hospital_id
    )
    app.add_exception_handler(NeedLogin, _need_login)
    app.add_exception_handler(WebError, _refused)
    static = str(resources.files("hospital") / "static")
    app.mount("/static", _Static(directory=static), name="static")
    # The list's fixed paths before the case paths they would otherwise match.
    for module in (signin, dashboard, detail, answers, rejections, live, availability, incidents):
        app.include_router(module.router)
    return app
