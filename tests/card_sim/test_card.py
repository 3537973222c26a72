"""The virtual card in process: files, access rules, PINs, signatures."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import date

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from edge.card_sim import CardImage, Holder, TestCA, VirtualCard
from edge.reader import (
    ApduChannel,
    AuthMethodBlocked,
    CommandApdu,
    FileNotFound,
    IncorrectP1P2,
    LoopbackConnection,
    SecurityStatusNotSatisfied,
    VerificationFailed,
    WrongOffset,
)

from .helpers import read, read_der, read_tlv_file, select_ap, select_ef, verify

SHA256_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")


def channel(card: VirtualCard) -> ApduChannel:
    return ApduChannel(LoopbackConnection(card))


def _sign_apdu(data: bytes, p2: int = 0x80) -> CommandApdu:
    return CommandApdu(0x80, 0x2A, 0x00, p2, data, le=256)


def test_token_info_and_availability(issue: Callable[..., CardImage]) -> None:
    for profile, label in (
        ("card", b"JPKIAPICCTOKEN2"),
        ("android", b"JPKIAPGPSETOKEN"),
        ("iphone", b"JPKIAPIOSTOKEN"),
    ):
        ch = channel(VirtualCard(issue(profile=profile)))
        select_ap(ch, "jpki")
        select_ef(ch, 0x0006)
        info = read(ch, 0, 256).data
        assert len(info) == 160
        assert info[:32].rstrip(b" ") == label
        select_ef(ch, 0x0008)
        assert read(ch, 0, 3).data == b"\x8f\x8f\x00"
    ch = channel(VirtualCard(issue(signing_cert=False)))
    select_ap(ch, "jpki")
    select_ef(ch, 0x0008)
    assert read(ch, 0, 3).data[0] != 0x8F
    with pytest.raises(FileNotFound):
        select_ef(ch, 0x0001)


def test_auth_certificate_shape(issue: Callable[..., CardImage]) -> None:
    image = issue()
    ch = channel(VirtualCard(image))
    select_ap(ch, "jpki")
    der = read_der(ch, 0x000A)
    assert der == image.auth_certificate_der
    cert = x509.load_der_x509_certificate(der)
    ca = x509.load_der_x509_certificate(read_der(ch, 0x000B))
    cert.verify_directly_issued_by(ca)
    assert [a.oid for a in cert.subject] == [NameOID.COUNTRY_NAME, NameOID.COMMON_NAME]
    assert cert.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "JP"
    assert "O=JPKI-TEST" in cert.issuer.rfc4514_string()
    pub = cert.public_key()
    assert isinstance(pub, rsa.RSAPublicKey)
    assert pub.key_size == 2048
    assert pub.public_numbers().e == 65537
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical
    assert ku.value.digital_signature
    assert not ku.value.content_commitment
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    pol = cert.extensions.get_extension_for_class(x509.CertificatePolicies)
    assert pol.critical
    assert pol.value[0].policy_identifier.dotted_string == "1.2.392.200149.8.5.1.3.30"
    dp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert dp[0].full_name is not None
    assert isinstance(dp[0].full_name[0], x509.DirectoryName)
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert aia[0].access_method == AuthorityInformationAccessOID.OCSP
    # 23:59:59 JST = 14:59:59 UTC, on the holder's birthday.
    end = cert.not_valid_after_utc
    assert (end.hour, end.minute, end.second) == (14, 59, 59)
    assert (end.month, end.day) == (image.holder.birth_date.month, image.holder.birth_date.day)


def test_select_rules(issue: Callable[..., CardImage]) -> None:
    ch = channel(VirtualCard(issue()))
    # SELECT MF after a cold reset: 6A86.
    assert ch.send(CommandApdu(0, 0xA4, 0, 0), check=False).sw == 0x6A86
    with pytest.raises(FileNotFound):
        ch.send(CommandApdu(0, 0xA4, 4, 0x0C, b"\xd3\x92\x00\x00\x00"))
    with pytest.raises(FileNotFound):
        select_ef(ch, 0x000A)  # no application selected yet
    select_ap(ch, "jpki")
    assert ch.send(CommandApdu(0, 0xA4, 0, 0), check=False).sw == 0x9000
    select_ef(ch, 0x0006)  # still in the JPKI AP
    with pytest.raises(FileNotFound):
        select_ef(ch, 0x1234)
    with pytest.raises(IncorrectP1P2):
        ch.send(CommandApdu(0, 0xA4, 8, 0x0C, b"\x3f\x00"))


def test_read_binary_edges(issue: Callable[..., CardImage]) -> None:
    image = issue()
    ch = channel(VirtualCard(image))
    select_ap(ch, "jpki")
    select_ef(ch, 0x000A)
    size = len(image.auth_certificate_der)
    tail = read(ch, size - 10, 256)
    assert tail.data == image.auth_certificate_der[-10:]
    assert tail.sw == 0x9000
    with pytest.raises(WrongOffset):
        read(ch, size, 16)
    with pytest.raises(WrongOffset):
        read(ch, 0x7FFF, 1)
    # Short-EF form: P1 = 0x80 | SFI.
    r = ch.send(CommandApdu(0, 0xB0, 0x86, 0, le=32))
    assert r.data.startswith(b"JPKIAPICCTOKEN2")


def test_android_needs_pin_for_auth_cert(issue: Callable[..., CardImage]) -> None:
    image = issue(profile="android")
    ch = channel(VirtualCard(image))
    select_ap(ch, "jpki")
    select_ef(ch, 0x000A)
    with pytest.raises(SecurityStatusNotSatisfied):
        read(ch, 0, 4)
    select_ef(ch, 0x0018)
    verify(ch, image.pin, check=True)
    assert read_der(ch, 0x000A) == image.auth_certificate_der
    # Logout = select the AP again.
    select_ap(ch, "jpki")
    select_ef(ch, 0x000A)
    with pytest.raises(SecurityStatusNotSatisfied):
        read(ch, 0, 4)


def test_pin_counter_query_block_and_persist(
    issue: Callable[..., CardImage], tmp_path: pytest.TempPathFactory
) -> None:
    path = tmp_path / "card.json"  # type: ignore[operator]
    image = issue()
    image.save(path)
    card = VirtualCard(CardImage.load(path), path=path)
    ch = channel(card)
    select_ap(ch, "jpki")
    select_ef(ch, 0x0018)
    assert verify(ch, None).sw == 0x63C3
    assert verify(ch, "0000").sw == 0x63C2
    # The counter is on disk.
    assert CardImage.load(path).tries["auth_pin"] == 2
    # A correct VERIFY resets the counter; the query still answers 63Cx.
    assert verify(ch, image.pin).sw == 0x9000
    assert verify(ch, None).sw == 0x63C3
    for left in (2, 1, 0):
        assert verify(ch, "9999").sw == 0x63C0 | left
    assert verify(ch, None).sw == 0x63C0
    assert verify(ch, image.pin).sw == 0x6984  # blocked, even with the right PIN
    reloaded = VirtualCard(CardImage.load(path), path=path)
    ch2 = channel(reloaded)
    select_ap(ch2, "jpki")
    select_ef(ch2, 0x0018)
    with pytest.raises(AuthMethodBlocked):
        verify(ch2, None, check=True)
    # The signing password has 5 tries.
    select_ef(ch2, 0x001B)
    assert verify(ch2, None).sw == 0x63C5
    with pytest.raises(VerificationFailed) as err:
        verify(ch2, "WRONG1", check=True)
    assert err.value.tries_left == 4


def test_auth_signature_needs_pin_and_verifies(issue: Callable[..., CardImage]) -> None:
    image = issue()
    ch = channel(VirtualCard(image))
    select_ap(ch, "jpki")
    select_ef(ch, 0x0017)
    digest = hashlib.sha256(b"challenge").digest()
    with pytest.raises(SecurityStatusNotSatisfied):
        ch.send(_sign_apdu(SHA256_PREFIX + digest))
    select_ef(ch, 0x0018)
    verify(ch, image.pin, check=True)
    select_ef(ch, 0x0017)
    sig = ch.send(_sign_apdu(SHA256_PREFIX + digest)).data
    assert len(sig) == 256
    pub = image.auth_certificate.public_key()
    assert isinstance(pub, rsa.RSAPublicKey)
    pub.verify(sig, b"challenge", padding.PKCS1v15(), hashes.SHA256())
    # P2 = 0x80 | SFI avoids the SELECT.
    select_ef(ch, 0x0006)
    sig2 = ch.send(_sign_apdu(SHA256_PREFIX + digest, p2=0x97)).data
    assert sig2 == sig


def test_signing_cert_behind_password_and_change(issue: Callable[..., CardImage]) -> None:
    image = issue()
    ch = channel(VirtualCard(image))
    select_ap(ch, "jpki")
    select_ef(ch, 0x0001)
    with pytest.raises(SecurityStatusNotSatisfied):
        read(ch, 0, 4)
    select_ef(ch, 0x001B)
    # CHANGE REFERENCE DATA needs a correct VERIFY first.
    assert ch.send(CommandApdu(0, 0x24, 1, 0x80, b"NEWPW99"), check=False).sw == 0x6982
    verify(ch, image.sign_password, check=True)
    cert = x509.load_der_x509_certificate(read_der(ch, 0x0001))
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.content_commitment
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    oids = {o.type_id.dotted_string for o in san.get_values_for_type(x509.OtherName)}
    assert "1.2.392.200149.8.5.5.1" in oids
    assert "1.2.392.200149.8.5.5.4" in oids
    select_ef(ch, 0x001B)
    assert ch.send(CommandApdu(0, 0x24, 1, 0x80, b"bad"), check=False).sw == 0x6A80
    ch.send(CommandApdu(0, 0x24, 1, 0x80, b"NEWPW99"))
    assert image.sign_password == "NEWPW99"
    select_ap(ch, "jpki")
    select_ef(ch, 0x001B)
    assert verify(ch, "ABC123").sw == 0x63C4
    assert verify(ch, "NEWPW99").sw == 0x9000


def test_text_ap_attributes_integrity_presence(
    issue: Callable[..., CardImage], test_ca: TestCA
) -> None:
    image = issue()
    ch = channel(VirtualCard(image))
    select_ap(ch, "text")
    select_ef(ch, 0x0002)
    with pytest.raises(SecurityStatusNotSatisfied):
        read(ch, 0, 5)
    select_ef(ch, 0x0015)
    assert verify(ch, image.collation_b).sw == 0x9000
    attrs = read_tlv_file(ch, 0x0002)
    assert attrs[:2] == b"\xff\x20"
    assert image.holder.name.encode() in attrs
    assert image.holder.address.encode() in attrs
    # The My Number file stays closed with 照合番号B.
    select_ef(ch, 0x0001)
    assert read(ch, 0, 16, check=False).sw == 0x6982
    # DF21: four offsets from the start of the file; DF22..DF25 run to its end.
    assert attrs[3:5] == b"\xdf\x21"
    offsets = [int.from_bytes(attrs[6 + 2 * i : 8 + 2 * i], "big") for i in range(4)]
    assert [attrs[o : o + 2] for o in offsets] == [
        b"\xdf\x22",
        b"\xdf\x23",
        b"\xdf\x24",
        b"\xdf\x25",
    ]
    # EF 0003: FF30 82 014B { DF31 20 h1, DF32 20 h2, DF33 82 0100 sig }, 336 bytes.
    integrity = read_tlv_file(ch, 0x0003)
    assert len(integrity) == 336
    assert integrity[:5] == bytes.fromhex("FF3082014B")
    assert integrity[5:8] == bytes.fromhex("DF3120")
    assert integrity[40:43] == bytes.fromhex("DF3220")
    assert integrity[75:80] == bytes.fromhex("DF33820100")
    h1, h2, sig = integrity[8:40], integrity[43:75], integrity[80:]
    assert h1 == hashlib.sha256(b"\xff\x10\x0c" + image.my_number.encode() + b"\xff\xff").digest()
    assert h2 == hashlib.sha256(attrs[offsets[0] :]).digest()  # DF22..DF25, not DF21
    # EF 0004 (free): 7F21 82 0233 { 5F4E 82 0129 body, 5F37 82 0100 sig }.
    cvc = read_tlv_file(ch, 0x0004)
    assert cvc[:10] == bytes.fromhex("7F218202335F4E820129")
    body = cvc[10:307]
    assert body[:16] == test_ca.cvc_ca_key_id
    assert body[32:41] == bytes.fromhex("900301000191820100")
    assert cvc[307:312] == bytes.fromhex("5F37820100")
    test_ca.cvc_ca_public_key.verify(cvc[312:], body, padding.PKCS1v15(), hashes.SHA256())
    issuer = rsa.RSAPublicNumbers(65537, int.from_bytes(body[41:], "big")).public_key()
    issuer.verify(sig, integrity[5:75], padding.PKCS1v15(), hashes.SHA256())
    # EF 0007 (behind PIN, A or B): FF50 { DF51 { 90, 91 }, DF52 sig over the DF51 object }.
    ef7 = read_tlv_file(ch, 0x0007)
    assert ef7[:10] == bytes.fromhex("FF50820213DF51820109")
    df51 = ef7[5:275]
    assert ef7[275:280] == bytes.fromhex("DF52820100")
    issuer.verify(ef7[280:], df51, padding.PKCS1v15(), hashes.SHA256())
    card_key = rsa.RSAPublicNumbers(65537, int.from_bytes(df51[14:], "big")).public_key()
    assert card_key.public_numbers() == image.text_key.public_key().public_numbers()
    # EF 0005 (free): FF40 { DF41, DF42 issuer key id, DF43 }.
    assert body[16:32] in read_tlv_file(ch, 0x0005)
    # Card-presence signature: no credential; verifies under EF 0007's key.
    select_ap(ch, "text")
    digest = hashlib.sha256(b"nonce").digest()
    psig = ch.send(_sign_apdu(SHA256_PREFIX + digest, p2=0x00)).data
    card_key.verify(psig, b"nonce", padding.PKCS1v15(), hashes.SHA256())
    # EF 0007 is closed before a credential.
    select_ef(ch, 0x0007)
    assert read(ch, 0, 5, check=False).sw == 0x6982


def test_visual_ap_photo_behind_collation_b(issue: Callable[..., CardImage]) -> None:
    image = issue()
    ch = channel(VirtualCard(image))
    select_ap(ch, "visual")
    select_ef(ch, 0x0002)
    assert read(ch, 0, 5, check=False).sw == 0x6982
    select_ef(ch, 0x0012)
    assert verify(ch, "0" * 14).sw == 0x63C9
    verify(ch, image.collation_b, check=True)
    face = read_tlv_file(ch, 0x0002)
    assert image.photo in face


def test_reset_clears_login(issue: Callable[..., CardImage]) -> None:
    image = issue(profile="android")
    card = VirtualCard(image)
    conn = LoopbackConnection(card)
    ch = ApduChannel(conn)
    select_ap(ch, "jpki")
    select_ef(ch, 0x0018)
    verify(ch, image.pin, check=True)
    conn.reset()
    with pytest.raises(FileNotFound):
        select_ef(ch, 0x000A)
    select_ap(ch, "jpki")
    select_ef(ch, 0x000A)
    with pytest.raises(SecurityStatusNotSatisfied):
        read(ch, 0, 4)


@pytest.mark.parametrize(
    ("extra", "form"), [("", 0x60), ("　グランドメゾン千代田" * 4, 0x81), ("　" + "あ" * 120, 0x82)]
)
def test_attribute_lengths_short_and_long_form(test_ca: TestCA, extra: str, form: int) -> None:
    holder = Holder(
        "佐藤\u3000花子", "東京都千代田区千代田一丁目1番1号" + extra, date(1990, 1, 2), "2", "0001"
    )
    image = test_ca.issue_card(holder=holder)
    ch = channel(VirtualCard(image))
    select_ap(ch, "text")
    select_ef(ch, 0x0011)
    verify(ch, image.text_pin, check=True)
    attrs = read_tlv_file(ch, 0x0002)
    if form < 0x80:
        assert attrs[2] < 0x80
    else:
        assert attrs[2] == form
    assert holder.address.encode() in attrs
