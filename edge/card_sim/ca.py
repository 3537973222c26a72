"""A test CA shaped like J-LIS's: one-tier RSA-2048 roots, certificates like real ones.

Everything it makes says ``O=JPKI-TEST``: the trust layer refuses it outside
test mode. Certificates follow ``jpki-card.md`` (issuer DNs, key usage, EKU,
policy OIDs, CRL distribution point as a directory name per municipality, AIA
with an OCSP URL, validity to 23:59:59 JST of the holder's 5th birthday).
"""

from __future__ import annotations

import json
import os
import random
import secrets
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from ._files import attributes_bytes, my_number_bytes
from ._holder import Holder, municipality_of, random_my_number
from ._image import ATR_CARD, ATR_PHONE, PROFILES, CardImage
from ._keys import KeyFactory, key_from_pem, key_to_pem, new_rsa_key
from ._text_ap import card_key_file, cvc_file, integrity_file, key_info_file
from ._visual import placeholder_photo

__all__ = [
    "AUTH_POLICY_OID",
    "JST",
    "SIGN_POLICY_OID",
    "TestCA",
    "fifth_birthday_after",
]

JST = timezone(timedelta(hours=9), "JST")
#: The test CA's list of revoked serials, beside its keys.
REVOKED_FILE = "revoked.json"
AUTH_POLICY_OID = x509.ObjectIdentifier("1.2.392.200149.8.5.1.3.30")
SIGN_POLICY_OID = x509.ObjectIdentifier("1.2.392.200149.8.5.1.1.20")
# SubjectAltName otherName types of the signing certificate (1.2.392.200149.8.5.5.*).
OID_NAME = x509.ObjectIdentifier("1.2.392.200149.8.5.5.1")
OID_SEX = x509.ObjectIdentifier("1.2.392.200149.8.5.5.3")
OID_BIRTH = x509.ObjectIdentifier("1.2.392.200149.8.5.5.4")
OID_ADDRESS = x509.ObjectIdentifier("1.2.392.200149.8.5.5.5")

_ORG = "JPKI-TEST"
_JLIS = "Japan Agency for Local Authority Information Systems"
_ROOTS = {
    # attribute -> (OU naming the root, OCSP host)
    "auth_root": ("JPKI for user authentication", "ocspauth"),
    "sign_root": ("JPKI for digital signature", "ocspsign"),
    "phone_auth_root": ("JPKI for smartphone user authentication", "ocspspauth"),
}
# The text AP's chain is not X.509: a CVC CA key (named by a 16-byte key id, never on
# the card) certifies an issuer key in EF 0004; the issuer key signs EF 0003 and
# certifies each card's own key in EF 0007. Test key ids look like J-LIS's
# ("5000033" 08 05 "001" + 4 bytes) with a first digit no real hierarchy uses, and
# 4 random bytes so that two test CAs never share a key id.
_CVC_CA_PREFIX = b"9000033\x08\x05001"
_CVC_ISSUER_PREFIX = b"9100033\x08\x05001"
_CVC_FILE = "text_cvc.json"
_CRL_NUMBER_FILE = "crl-number"  # the last CRLNumber written (TestCA.crl)


def _name(ou: str, *extra: x509.NameAttribute[str]) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORG),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou),
            *extra,
        ]
    )


def _root_name(ou: str) -> x509.Name:
    return _name(ou, x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, _JLIS))


def _birthday_in(year: int, birth: date) -> date:
    try:
        return birth.replace(year=year)
    except ValueError:  # 29 February in a common year
        return date(year, 2, 28)


def fifth_birthday_after(birth: date, issued: date, n: int = 5) -> date:
    """The ``n``-th birthday strictly after ``issued`` (発行日後5回目の誕生日)."""
    first = _birthday_in(issued.year, birth)
    if first <= issued:
        first = _birthday_in(issued.year + 1, birth)
    return _birthday_in(first.year + n - 1, birth)


def _end_of_day_jst(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, 23, 59, 59, tzinfo=JST).astimezone(UTC)


def _der_string(tag: int, text: str) -> bytes:
    raw = text.encode("utf-8")
    n = len(raw)
    length = (
        bytes((n,))
        if n < 0x80
        else (b"\x81" + bytes((n,)) if n < 256 else b"\x82" + n.to_bytes(2, "big"))
    )
    return bytes((tag,)) + length + raw


def _serial() -> int:
    # Real JPKI serials are short positive integers; 40 bits keep them unique enough here.
    return secrets.randbelow(1 << 40) + 1


def _leaf_key_usage(*, non_repudiation: bool) -> x509.KeyUsage:
    """KeyUsage of an end-entity certificate: digitalSignature (+ nonRepudiation for 署名用)."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=non_repudiation,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


class TestCA:
    """J-LIS-shaped test roots and the issuer of virtual cards.

    ``auth_root`` (利用者証明用), ``sign_root`` (署名用), ``phone_auth_root``
    (smartphone user certificates have their own CA), and the text AP's CVC chain:
    ``text_cvc_ca`` (the CA key, pinned by key id; saved as
    ``cvc-ca-<key id hex>.pem`` so the CA directory doubles as a test roots
    directory) and ``text_issuer`` (certified in EF 0004; signs EF 0003 and
    certifies each card's own key in EF 0007). RSA key generation is slow: pass a
    ``key_factory`` (e.g. ``KeyPool``) to reuse keys in tests.
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        keys: dict[str, rsa.RSAPrivateKey],
        certs: dict[str, x509.Certificate],
        revoked: dict[int, datetime] | None = None,
        directory: Path | None = None,
        key_factory: KeyFactory = new_rsa_key,
        cvc_ids: dict[str, bytes] | None = None,
    ) -> None:
        self._keys = keys
        self._certs = certs
        if cvc_ids is None:
            cvc_ids = {
                "text_cvc_ca": _CVC_CA_PREFIX + secrets.token_bytes(4),
                "text_issuer": _CVC_ISSUER_PREFIX + secrets.token_bytes(4),
            }
        self.cvc_ids = cvc_ids
        for attr in cvc_ids:
            if attr not in self._keys:
                self._keys[attr] = key_factory()
        self._revoked: dict[int, datetime] = dict(revoked or {})
        self.directory = directory
        self.key_factory = key_factory
        self._crl_number = 0  # the last CRLNumber written (see _next_crl_number)

    # -- the roots -------------------------------------------------------------

    @property
    def auth_root(self) -> x509.Certificate:
        return self._certs["auth_root"]

    @property
    def sign_root(self) -> x509.Certificate:
        return self._certs["sign_root"]

    @property
    def phone_auth_root(self) -> x509.Certificate:
        return self._certs["phone_auth_root"]

    @property
    def cvc_ca_key_id(self) -> bytes:
        """The 16-byte key id of the test CVC CA key (EF 0004's certifier)."""
        return self.cvc_ids["text_cvc_ca"]

    @property
    def cvc_ca_public_key(self) -> rsa.RSAPublicKey:
        return self._keys["text_cvc_ca"].public_key()

    @property
    def cvc_ca_filename(self) -> str:
        """``cvc-ca-<key id as 32 hex digits>.pem``: the name a roots directory expects."""
        return f"cvc-ca-{self.cvc_ca_key_id.hex().upper()}.pem"

    def cvc_ca_pem(self) -> bytes:
        return self.cvc_ca_public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def write_roots(self, directory: str | os.PathLike[str]) -> Path:
        """A test roots directory: the root certificates and the CVC CA public key."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        for attr in _ROOTS:
            (d / f"{attr}.pem").write_bytes(
                self._certs[attr].public_bytes(serialization.Encoding.PEM)
            )
        (d / self.cvc_ca_filename).write_bytes(self.cvc_ca_pem())
        return d

    @property
    def roots(self) -> list[x509.Certificate]:
        return [self._certs[k] for k in _ROOTS]

    @classmethod
    def create(
        cls,
        directory: str | os.PathLike[str] | None = None,
        *,
        key_factory: KeyFactory | None = None,
        now: datetime | None = None,
    ) -> TestCA:
        """New roots (valid 20 years from ``now``); saved to ``directory`` if given."""
        factory = key_factory or new_rsa_key
        now = (now or datetime.now(UTC)).replace(microsecond=0)
        keys: dict[str, rsa.RSAPrivateKey] = {}
        certs: dict[str, x509.Certificate] = {}
        for attr, (ou, _ocsp) in _ROOTS.items():
            key = factory()
            name = _root_name(ou)
            ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
            cert = (
                x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(name)
                .public_key(key.public_key())
                .serial_number(_serial())
                .not_valid_before(now - timedelta(days=1))
                .not_valid_after(now + timedelta(days=365 * 20))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(
                    x509.KeyUsage(
                        digital_signature=False,
                        content_commitment=False,
                        key_encipherment=False,
                        data_encipherment=False,
                        key_agreement=False,
                        key_cert_sign=True,
                        crl_sign=True,
                        encipher_only=False,
                        decipher_only=False,
                    ),
                    critical=True,
                )
                .add_extension(ski, critical=False)
                .sign(key, hashes.SHA256())
            )
            keys[attr], certs[attr] = key, cert
        ca = cls(keys, certs, key_factory=factory)
        if directory is not None:
            ca.save(directory)
        return ca

    # -- persistence -----------------------------------------------------------

    def save(self, directory: str | os.PathLike[str]) -> None:
        """``<root>.pem`` certificates, ``<root>.key`` PEM keys (test material, in clear)
        and ``revoked.json``. The directory doubles as a test trust-roots directory."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        for attr in _ROOTS:
            # ".key", not ".pem": a trust store loading every *.pem of the directory
            # then sees the root certificates only.
            (d / f"{attr}.key").write_text(key_to_pem(self._keys[attr]))
            pem = self._certs[attr].public_bytes(serialization.Encoding.PEM)
            (d / f"{attr}.pem").write_bytes(pem)
        for attr in self.cvc_ids:
            (d / f"{attr}.key").write_text(key_to_pem(self._keys[attr]))
        ids = {attr: key_id.hex().upper() for attr, key_id in self.cvc_ids.items()}
        (d / _CVC_FILE).write_text(json.dumps(ids, indent=1))
        (d / self.cvc_ca_filename).write_bytes(self.cvc_ca_pem())
        self._save_revoked(d)
        self.directory = d

    def _save_revoked(self, d: Path) -> None:
        data = {str(s): t.isoformat() for s, t in sorted(self._revoked.items())}
        tmp = d / f"{REVOKED_FILE}.tmp"
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, d / REVOKED_FILE)

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> TestCA:
        d = Path(directory)
        keys = {a: key_from_pem((d / f"{a}.key").read_text()) for a in _ROOTS}
        cvc_ids: dict[str, bytes] | None = None
        if (d / _CVC_FILE).exists():
            ids = json.loads((d / _CVC_FILE).read_text())
            cvc_ids = {a: bytes.fromhex(h) for a, h in ids.items()}
            keys.update({a: key_from_pem((d / f"{a}.key").read_text()) for a in cvc_ids})
        certs = {a: x509.load_pem_x509_certificate((d / f"{a}.pem").read_bytes()) for a in _ROOTS}
        revoked: dict[int, datetime] = {}
        rfile = d / REVOKED_FILE
        if rfile.exists():
            revoked = {
                int(s): datetime.fromisoformat(t) for s, t in json.loads(rfile.read_text()).items()
            }
        ca = cls(keys, certs, revoked, directory=d, cvc_ids=cvc_ids)
        if cvc_ids is None:  # a directory from before the CVC chain: add it
            ca.save(d)
        return ca

    @classmethod
    def open_or_create(cls, directory: str | os.PathLike[str]) -> TestCA:
        d = Path(directory)
        return cls.load(d) if (d / "auth_root.pem").exists() else cls.create(d)

    # -- revocation --------------------------------------------------------------

    def revoke(self, serial: int, when: datetime | None = None) -> None:
        """Revoke a certificate by serial (persisted when the CA has a directory)."""
        self._revoked[int(serial)] = (when or datetime.now(UTC)).replace(microsecond=0)
        if self.directory is not None:
            self._save_revoked(self.directory)

    @property
    def revoked_serials(self) -> frozenset[int]:
        return frozenset(self._revoked)

    def crl(self, root: str = "auth_root", *, now: datetime | None = None) -> bytes:
        """A DER CRL signed by ``root`` listing every revoked serial."""
        now = (now or datetime.now(UTC)).replace(microsecond=0)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self._certs[root].subject)
            .last_update(now)
            .next_update(now + timedelta(days=1))
            .add_extension(x509.CRLNumber(self._next_crl_number()), critical=False)
        )
        for serial, when in sorted(self._revoked.items()):
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
            )
        return builder.sign(self._keys[root], hashes.SHA256()).public_bytes(
            serialization.Encoding.DER
        )

    def _next_crl_number(self) -> int:
        """One more than the last CRLNumber this CA wrote (persisted in its directory,
        so CRLs stay ordered across processes and within the same second)."""
        last = self._crl_number
        if self.directory is not None:
            path = self.directory / _CRL_NUMBER_FILE
            if path.exists():
                last = max(last, int(path.read_text().strip() or 0))
            tmp = self.directory / f"{_CRL_NUMBER_FILE}.tmp"
            tmp.write_text(f"{last + 1}\n")
            os.replace(tmp, path)
        self._crl_number = last + 1
        return self._crl_number

    # -- issuing -------------------------------------------------------------------

    def issue_card(
        self,
        *,
        profile: str = "card",
        pin: str = "1234",
        sign_password: str = "ABC123",  # noqa: S107 - test card default
        holder: Holder | None = None,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        signing_cert: bool = True,
        text_pin: str | None = None,
        rng: random.Random | None = None,
        key_factory: KeyFactory | None = None,
    ) -> CardImage:
        """A new virtual card: keys, certificates, holder data, fresh counters."""
        if profile not in PROFILES:
            raise ValueError(f"profile must be one of {PROFILES}")
        rng = rng or random.Random()
        factory = key_factory or self.key_factory
        holder = holder or Holder.random(rng)
        issued = (not_before or datetime.now(UTC)).replace(microsecond=0)
        issued_jst = issued.astimezone(JST).date()
        cert_end = not_after or _end_of_day_jst(fifth_birthday_after(holder.birth_date, issued_jst))
        age = (issued_jst - holder.birth_date).days // 365
        card_expiry = fifth_birthday_after(holder.birth_date, issued_jst, 10 if age >= 18 else 5)
        phone = profile != "card"
        auth_root = "phone_auth_root" if phone else "auth_root"
        pref, city = municipality_of(holder.address)
        auth_key = factory()
        auth_cert = self._issue_end_entity(
            auth_root, auth_key, x509.Name([
                x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                x509.NameAttribute(NameOID.COMMON_NAME, self._opaque_id(issued, rng)),
            ]),
            issued, cert_end, pref, city, signing=False,
        )  # fmt: skip
        sign_key = factory() if signing_cert else None
        sign_cert = None
        if sign_key is not None:
            subject = x509.Name([
                x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                x509.NameAttribute(NameOID.LOCALITY_NAME, pref),
                x509.NameAttribute(NameOID.LOCALITY_NAME, city),
                x509.NameAttribute(NameOID.COMMON_NAME, self._opaque_id(issued, rng)),
            ])  # fmt: skip
            sign_cert = self._issue_end_entity(
                "sign_root", sign_key, subject, issued, cert_end, pref, city,
                signing=True, holder=holder,
            )  # fmt: skip
        text_key = factory()
        my_number = random_my_number(rng)
        der = serialization.Encoding.DER
        return CardImage(
            profile=profile,
            holder=holder,
            my_number=my_number,
            card_expiry=card_expiry,
            atr=ATR_PHONE if phone else ATR_CARD,
            auth_key=auth_key,
            auth_certificate_der=auth_cert.public_bytes(der),
            auth_ca_der=self._certs[auth_root].public_bytes(der),
            pin=pin,
            sign_key=sign_key,
            signing_certificate_der=sign_cert.public_bytes(der) if sign_cert else None,
            sign_ca_der=self.sign_root.public_bytes(der),
            sign_password=sign_password,
            text_key=text_key,
            text_cvc=self.cvc_file(),
            text_integrity=integrity_file(
                self._keys["text_issuer"], my_number_bytes(my_number), attributes_bytes(holder)
            ),
            text_key_info=key_info_file(self.cvc_ids["text_issuer"]),
            text_card_key=card_key_file(self._keys["text_issuer"], text_key.public_key()),
            text_pin=text_pin or pin,
            photo=placeholder_photo(rng),
        )

    @staticmethod
    def _opaque_id(issued: datetime, rng: random.Random) -> str:
        alphabet = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
        return f"{issued.year}" + "".join(rng.choice(alphabet) for _ in range(20))

    def _issue_end_entity(
        self,
        root: str,
        key: rsa.RSAPrivateKey,
        subject: x509.Name,
        not_before: datetime,
        not_after: datetime,
        pref: str,
        city: str,
        *,
        signing: bool,
        holder: Holder | None = None,
    ) -> x509.Certificate:
        issuer_cert = self._certs[root]
        ou, ocsp_host = _ROOTS[root]
        crl_dp = _name(
            ou,
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "CRL Distribution Points"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, pref),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{city} CRLDP"),
        )
        policy = SIGN_POLICY_OID if signing else AUTH_POLICY_OID
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer_cert.subject)
            .public_key(key.public_key())
            .serial_number(_serial())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(
                _leaf_key_usage(non_repudiation=signing),
                critical=True,
            )
            .add_extension(
                x509.CertificatePolicies([x509.PolicyInformation(policy, None)]), critical=True
            )
            .add_extension(
                x509.CRLDistributionPoints(
                    [x509.DistributionPoint([x509.DirectoryName(crl_dp)], None, None, None)]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityInformationAccess(
                    [
                        x509.AccessDescription(
                            AuthorityInformationAccessOID.OCSP,
                            x509.UniformResourceIdentifier(f"http://{ocsp_host}.jpki-test.invalid"),
                        )
                    ]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key()),  # type: ignore[arg-type]
                critical=False,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
        )
        if not signing:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
            )
        elif holder is not None:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([
                    x509.OtherName(OID_NAME, _der_string(0x0C, holder.name)),
                    x509.OtherName(OID_SEX, _der_string(0x13, holder.sex)),
                    x509.OtherName(OID_BIRTH, _der_string(0x13, f"{holder.birth_date:%Y%m%d}")),
                    x509.OtherName(OID_ADDRESS, _der_string(0x0C, holder.address)),
                ]),
                critical=False,
            )  # fmt: skip
        return builder.sign(self._keys[root], hashes.SHA256())

    def cvc_file(self) -> bytes:
        """EF 0004 as every card of this CA carries it: the issuer key's CVC."""
        return cvc_file(
            self._keys["text_cvc_ca"],
            self.cvc_ca_key_id,
            self._keys["text_issuer"].public_key(),
            self.cvc_ids["text_issuer"],
        )
