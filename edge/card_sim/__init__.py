"""The virtual My Number card: a test CA, card images, the card itself and its front ends.

In process::

    ca = TestCA.create()
    image = ca.issue_card(profile="card", pin="1234")
    card = VirtualCard(image)
    conn = LoopbackConnection(card)          # from edge.reader

Through pcscd: ``VpcdFrontEnd(card).start()``; through nfcpy's udp driver:
``NfcUdpFrontEnd(card, host, port).start()``. See docs/card-sim.md.
"""

from __future__ import annotations

from edge.reader import LoopbackConnection

from ._card import Quirks, VirtualCard
from ._files import TOKEN_LABELS
from ._files_table import AID_JPKI, AID_TEXT, AID_VISUAL
from ._holder import Holder, era_yymmdd, my_number_check_digit
from ._image import MAX_TRIES, PROFILES, CardImage
from ._keys import KeyPool, new_rsa_key
from .ca import AUTH_POLICY_OID, JST, SIGN_POLICY_OID, TestCA, fifth_birthday_after
from .nfc_udp import NfcUdpFrontEnd
from .vpcd import VpcdFrontEnd

__all__ = [
    "AID_JPKI",
    "AID_TEXT",
    "AID_VISUAL",
    "AUTH_POLICY_OID",
    "JST",
    "MAX_TRIES",
    "PROFILES",
    "SIGN_POLICY_OID",
    "TOKEN_LABELS",
    "CardImage",
    "Holder",
    "KeyPool",
    "LoopbackConnection",
    "NfcUdpFrontEnd",
    "Quirks",
    "TestCA",
    "VirtualCard",
    "VpcdFrontEnd",
    "era_yymmdd",
    "fifth_birthday_after",
    "my_number_check_digit",
    "new_rsa_key",
]
