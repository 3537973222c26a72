"""``PUT /v1/hospitals/me/direct``: the certificate devices pin must be one they can load.

A body that only looks like PEM (the schema's shape) used to be stored and signed into
the directory, where every device of the region failed to build its pinned TLS context
(docs/disaster.md). The hub now parses it and answers 422 ``invalid_tls_cert``."""

from __future__ import annotations

from pathlib import Path

import pytest

from kyukyu.testing import self_signed_certificate
from tests.hub_server._support import Hub

pytestmark = pytest.mark.anyio

PATH = "/v1/hospitals/me/direct"
URL = "https://127.0.0.1:9443"


async def test_a_certificate_that_only_looks_like_pem_is_refused(hub: Hub, tmp_path: Path) -> None:
    _, hospital = await hub.register_hospital("病院1")
    fake = "-----BEGIN CERTIFICATE-----\n" + "A" * 120 + "\n-----END CERTIFICATE-----\n"
    r = await hub.call(hospital, "PUT", PATH, {"url": URL, "tls_cert": fake})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_tls_cert"

    cert_file, _ = self_signed_certificate(tmp_path)
    r = await hub.call(hospital, "PUT", PATH, {"url": URL, "tls_cert": cert_file.read_text()})
    assert r.status_code == 200, r.text
    assert r.json()["url"] == URL
