"""The hospitals' fixed list of 受入不可 reasons (docs/product.md), in screen order.

One list for both ends of the wire: the hospital's dashboard offers these, and the
device keeps a decline's reason only when it is one of them (any other text becomes
その他).
"""

from __future__ import annotations

__all__ = ["DECLINE_REASONS"]

DECLINE_REASONS = ("処置困難", "専門外", "満床", "手術中", "医師不在", "その他")
