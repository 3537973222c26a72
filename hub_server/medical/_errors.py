"""Errors of the medical source: the hub's typed errors (code, message_ja, message_en).

``MedicalSourceError`` (a ``HubError``, so the API answers it as-is)
 ├── ``MedicalSourceUnavailable``  (also ``Unavailable``): the source's database cannot be reached
 └── ``MedicalRecordUnreadable``   (also ``UpstreamUnreadable``): a stored record is not in a
                                   known format
"""

from __future__ import annotations

from hub_server.core.errors import HubError, Unavailable, UpstreamUnreadable

__all__ = ["MedicalRecordUnreadable", "MedicalSourceError", "MedicalSourceUnavailable"]

_NEXT_STEP_JA = "カード券面やご本人・ご家族からの聴取で確認し、搬送先の選定を続けてください。"


class MedicalSourceError(HubError):
    """The summary could not be produced; the paramedic continues without it."""


class MedicalSourceUnavailable(MedicalSourceError, Unavailable):
    def __init__(self) -> None:
        super().__init__(
            "medical_source_unavailable",
            "The medical information source cannot be reached right now; "
            "continue with the card face and what the patient or family say.",
            "医療情報（救急用サマリー）を取得できませんでした。" + _NEXT_STEP_JA,
        )


class MedicalRecordUnreadable(MedicalSourceError, UpstreamUnreadable):
    def __init__(self) -> None:
        super().__init__(
            "medical_record_unreadable",
            "The patient's medical record could not be read; "
            "continue with the card face and what the patient or family say.",
            "この方の医療情報を読み取れませんでした。" + _NEXT_STEP_JA,
        )
