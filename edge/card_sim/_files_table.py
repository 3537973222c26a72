"""The card's file system: applications, their EFs and who may open them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import rsa

from ._files import (
    attributes_file,
    availability_file,
    my_number_file,
    token_info_file,
    visual_face_file,
)
from ._image import CardImage

__all__ = ["AID_JPKI", "AID_TEXT", "AID_VISUAL", "Application", "Ef", "build_applications"]

AID_JPKI = bytes.fromhex("D392F000260100000001")
AID_TEXT = bytes.fromhex("D3921000310001010408")
AID_VISUAL = bytes.fromhex("D3921000310001010402")


@dataclass
class Ef:
    """One elementary file.

    ``kind``: ``"bin"`` (READ BINARY), ``"pin"`` (VERIFY / CHANGE REFERENCE DATA)
    or ``"key"`` (COMPUTE SIGNATURE). ``needs``: PIN EFs of which any one opens it
    (empty = free). A PIN EF has a retry ``counter`` name in the image.
    """

    kind: str
    data: Callable[[], bytes] = bytes
    needs: frozenset[int] = frozenset()
    counter: str = ""
    secret: Callable[[], str] = str
    change: Callable[[str], None] | None = None
    key: Callable[[], rsa.RSAPrivateKey | None] | None = None


@dataclass
class Application:
    name: str
    aid: bytes
    files: dict[int, Ef] = field(default_factory=dict)
    # Text AP: signs a host challenge with its own key, no credential (80 2A 00 00).
    presence_key: Callable[[], rsa.RSAPrivateKey] | None = None


def _cached(make: Callable[[], bytes]) -> Callable[[], bytes]:
    box: list[bytes] = []

    def get() -> bytes:
        if not box:
            box.append(make())
        return box[0]

    return get


def _set_pin(image: CardImage, attr: str) -> Callable[[str], None]:
    def change(new: str) -> None:
        setattr(image, attr, new)

    return change


def build_applications(image: CardImage) -> list[Application]:
    """The three applications of ``image`` with the access rules of jpki-card.md."""
    AUTH_PIN, SIGN_PW = 0x0018, 0x001B
    phone = image.profile == "android"
    jpki = Application("jpki", AID_JPKI)
    jpki.files = {
        0x0006: Ef("bin", _cached(lambda: token_info_file(image.profile))),
        0x0008: Ef("bin", _cached(lambda: availability_file(image))),
        # The auth certificate is free on a card; an Android token wants the PIN first.
        0x000A: Ef(
            "bin",
            lambda: image.auth_certificate_der,
            frozenset({AUTH_PIN}) if phone else frozenset(),
        ),
        0x000B: Ef("bin", lambda: image.auth_ca_der),
        0x0002: Ef("bin", lambda: image.sign_ca_der),
        0x0017: Ef("key", needs=frozenset({AUTH_PIN}), key=lambda: image.auth_key),
        0x0018: Ef(
            "pin", counter="auth_pin", secret=lambda: image.pin, change=_set_pin(image, "pin")
        ),
        0x001B: Ef(
            "pin",
            counter="sign_password",
            secret=lambda: image.sign_password,
            change=_set_pin(image, "sign_password"),
        ),
    }
    if image.has_signing_certificate:
        der = image.signing_certificate_der or b""
        jpki.files[0x0001] = Ef("bin", lambda: der, frozenset({SIGN_PW}))
        jpki.files[0x001A] = Ef("key", needs=frozenset({SIGN_PW}), key=lambda: image.sign_key)

    T_PIN, T_A, T_B = 0x0011, 0x0014, 0x0015
    text = Application("text", AID_TEXT, presence_key=lambda: image.text_key)
    text.files = {
        0x0001: Ef("bin", _cached(lambda: my_number_file(image)), frozenset({T_PIN, T_A})),
        0x0002: Ef("bin", _cached(lambda: attributes_file(image)), frozenset({T_PIN, T_B})),
        # EF 0003, 0004, 0005 and 0007 were written at issue time (signed by the issuer).
        0x0003: Ef("bin", lambda: image.text_integrity, frozenset({T_PIN, T_A, T_B})),
        0x0004: Ef("bin", lambda: image.text_cvc),
        0x0005: Ef("bin", lambda: image.text_key_info),
        0x0007: Ef("bin", lambda: image.text_card_key, frozenset({T_PIN, T_A, T_B})),
        0x0011: Ef(
            "pin",
            counter="text_pin",
            secret=lambda: image.text_pin,
            change=_set_pin(image, "text_pin"),
        ),
        0x0014: Ef("pin", counter="text_collation_a", secret=lambda: image.my_number),
        0x0015: Ef("pin", counter="text_collation_b", secret=lambda: image.collation_b),
    }

    V_A, V_B = 0x0013, 0x0012
    visual = Application("visual", AID_VISUAL)
    visual.files = {
        0x0002: Ef("bin", _cached(lambda: visual_face_file(image)), frozenset({V_A, V_B})),
        0x0012: Ef("pin", counter="visual_collation_b", secret=lambda: image.collation_b),
        0x0013: Ef("pin", counter="visual_collation_a", secret=lambda: image.my_number),
    }
    return [jpki, text, visual]
