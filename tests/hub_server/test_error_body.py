"""One error body: the app's handlers and the door's middlewares (and the server's
protocol, ``tests/hub_server/guard/test_server.py``) send the bytes of
``core.errors.error_json``: ``{"error": {code, message_ja, message_en}}``, whose code the
sync client reads."""

from __future__ import annotations

import pytest

from hub_server.core.config import Settings
from hub_server.core.errors import error_json
from tests.hub_server._support import hub_in_process

pytestmark = pytest.mark.anyio


async def test_every_layer_sends_the_one_error_body(settings: Settings) -> None:
    small = settings.with_(max_body_bytes=1000)
    async with hub_in_process(small) as hub:
        answers = {
            "app 401": await hub.client.get("/v1/devices/me"),
            "app 404": await hub.call(hub.operator, "GET", "/v1/nope"),
            "app 422": await hub.client.post("/v1/devices/enroll", json={}),
            "body limit 413": await hub.client.post("/v1/devices/enroll", content=b"x" * 2000),
        }
        bucket = hub.state.rates.unsigned
        bucket.rate, bucket.burst = 0.01, 1.0
        bucket._buckets.clear()
        await hub.client.get("/v1/health")
        answers["door 429"] = await hub.client.get("/v1/health")
    statuses = {what: r.status_code for what, r in answers.items()}
    assert statuses == {
        "app 401": 401,
        "app 404": 404,
        "app 422": 422,
        "body limit 413": 413,
        "door 429": 429,
    }
    for what, r in answers.items():
        error = r.json()["error"]
        assert set(error) == {"code", "message_ja", "message_en"}, what
        assert r.content == error_json(error["code"], error["message_en"], error["message_ja"])
        assert r.headers["content-type"] == "application/json", what
