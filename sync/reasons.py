"""The hospitals' fixed list of 受入不可 reasons and the device's 不搬送・中止 reasons
(docs/product.md), in screen order.

One list for both ends of the wire: the hospital's dashboard offers these, and the
device keeps a decline's reason only when it is one of them (any other text becomes
その他).
"""

from __future__ import annotations

__all__ = ["CLOSURE_REASONS", "DECLINE_REASONS"]

DECLINE_REASONS = ("処置困難", "専門外", "満床", "手術中", "医師不在", "その他")

#: The 不搬送・中止 reasons of docs/product.md (Japanese, English), in screen order
#: (``sync.closure`` checks a closure's reason against them). Here, with no
#: cryptography, so the device's screens can name them before the flow loads.
CLOSURE_REASONS: tuple[tuple[str, str], ...] = (
    ("搬送拒否", "transport refused"),
    ("現場死亡確認", "death confirmed at the scene"),
    ("軽症・自力受診", "mild, will go by themselves"),
    ("他隊へ引継ぎ", "handed to another team"),
    ("誤報・取消", "false call / cancelled"),
    ("その他", "other"),
)
