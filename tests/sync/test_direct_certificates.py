"""One hospital's unusable pinned certificate (a signed directory carries what the hub
stored) skips that hospital only: the route is built at boot and on every directory
refresh, and the other hospitals keep their direct route."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kyukyu.testing import self_signed_certificate
from sync.direct import DirectHospital, DirectRoute
from sync.outbox import Outbox

BAD = "-----BEGIN CERTIFICATE-----\n" + "A" * 120 + "\n-----END CERTIFICATE-----\n"


def test_a_malformed_certificate_skips_that_hospital_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = self_signed_certificate(tmp_path)[0].read_text()
    outbox = Outbox(tmp_path / "outbox.db")
    hospitals = [
        DirectHospital("h-bad", "https://127.0.0.1:1", BAD),
        DirectHospital("h-good", "https://127.0.0.1:2", good),
    ]
    with caplog.at_level(logging.WARNING, logger="sync.direct"):
        route = DirectRoute(outbox, hospitals, key=Ed25519PrivateKey.generate(), device_id="d1")
    assert set(route.clients) == {"h-good"}
    assert "h-bad" in caplog.text
    assert "AAAA" not in caplog.text
    # A newer directory: the same again, the good client kept as it was.
    kept = route.clients["h-good"]
    route.set_hospitals(hospitals)
    assert route.clients == {"h-good": kept}
    route.close()
    outbox.close()
