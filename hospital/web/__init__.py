"""The emergency department's dashboard (FastAPI, server-rendered HTML, one small JS file).

Every page and API needs a signed-in staff session except the sign-in page, the
session probe (``GET /api/session``) and the static files; every state change
needs the session's CSRF token; every case shown is audited with who and when.

Routers, one per concern: ``signin`` (sign-in, sign-out, ``/api/session``),
``dashboard`` (the list: page, fragment, ``/api/cases``), ``detail`` (one case's page
and card), ``answers`` (the form and ``/api/cases/{id}/answer``, one function),
``rejections`` (受信できない事案), ``live`` (``/live``, Server-Sent Events). They take
what they need as dependencies (``hospital.web.deps``); ``create_app`` builds the
objects once and includes the routers.
"""

from __future__ import annotations

from hospital.web.app import create_app

__all__ = ["create_app"]
