"""Where a device keeps the hospitals' answers: the seam between the answer stream
(``sync.sender.follow_answers``) and what stores them (``Outbox.answers``, a
``sync.answer_ledger.AnswerLedger`` in the outbox's file).

A module of its own, importing nothing: the case flow's ports build on it, and the
device's first screen must not load the outbox or the client (docs/edge-ui.md).
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["AnswerBook"]


class AnswerBook(Protocol):
    """Where answers are kept: ``Outbox.answers`` (with the answer stream's cursor)."""

    @property
    def answers_after(self) -> int: ...

    def apply_answer_event(
        self,
        seq: int,
        case_id: str,
        hospital_id: str,
        answer: str,
        at: float,
        reason: str | None = None,
    ) -> bool: ...

    def skip_device_event(self, seq: int) -> None: ...
