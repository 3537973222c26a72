"""The visual AP (券面AP / 券面事項確認AP): the card face record and the holder's photo.

Opened by 照合番号B only: there is no way here to verify 照合番号A (EF 0013,
the My Number). The tags inside the face record follow public readers of the
visual AP and the simulator; they are unconfirmed on real cards.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge.reader import SecurityStatusNotSatisfied

from ._base import ApplicationSession
from ._constants import AID_VISUAL, VisualFile
from ._errors import MalformedData, PinRequired
from ._text import check_collation_b
from ._tlv import parse_tlv, parse_tlvs

__all__ = ["FaceRecord", "VisualSession", "parse_face_record"]

_TAG_FACE = 0xFF40
_TAG_EXPIRY = 0xDF29
_TAG_PHOTO = 0xDF27
_JP2_SIGNATURE = bytes.fromhex("0000000C6A5020200D0A870A")


@dataclass(frozen=True)
class FaceRecord:
    """What the paramedic needs from the card face: the photo (JPEG 2000) for the face check."""

    photo: bytes = field(repr=False)
    card_expiry: str = field(repr=False)  # YYYYMMDD

    @property
    def photo_is_jpeg2000(self) -> bool:
        return self.photo.startswith(_JP2_SIGNATURE) or self.photo.startswith(b"\xff\x4f\xff\x51")


def parse_face_record(raw: bytes) -> FaceRecord:
    """Parse EF 0002 of the visual AP (``FF40 {... DF27 photo ... DF29 expiry ...}``)."""
    outer, _ = parse_tlv(raw)
    if outer.tag != _TAG_FACE:
        raise MalformedData(f"face record starts with tag {outer.tag:X}")
    fields: dict[int, bytes] = {}
    for t in parse_tlvs(outer.value):
        fields.setdefault(t.tag, t.value)
    photo = fields.get(_TAG_PHOTO)
    if not photo:
        raise MalformedData("face record without a photo")
    expiry = fields.get(_TAG_EXPIRY, b"")
    try:
        expiry_text = expiry.decode("ascii")
    except UnicodeDecodeError as exc:
        raise MalformedData("expiry is not ASCII") from exc
    return FaceRecord(photo=photo, card_expiry=expiry_text)


class VisualSession(ApplicationSession):
    """The visual AP over an ``ApduChannel``: 照合番号B, then the face record."""

    AID = AID_VISUAL

    def unlock_with_collation_b(self, digits: str, *, allow_last_try: bool = False) -> None:
        """VERIFY 照合番号B on EF 0012 (14 digits, checked before sending)."""
        secret = check_collation_b(digits)
        self._verify(
            VisualFile.COLLATION_B, secret, allow_last_try=allow_last_try, collation_b=True
        )

    def read_face(self) -> FaceRecord:
        """Read and parse the card face record (needs 照合番号B)."""
        self._require_verified()
        try:
            raw = self._read_tlv_file(VisualFile.FACE, expected_tag=_TAG_FACE)
        except SecurityStatusNotSatisfied as exc:
            raise PinRequired("the face record needs 照合番号B") from exc
        return parse_face_record(raw)
