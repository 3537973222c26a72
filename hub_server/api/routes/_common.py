"""Shared bits of the routers: the documented error answers and the audit shortcut."""

from __future__ import annotations

from typing import Any

from hub_server.schemas import ErrorBody

__all__ = ["ERRORS", "PUBLIC_ERRORS"]

_ERR: dict[str, Any] = {"model": ErrorBody}
PUBLIC_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {**_ERR, "description": "bad request"},
    413: {**_ERR, "description": "body too large"},
    422: {**_ERR, "description": "invalid request"},
    429: {
        **_ERR,
        "description": "too many requests (rate limit; see Retry-After)",
        "headers": {
            "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}
        },
    },
}
ERRORS: dict[int | str, dict[str, Any]] = {
    **PUBLIC_ERRORS,
    401: {**_ERR, "description": "unsigned, stale, replayed or badly signed request"},
    403: {**_ERR, "description": "revoked caller or role not allowed"},
    404: {**_ERR, "description": "not found (or not yours)"},
    409: {**_ERR, "description": "conflict"},
}
