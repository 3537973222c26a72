"""The text AP against byte layouts written out from the public facts (jpki-card.md).

Every fixture below is hex, assembled by hand from the layouts published for real
cards (soltia48/myna-card, AokiApp/jsapdu, jpki/myna): the headers are copied
from jpki-card.md verbatim, the keys and signatures were made once with
``cryptography`` alone (RSA-2048, PKCS#1 v1.5 / SHA-256), never with this
project's encoder. Each object is also checked with one byte tampered.
"""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from edge.jpki import (
    BadSignature,
    CvcCaNotPinned,
    CvcSignatureInvalid,
    IntegrityError,
    IntegrityRecord,
    MalformedCertificate,
    TextSession,
    parse_card_key,
    parse_cvc,
    parse_integrity,
)
from edge.jpki._text import check_attributes_hash, check_integrity_signature
from edge.jpki.read import CheckStatus
from edge.jpki.trust import PINNED_CVC_CA_KEYS, TrustStore, cvc_ca_key, verify_text_ap_issuer

from .fakes import ATR, channel_for


def h(*parts: str) -> bytes:
    return bytes.fromhex("".join(parts).replace(" ", ""))


# -- keys (public halves only) and the key ids -------------------------------------------

# "9000033" 08 05 "001" + 4 bytes: shaped like J-LIS's 証明者鍵ID, in no real hierarchy.
CA_KEY_ID = h("39303030303333 0805 303031 12345678")
ISSUER_KEY_ID = h("39313030303333 0805 303031 87654321")
# The production text-AP CA key id, "5000033" 08 05 "001" 00000000 (jpki-card.md).
PRODUCTION_KEY_ID = h("35303030303333 0805 303031 00000000")

CA_MODULUS = h(
    "B3FA62CE206C25786FA085C55F362E2AB20906039E47C5FC38DDF033C8823EC3"
    "0ECC73FFB3F39A571795CEFF5618A3B8917F105513BB326267C74F78F2E32A99"
    "9BD43C047EDE5872C5E12F11609CEA100F40632F1C190888B6F60AF13D3ECEE5"
    "93DD208341BBE6100E5F79B225994978832F30B1EA14E2736CB4188AEBB561E1"
    "F20FAA2A4E7B6E942276CDE1608D806787BDCAF94333B750B59B906ECF6DFDB0"
    "E4A6005962202BE7A8E1FCED385B2562C2998917894BFD25D0F1846CD523BF27"
    "9727C820190B8786263C1DBA838C7FB7844A0A2E0C22A95E1767AEC3B2A61DFB"
    "0BF9B9FFB30ABDE1AC00765F0BA0A1B8BC3674F83FE01987962E987099C0C469"
)

ISSUER_MODULUS = h(
    "EF9483133C1D03B007D66AA298CBAC2AD40410A010CCDDC3B132F4F2CA06B0D6"
    "A50134C175D1D518C37421A24A0432906492E702F87D6738D042197362CC8D6D"
    "57DA525F525CF826C44717FB03A8EF8B1900CC2E130F7E2F4932A2C6E97EDD3E"
    "F6C8C60D4DE3DB3A99C57B1DE3A5D6224E6F7CC89AE08E11B3254B66223BD5F0"
    "47A5CB2042457DCD21C00D250BA506C1BA0C64F6742A3AF46EC50C460312094D"
    "64818149B9BD313F81B650039BB53B3A279204943EC986570C789FD1D536D8D9"
    "9B7493F870D2D94D0682B23524B8AA3C75E8BF23344522FF14C883EFD0B49E9F"
    "9A26C3A598C62DE596085486828E58A176E303569C9FBB7B756C1FD883074387"
)

CVC_SIGNATURE = h(
    "40DBB8CA48C904BD8165037ADA7D26E7DDB8BEEC2BDD883CA4FB33ED3ECF0539"
    "203E69BF7226601BAE8537F7B79D15627B956937A79A860AF20AEC44186F3936"
    "EC274E785B7F632BB705A0E1048F64C6AB826D69E3824234552EAF78BD160AEA"
    "FAB8F566CB2C2FC57045E08CD47E91CDA76B98B4D5F06644A2504759A860B1AB"
    "53E14D6D5A1290AEA5BB21488767B2129C0B97CEC8EE6CABF482D5E8ED69E236"
    "AA3F7532DDD400F4F3835F8D2D3F5C26BAAF808CE1DBAB47D39566EA69A8AF9F"
    "B6F469411BA03FEA0F97F878D1BC6D3D1AF4B9F34CA17FE116C9DA2C485D36F8"
    "783E36A7D224A9EB6E5B7F9301E67ABC32AB65BE7C62E7D9BCD23DDC9AA2E2DF"
)

H1 = h("C60C415D94405F03E9C454A8BAE073837D2C619925196526852FE61D9C58422D")

H2 = h("E3089EC7C5B9CC6665F08A8061DBC9E0E2308AD8600901D159F042A03A49251F")

DF33_SIGNATURE = h(
    "C928C74D8BA041A48C06E20D9F04AA02BC83E0EEADEE78B34D8B35733E7E971E"
    "AC3C8BDF138BC0408372E4F2D0FEEB61C2D0B86223FCCC17887BE9696F9CB57F"
    "152E642495809B1473617A5C6017B1302A2AD1FF7DA14E8E292155EFA72C046C"
    "E9F94DEE1D1EB8371ED77F356447CA7B81F74704A64261B013ADAA956CB09963"
    "10F8177AA44A746DADBC7D48456D40ABA971E4828AFE135B842B3F4C9C9BCC09"
    "4BE83431D3345856CB1F06FF4F0BC4668269DD1F41C54D7D69F5F482F1FB4C8C"
    "5459097509D54B2C944B01141731167A3D223F13B542B3607985144278A7B8B1"
    "431DB717DAB1381A852851B60832B374CC10E7D2E2284241252398AE7660268D"
)

CARD_MODULUS = h(
    "ACD8C567CC4E1218B41AD023905B96FEBC145BDAFB3831104ACCAF8214C3A9BE"
    "87D4AA7803C57ADC1E8286F48B432D309C66FF802F2E7539F84AC5F5BBAE6E85"
    "BC1EE80240AD4F913DDAA961CBB30DDCF392F394BC1F47C61D7EF099B5B7F100"
    "0F003BDACF870D762DD7CB85BA39E7A615B0E59AAD7931D943EB89627494A5E8"
    "247BDD4220139700093E18CFEAD3ACD0C6C220A36C4F1573F9A1E5E02A940CA1"
    "9E27FFE510B3681ADEA04B0F9F0B0189835027ABF7419540CE576521444E834C"
    "C65C79F3F0AFE050658EC52A0B12A6CF9A7418E29E633944FC26CB951E793DAB"
    "6E87EE3A14A436B55E7F5D9CFDFB9420732D04CEB8CCBD74F17B100F557544AB"
)

DF52_SIGNATURE = h(
    "069B00E093E4913501771EC0A50557B95D77D9C3651A8AD62072F5CB2B29E430"
    "81FA5679B1861B4EB3027E92724C6D967C7DE9ED1CD73D8B64FC64F16B7E1F84"
    "0D0954C4937AC6132EA047FE51A26B7D116AD13E77EE1ED75B1DE91EB0F94E00"
    "C4A7BF7F5F58358568C05829F54616CAA125BFB9B77860CEF7F5CE1285E18705"
    "B6F0720427B9910E41FF1BDD5FA32F0367C85981833163598B7CAAC1AB119119"
    "CCC977901A7B85797F792DB3A4992DB70115966FB1F49C98A4F557ACBFBC3665"
    "0942239FA59B59C8A3C34CB933C5F30518E6724BDC8FF3BAF633EF8A5FF093CF"
    "53E34C75DC755060821C5860634C84A9B429A568B6319FCC7C57D632C3FF6155"
)

PRESENCE_SIGNATURE = h(
    "26180049334B0BB1BFB401AD8D109B2D5E3D3DFBD8AAA7516CEBE64593B513D1"
    "B9E4FC8C5267F0E458FFDC39C757AEB782F4E8EFB687E6C398D72836EEC22EE4"
    "F396A024C010668351258FDB147A4ADF8D0B6E8776B967D84DC101EBD170A251"
    "79FAC632788C6CADC6EE9E3AD8DF1FD22C15B6168DA0CECE3FCFADA24E3B80C3"
    "5A861B0C2C6D90833C2E996B55ADC4FCA13B0E9C3DA542BC4684F581D5BEB3E0"
    "47ABD36279AFD3802AD0E082CAB67EC9086C19932BDA94EA13628B864F794796"
    "7E1B8C88F5AFFCA0C698020AAB8CE01C237D341528BDC0BD7BF4975F331A14A5"
    "F9E9252E5CB06CC54FEC2ED87401A7F0339005BB651DCBE7430733233F98A36A"
)

# -- EF 0004: 7F21 82 0233 { 5F4E 82 0129 body, 5F37 82 0100 sig } -----------------------
BODY = CA_KEY_ID + ISSUER_KEY_ID + h("90 03 010001", "91 820100") + ISSUER_MODULUS
EF0004 = h("7F21 820233", "5F4E 820129") + BODY + h("5F37 820100") + CVC_SIGNATURE

# -- EF 0002: FF20 5E { DF21 offsets, DF22 name, DF23 address, DF24 birth, DF25 sex } -----
DF22 = h("DF22 0F") + "山田\u3000花子".encode()  # E5B1B1 E794B0 E38080 E88AB1 E5AD90
DF23 = h("DF23 2F") + "東京都千代田区千代田一丁目1番1号".encode()
DF24 = h("DF24 08") + b"19800217"
DF25 = h("DF25 01") + b"2"
# Offsets from the start of the file: 3-byte FF20 header + 11-byte DF21 object = 0x0E.
EF0002 = h("FF20 5E", "DF21 08 000E 0020 0052 005D") + DF22 + DF23 + DF24 + DF25

# -- EF 0003: FF30 82 014B { DF31 20 h1, DF32 20 h2, DF33 82 0100 sig } (336 bytes) --------
EF0003 = h("FF30 82014B", "DF31 20") + H1 + h("DF32 20") + H2 + h("DF33 820100") + DF33_SIGNATURE

# -- EF 0007: FF50 82 0213 { DF51 82 0109 { 90 03 010001, 91 82 0100 n }, DF52 82 0100 sig }
DF51 = h("DF51 820109", "90 03 010001", "91 820100") + CARD_MODULUS
EF0007 = h("FF50 820213") + DF51 + h("DF52 820100") + DF52_SIGNATURE

CHALLENGE = bytes(range(32))  # what PRESENCE_SIGNATURE signs (SHA-256, PKCS#1 v1.5)


def flip(data: bytes, index: int) -> bytes:
    """One tampered byte."""
    return data[:index] + bytes((data[index] ^ 0x01,)) + data[index + 1 :]


def _store() -> TrustStore:
    ca = rsa.RSAPublicNumbers(65537, int.from_bytes(CA_MODULUS, "big")).public_key()
    return TrustStore([], allow_test_roots=True, cvc_keys=[cvc_ca_key(CA_KEY_ID, ca)])


def test_the_fixtures_have_the_published_sizes() -> None:
    assert len(BODY) == 297
    assert len(EF0004) == 5 + 0x233
    assert len(EF0003) == 336
    assert h1_is_over_ef0001_as_stored()


def h1_is_over_ef0001_as_stored() -> bool:
    # EF 0001 = FF10 0C + 12 digits + 2 filler bytes: a fictional number, never read by the
    # project; the device sees only its hash.
    return hashlib.sha256(h("FF10 0C") + b"123456789018" + h("FFFF")).digest() == H1


# -- EF 0004 -------------------------------------------------------------------------------


def test_ef0004_parses_and_verifies_under_the_pinned_ca_key() -> None:
    cvc = parse_cvc(EF0004)
    assert cvc.ca_key_id == CA_KEY_ID
    assert cvc.key_id == ISSUER_KEY_ID
    assert cvc.public_key.public_numbers().e == 65537
    assert cvc.public_key.public_numbers().n == int.from_bytes(ISSUER_MODULUS, "big")
    assert verify_text_ap_issuer(cvc, _store()).key_id == CA_KEY_ID


@pytest.mark.parametrize(
    ("where", "index"),
    [
        ("issuer key id", 10 + 16 + 3),
        ("exponent", 10 + 32 + 3),
        ("modulus", 10 + 32 + 9 + 100),
        ("signature", len(EF0004) - 1),
    ],
)
def test_ef0004_one_tampered_byte_is_refused(where: str, index: int) -> None:
    with pytest.raises(CvcSignatureInvalid) as info:
        verify_text_ap_issuer(parse_cvc(flip(EF0004, index)), _store())
    assert info.value.code == "cvc_signature_invalid", where


def test_ef0004_from_an_unpinned_ca() -> None:
    # The CA key id itself tampered: no such key is pinned, nothing can be verified.
    with pytest.raises(CvcCaNotPinned):
        verify_text_ap_issuer(parse_cvc(flip(EF0004, 10)), _store())
    with pytest.raises(CvcCaNotPinned):  # a production store does not know the test CA
        verify_text_ap_issuer(parse_cvc(EF0004), TrustStore([]))


def test_ef0004_claiming_the_production_ca_key_is_forged() -> None:
    forged = h("7F21 820233", "5F4E 820129") + PRODUCTION_KEY_ID + BODY[16:]
    forged += h("5F37 820100") + CVC_SIGNATURE
    assert PRODUCTION_KEY_ID in PINNED_CVC_CA_KEYS
    with pytest.raises(CvcSignatureInvalid):
        verify_text_ap_issuer(parse_cvc(forged), TrustStore([]))


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        EF0004[:100],
        h("3082 0233") + EF0004[5:],  # the old page's X.509 layout: refused
        h("7F21 03 5F4E 00"),
        h("7F21 820105 5F37 820100") + CVC_SIGNATURE,  # no body
        h("7F21 0A 5F4E 03 010203 5F37 01 00"),  # body too short
    ],
)
def test_ef0004_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedCertificate):
        parse_cvc(raw)


# -- EF 0003 -------------------------------------------------------------------------------


def test_ef0003_verifies_over_the_attribute_objects() -> None:
    record = parse_integrity(EF0003)
    assert record.attributes_hash == H2
    assert record.signed_data == h("DF31 20") + H1 + h("DF32 20") + H2
    check_attributes_hash(EF0002, record)
    check_integrity_signature(record, parse_cvc(EF0004))
    # DF32 is over DF22..DF25 only: the whole file (the old page's layout) does not match.
    assert hashlib.sha256(EF0002).digest() != H2
    assert hashlib.sha256(DF22 + DF23 + DF24 + DF25).digest() == H2


@pytest.mark.parametrize(
    ("where", "index"),
    [
        ("DF31 (h1)", 5 + 3 + 7),
        ("DF32 (h2)", 5 + 35 + 3 + 20),
        ("DF33 (signature)", len(EF0003) - 1),
    ],
)
def test_ef0003_one_tampered_byte_is_refused(where: str, index: int) -> None:
    record = parse_integrity(flip(EF0003, index))
    assert not _integrity_holds(record), where


def _integrity_holds(record: IntegrityRecord) -> bool:
    try:
        check_attributes_hash(EF0002, record)
        check_integrity_signature(record, parse_cvc(EF0004))
    except IntegrityError:
        return False
    return True


@pytest.mark.parametrize(
    ("where", "index"),
    [
        ("name", 3 + 11 + 3 + 4),
        ("address", 3 + 11 + len(DF22) + 3 + 10),
        ("birth date", 3 + 11 + len(DF22) + len(DF23) + 3 + 7),
        ("sex", len(EF0002) - 1),
    ],
)
def test_ef0002_one_tampered_byte_is_refused(where: str, index: int) -> None:
    with pytest.raises(IntegrityError):
        check_attributes_hash(flip(EF0002, index), parse_integrity(EF0003))


def test_ef0002_offsets_are_not_hashed() -> None:
    # DF21 is outside what DF32 covers: a different offset table changes nothing.
    check_attributes_hash(flip(EF0002, 7), parse_integrity(EF0003))


# -- EF 0007 and the card-presence signature -------------------------------------------------


def test_ef0007_is_certified_by_the_ef0004_key() -> None:
    card_key = parse_card_key(EF0007)
    assert card_key.signed_object == DF51
    card_key.verify_under(parse_cvc(EF0004).public_key)
    with pytest.raises(BadSignature):
        parse_card_key(flip(EF0007, 5 + 9 + 50)).verify_under(parse_cvc(EF0004).public_key)
    with pytest.raises(BadSignature):
        parse_card_key(flip(EF0007, len(EF0007) - 1)).verify_under(parse_cvc(EF0004).public_key)


class FixtureTextAp:
    """A card whose text AP holds the fixtures; VERIFY always succeeds; signs with a fixed
    signature (over ``CHALLENGE``)."""

    def __init__(self, files: dict[int, bytes], signature: bytes = PRESENCE_SIGNATURE) -> None:
        self.files, self.signature, self.ef = files, signature, 0
        self.sent: list[bytes] = []

    def power_on(self) -> bytes:
        return ATR

    def process(self, apdu: bytes) -> bytes:
        self.sent.append(bytes(apdu))
        ins = apdu[1]
        if ins == 0xA4 and apdu[2] == 0x02:
            self.ef = int.from_bytes(apdu[5:7], "big")
            return h("9000") if self.ef in self.files or self.ef == 0x15 else h("6A82")
        if ins == 0xB0:
            data = self.files[self.ef]
            off, le = (apdu[2] << 8) | apdu[3], apdu[4] or 256
            return data[off : off + le] + h("9000") if off < len(data) else h("6B00")
        if ins == 0x20:
            return h("63C3") if len(apdu) == 4 else h("9000")
        if ins == 0x2A:
            return self.signature + h("9000")
        return h("9000")


def _session(card: FixtureTextAp) -> TextSession:
    s = TextSession(channel_for(card))
    s.select()
    s.unlock_with_collation_b("55021720301234")
    return s


FILES = {2: EF0002, 3: EF0003, 4: EF0004, 7: EF0007}


def test_text_session_over_the_fixtures() -> None:
    card = FixtureTextAp(dict(FILES))
    s = _session(card)
    s.verify_integrity()
    assert s.prove_presence(CHALLENGE) == PRESENCE_SIGNATURE
    s.verify_card_key_chain()
    assert verify_text_ap_issuer(s.read_issuer_certificate(), _store()).key_id == CA_KEY_ID
    assert not any(a[:5] == h("00A4020C02") and a[5:7] == h("0001") for a in card.sent)


def test_presence_signature_tampered() -> None:
    with pytest.raises(BadSignature):
        _session(FixtureTextAp(dict(FILES), flip(PRESENCE_SIGNATURE, 0))).prove_presence(CHALLENGE)


@pytest.mark.parametrize(
    ("fid", "index", "status"),
    [
        (None, 0, CheckStatus.VERIFIED),
        (2, 3 + 11 + 3 + 4, CheckStatus.TAMPERED),  # a byte of the name
        (3, 5 + 35 + 3 + 20, CheckStatus.TAMPERED),  # a byte of DF32
        (3, len(EF0003) - 1, CheckStatus.TAMPERED),  # a byte of DF33
        (4, 10 + 32 + 9 + 100, CheckStatus.TAMPERED),  # a byte of EF 0004's modulus
        (4, len(EF0004) - 1, CheckStatus.TAMPERED),  # a byte of EF 0004's signature
        (4, 10, CheckStatus.NOT_VERIFIED),  # EF 0004 from a CA key id not pinned
    ],
)
def test_expected_verification_results(fid: int | None, index: int, status: CheckStatus) -> None:
    from edge.jpki.read import _issuer_chain, _verify_attributes

    files = dict(FILES)
    if fid is not None:
        files[fid] = flip(files[fid], index)
    s = _session(FixtureTextAp(files))

    class _Opts:
        trust = _store()

    raw = s.read_attributes_raw()
    chain = _issuer_chain(s, _Opts())  # type: ignore[arg-type]
    assert _verify_attributes(s, raw, chain).status is status
