"""The virtual card's persistent image: one JSON file (test material, keys in clear).

PIN and password retry counters live in the image and are written back
atomically (temp file + ``os.replace``) every time they change, so a card that
was blocked stays blocked across restarts, like a real one.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from ._holder import Holder, era_yymmdd
from ._keys import key_from_pem, key_to_pem

__all__ = ["MAX_TRIES", "PROFILES", "CardImage"]

# /2: the text AP in the real layouts (CVC in EF 0004, EF 0003 over the attribute
# objects, EF 0005, EF 0007). /1 images held an X.509 EF 0004 and are not loaded.
FORMAT = "kyukyu-virtual-card/2"
PROFILES = ("card", "android", "iphone")

# Retry counters: name -> tries when fresh. The JPKI numbers are in jpki-card.md;
# the 照合番号 counters of the text and visual APs are not published (unconfirmed):
# 10 is a guess that keeps tests honest about blocking.
MAX_TRIES: dict[str, int] = {
    "auth_pin": 3,
    "sign_password": 5,
    "text_pin": 3,
    "text_collation_a": 10,
    "text_collation_b": 10,
    "visual_collation_a": 10,
    "visual_collation_b": 10,
}

# ATR of the older physical cards (the one OpenSC's jpki driver matches).
ATR_CARD = bytes.fromhex("3BE000FF8131FE4514")


def _contactless_atr() -> bytes:
    # What a PC/SC contactless reader synthesises for an ISO 14443-4 Type B target
    # (PC/SC part 3): 3B 88 80 01 + 7 ATQB bytes + MBLI nibble, then TCK.
    body = bytes.fromhex("888001") + bytes.fromhex("00000000778181") + b"\x00"
    tck = 0
    for b in body:
        tck ^= b
    return b"\x3b" + body + bytes((tck,))


ATR_PHONE = _contactless_atr()


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def _unb64(s: str) -> bytes:
    return base64.b64decode(s.encode("ascii"), validate=True)


@dataclass
class CardImage:
    """Everything one virtual card holds. Made by ``TestCA.issue_card``."""

    profile: str
    holder: Holder
    my_number: str
    card_expiry: date
    atr: bytes
    auth_key: rsa.RSAPrivateKey
    auth_certificate_der: bytes
    auth_ca_der: bytes
    pin: str
    sign_ca_der: bytes
    sign_password: str
    text_key: rsa.RSAPrivateKey  # the card's own key (EF 0013: never readable)
    text_cvc: bytes  # EF 0004
    text_integrity: bytes  # EF 0003
    text_key_info: bytes  # EF 0005
    text_card_key: bytes  # EF 0007
    text_pin: str
    photo: bytes
    sign_key: rsa.RSAPrivateKey | None = None
    signing_certificate_der: bytes | None = None
    tries: dict[str, int] = field(default_factory=lambda: dict(MAX_TRIES))

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {PROFILES}")
        if len(self.pin) != 4 or not self.pin.isdigit():
            raise ValueError("the user-auth PIN is 4 digits")
        _check_password(self.sign_password)
        for k, v in MAX_TRIES.items():
            self.tries.setdefault(k, v)

    @property
    def collation_b(self) -> str:
        """照合番号B as printed on the card face: the birth date in the Japanese era
        (YYMMDD, e.g. 昭和55年2月17日 -> ``550217``) + the card's expiry year (4 digits)
        + the security code (4 digits)."""
        return (
            era_yymmdd(self.holder.birth_date)
            + f"{self.card_expiry.year:04d}"
            + self.holder.security_code
        )

    @property
    def auth_certificate(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.auth_certificate_der)

    @property
    def has_signing_certificate(self) -> bool:
        return self.signing_certificate_der is not None and self.sign_key is not None

    # -- persistence ---------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "profile": self.profile,
            "holder": self.holder.to_dict(),
            "my_number": self.my_number,
            "card_expiry": self.card_expiry.isoformat(),
            "atr": self.atr.hex().upper(),
            "auth": {
                "key": key_to_pem(self.auth_key),
                "certificate": _b64(self.auth_certificate_der),
                "ca_certificate": _b64(self.auth_ca_der),
                "pin": self.pin,
            },
            "sign": {
                "key": key_to_pem(self.sign_key) if self.sign_key else None,
                "certificate": (
                    _b64(self.signing_certificate_der) if self.signing_certificate_der else None
                ),
                "ca_certificate": _b64(self.sign_ca_der),
                "password": self.sign_password,
            },
            "text": {
                "key": key_to_pem(self.text_key),
                "ef0003": _b64(self.text_integrity),
                "ef0004": _b64(self.text_cvc),
                "ef0005": _b64(self.text_key_info),
                "ef0007": _b64(self.text_card_key),
                "pin": self.text_pin,
            },
            "visual": {"photo": _b64(self.photo)},
            "tries": dict(self.tries),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CardImage:
        if d.get("format") != FORMAT:
            raise ValueError(f"not a virtual card file of format {FORMAT}: issue the card again")
        auth, sign, text = d["auth"], d["sign"], d["text"]
        return cls(
            profile=d["profile"],
            holder=Holder.from_dict(d["holder"]),
            my_number=d["my_number"],
            card_expiry=date.fromisoformat(d["card_expiry"]),
            atr=bytes.fromhex(d["atr"]),
            auth_key=key_from_pem(auth["key"]),
            auth_certificate_der=_unb64(auth["certificate"]),
            auth_ca_der=_unb64(auth["ca_certificate"]),
            pin=auth["pin"],
            sign_key=key_from_pem(sign["key"]) if sign.get("key") else None,
            signing_certificate_der=(
                _unb64(sign["certificate"]) if sign.get("certificate") else None
            ),
            sign_ca_der=_unb64(sign["ca_certificate"]),
            sign_password=sign["password"],
            text_key=key_from_pem(text["key"]),
            text_integrity=_unb64(text["ef0003"]),
            text_cvc=_unb64(text["ef0004"]),
            text_key_info=_unb64(text["ef0005"]),
            text_card_key=_unb64(text["ef0007"]),
            text_pin=text["pin"],
            photo=_unb64(d["visual"]["photo"]),
            tries={k: int(v) for k, v in d.get("tries", {}).items()},
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the image atomically (a reader never sees half a file)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps(self.to_json(), ensure_ascii=False, indent=1).encode("utf-8")
        fd, tmp = tempfile.mkstemp(prefix=".card-", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CardImage:
        return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))


def _check_password(pw: str) -> None:
    if not 6 <= len(pw) <= 16 or not all(c.isdigit() or "A" <= c <= "Z" for c in pw):
        raise ValueError("the signing password is 6-16 characters of A-Z and 0-9")
