"""``kyukyu hub seed`` (the hub's command) drives ``hub_server.medical.seed``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.x509.oid import NameOID

from edge.card_sim import CardImage
from hub_server.medical import open_source
from kyukyu.cli import main

from ._helpers import validate


def test_kyukyu_hub_seed_with_a_card(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    cards = tmp_path / "cards"
    rc = main(
        ["hub", "seed", "--patients", "25", "--db", url, "--cards", "1", "--cards-dir", str(cards)]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "25" in out
    (card_file,) = sorted(cards.glob("card-*.json"))
    image = CardImage.load(card_file)
    cn = image.auth_certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    source = open_source(url)
    assert source.count() == 25
    bundle = source.summary(str(cn), now=datetime.now(UTC))
    assert bundle is not None
    validate(bundle)
    # The command's output names no patient.
    family = bundle["entry"][1]["resource"]["name"][0]["family"]
    assert family not in out
    source.engine.dispose()
