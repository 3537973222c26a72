"""The route a case took, on the hospitals screen (docs/disaster.md): 直接送信 beside where
the case stands when it went straight to the hospital, the platform's words unchanged on
the rows, and one line above them naming the route (プラットフォーム経由 / 直接送信)."""

from __future__ import annotations

from edge.flow import ROUTE_TEXT, HospitalRow
from edge.ui.screens.hospitals import answer_text, route_line


def row(**kw: object) -> HospitalRow:
    return HospitalRow(**{"id": "h1", "name": "中央病院", "distance_km": 1.0, "sent": True, **kw})  # type: ignore[arg-type]


def test_the_direct_route_is_named_on_the_row() -> None:
    assert answer_text(row(delivery="received", route="direct"), "ja") == (
        "病院に到着・直接送信",
        "waiting direct",
    )
    text, cls = answer_text(row(answer="decline", reason="満床", route="direct"), "ja")
    assert text == "受入不可（満床）・直接送信"
    assert "direct" in cls
    assert answer_text(row(answer="accept", route="direct"), "en")[0] == "Accepts · Sent directly"


def test_the_platform_route_reads_as_before() -> None:
    assert answer_text(row(delivery="sent", route="platform"), "ja") == ("送信済み", "waiting")
    assert ROUTE_TEXT["platform"].ja == "プラットフォーム経由"
    assert ROUTE_TEXT["direct"].ja == "直接送信"


def test_one_line_names_the_route_the_case_took() -> None:
    queued = row(delivery="queued")
    via_platform = row(delivery="sent", route="platform")
    direct = row(delivery="received", route="direct")
    assert route_line([queued, row(sent=False)], "ja") == ""
    assert route_line([via_platform, queued], "ja") == "送信経路: プラットフォーム経由"
    assert route_line([direct], "ja") == "送信経路: 直接送信（プラットフォームに接続できません）"
    assert route_line([direct, via_platform, direct], "ja") == (
        "送信経路: プラットフォーム経由・直接送信 2病院"
    )
    assert route_line([via_platform], "en") == "Route: via the platform"
    # Once the platform has the case (reconciled), it is not said to be unreachable.
    reconciled = row(delivery="received", route="direct", on_platform=True)
    assert route_line([reconciled], "ja") == "送信経路: 直接送信"
    assert route_line([reconciled], "en") == "Route: sent directly"
    assert route_line([reconciled, direct], "ja") == (
        "送信経路: 直接送信（プラットフォームに接続できません）"
    )


def test_a_hospital_that_did_not_get_it_directly_does_not_say_so() -> None:
    """Each row says its own route: one hospital got it directly, the other still waits."""
    got = row(delivery="received", route="direct")
    waits = row(id="h2", delivery="queued", route=None)
    assert answer_text(got, "ja")[0] == "病院に到着・直接送信"
    assert "直接送信" not in answer_text(waits, "ja")[0]
    assert (
        route_line([got, waits], "ja") == "送信経路: 直接送信（プラットフォームに接続できません）"
    )


def test_phone_only_reads_yodenwa() -> None:
    """要電話: the platform takes post-quantum cases only and the hospital has no hybrid key."""
    assert answer_text(row(sent=False, phone_only=True), "ja") == ("要電話", "phone-only")
    assert answer_text(row(sent=False, phone_only=True), "en")[0] == "Phone only"
