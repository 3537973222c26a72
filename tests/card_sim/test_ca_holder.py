"""TestCA (save/load, revocation, CRL, validity rule) and Holder / CardImage."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from cryptography import x509
from hypothesis import given
from hypothesis import strategies as st

from edge.card_sim import (
    JST,
    CardImage,
    Holder,
    TestCA,
    fifth_birthday_after,
    my_number_check_digit,
)


def test_roots_shaped_like_jlis(test_ca: TestCA) -> None:
    for root in test_ca.roots:
        assert root.issuer == root.subject
        root.verify_directly_issued_by(root)
        ku = root.extensions.get_extension_for_class(x509.KeyUsage)
        assert ku.critical
        assert ku.value.key_cert_sign
        assert ku.value.crl_sign
        assert not ku.value.digital_signature
        bc = root.extensions.get_extension_for_class(x509.BasicConstraints).value
        assert bc.ca
        assert "O=JPKI-TEST" in root.subject.rfc4514_string()
        assert root.public_key().key_size == 2048  # type: ignore[union-attr]
    auth_dn = test_ca.auth_root.subject.rfc4514_string()
    assert "OU=JPKI for user authentication" in auth_dn
    assert "OU=Japan Agency for Local Authority Information Systems" in auth_dn


def test_save_load_revoke_crl(
    tmp_path: Path, test_ca: TestCA, issue: Callable[..., CardImage]
) -> None:
    test_ca.save(tmp_path / "ca")
    ca = TestCA.load(tmp_path / "ca")
    assert ca.auth_root == test_ca.auth_root
    image = ca.issue_card(rng=random.Random(1), key_factory=test_ca.key_factory)
    serial = image.auth_certificate.serial_number
    ca.revoke(serial)
    again = TestCA.load(tmp_path / "ca")
    assert serial in again.revoked_serials
    crl = x509.load_der_x509_crl(again.crl())
    assert crl.issuer == again.auth_root.subject
    assert crl.get_revoked_certificate_by_serial_number(serial) is not None
    sign_crl = x509.load_der_x509_crl(again.crl("sign_root"))
    assert sign_crl.is_signature_valid(again.sign_root.public_key())  # type: ignore[arg-type]


def test_fifth_birthday_rule() -> None:
    assert fifth_birthday_after(date(1990, 3, 10), date(2024, 6, 1)) == date(2029, 3, 10)
    assert fifth_birthday_after(date(1990, 7, 10), date(2024, 6, 1)) == date(2028, 7, 10)
    # Issued on the birthday: that day does not count.
    assert fifth_birthday_after(date(1990, 6, 1), date(2024, 6, 1)) == date(2029, 6, 1)
    # 29 February in a common year: 28 February.
    assert fifth_birthday_after(date(2000, 2, 29), date(2024, 3, 1)) == date(2029, 2, 28)


def test_validity_ends_2359_jst(test_ca: TestCA) -> None:
    holder = Holder(
        "山田\u3000太郎", "東京都千代田区千代田一丁目1番1号", date(1980, 12, 31), "1", "1234"
    )
    img = test_ca.issue_card(holder=holder, not_before=datetime(2024, 1, 15, 3, 0, tzinfo=UTC))
    end = img.auth_certificate.not_valid_after_utc.astimezone(JST)
    assert (end.year, end.month, end.day, end.hour, end.minute, end.second) == (
        2028, 12, 31, 23, 59, 59,
    )  # fmt: skip
    # 照合番号B: the era birth date as printed (昭和55年12月31日) + card expiry year (10th
    # birthday for adults) + security code.
    assert img.collation_b == "551231" + "2033" + "1234"


def test_my_number_check_digit() -> None:
    # Worked example of the ordinance's formula: 12345678901 -> 8.
    assert my_number_check_digit("12345678901") == "8"


@given(st.integers(0, 2**32))
def test_random_holder_is_realistic(seed: int) -> None:
    h = Holder.random(random.Random(seed))
    family, given_name = h.name.split("\u3000")
    assert family
    assert given_name
    assert h.address[:2] in ("東京", "神奈", "大阪", "愛知", "北海", "福岡", "宮城", "京都", "広島")
    assert h.sex in ("1", "2", "9")
    assert date(1930, 1, 1) <= h.birth_date <= date(2012, 12, 31)
    assert Holder.from_dict(h.to_dict()) == h


def test_card_image_json_round_trip(tmp_path: Path, issue: Callable[..., CardImage]) -> None:
    image = issue(profile="iphone", signing_cert=False)
    path = tmp_path / "c.json"
    image.save(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["profile"] == "iphone"
    assert data["tries"]["auth_pin"] == 3
    back = CardImage.load(path)
    assert back.auth_certificate_der == image.auth_certificate_der
    assert back.collation_b == image.collation_b
    assert back.signing_certificate_der is None
    assert not list(tmp_path.glob(".card-*"))  # no temp file left behind


def test_old_card_files_are_refused_with_a_reason(test_ca: TestCA, tmp_path: Path) -> None:
    import json

    from edge.card_sim import CardImage

    path = tmp_path / "old.json"
    test_ca.issue_card().save(path)
    doc = json.loads(path.read_text())
    doc["format"] = "kyukyu-virtual-card/1"  # the X.509 EF 0004 of before
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="issue the card again"):
        CardImage.load(path)
