"""応需状況 and regions at the platform, on SQLite and PostgreSQL: a hospital's change is
stored, audited and pushed to the device streams of its region and of the regions that
list it as a neighbour, not to others; the catch-up answers what a device sees; the
directory is scoped the same way; nonsense is refused with a typed 422."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from hub_server.models import AuditEntry
from tests.hub_server._support import (
    Hub,
    enroll_device_in,
    named_events,
    put_region,
    register_hospital_in,
    until,
)

pytestmark = pytest.mark.anyio


def _later(hours: float = 4) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


async def test_a_change_reaches_its_regions_streams_only(hub: Hub) -> None:
    await put_region(hub, "A", ["B"])  # A's devices also see B's hospitals
    await put_region(hub, "B", [])
    await put_region(hub, "C", [])
    h_a, hosp_a, _ = await register_hospital_in(hub, "A病院", "A")
    h_c, hosp_c, _ = await register_hospital_in(hub, "C病院", "C")
    dev_a, dev_b, dev_c, dev_none = [await enroll_device_in(hub, r) for r in ("A", "B", "C", None)]

    # The directory is scoped like the availability.
    r = await hub.call(dev_c, "GET", "/v1/hospitals/directory?lat=35.6&lon=139.7")
    assert [h["id"] for h in r.json()["directory"]["hospitals"]] == [h_c]
    assert r.json()["directory"]["hospitals"][0]["region"] == "C"

    path = "/v1/devices/me/events"
    streams = {}
    for name, dev in (("a", dev_a), ("c", dev_c), ("none", dev_none)):
        ctx = hub.client.stream("GET", path, headers=dev.headers("GET", path, b""))
        streams[name] = (ctx, await ctx.__aenter__())
    try:
        await until(lambda: hub.state.bus.topic_streams() == 3, "three device streams")
        change = {
            "items": [
                {
                    "code": "neurosurgery",
                    "status": "unavailable",
                    "note": "手術中",
                    "expires_at": _later(),
                }
            ]
        }
        r = await hub.call(hosp_a, "POST", "/v1/hospitals/me/availability", change)
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["items"]["neurosurgery"]["status"] == "unavailable"
        r = await hub.call(
            hosp_c,
            "POST",
            "/v1/hospitals/me/availability",
            {"items": [{"code": "ct", "status": "available", "expires_at": _later()}]},
        )
        assert r.status_code == 200, r.text

        (got_a,) = await named_events(streams["a"][1], "availability", 1)
        assert got_a["hospital_id"] == h_a
        assert got_a["version"] == doc["version"]
        assert got_a["items"]["neurosurgery"]["note"] == "手術中"
        # C's stream hears C's change first: A's was never pushed to it.
        (got_c,) = await named_events(streams["c"][1], "availability", 1)
        assert got_c["hospital_id"] == h_c
        # A device with no region hears every hospital's change, in order.
        got_none = await named_events(streams["none"][1], "availability", 2)
        assert [d["hospital_id"] for d in got_none] == [h_a, h_c]
    finally:
        for ctx, _ in streams.values():
            await ctx.__aexit__(None, None, None)

    # Catch-up: what each device sees since version 0.
    r = await hub.call(dev_a, "GET", "/v1/availability?after=0")
    assert [d["hospital_id"] for d in r.json()["hospitals"]] == [h_a]
    assert r.json()["version"] >= doc["version"]
    r = await hub.call(dev_b, "GET", "/v1/availability?after=0")
    assert r.json()["hospitals"] == []  # B does not list A
    await put_region(hub, "B", ["A"])
    r = await hub.call(dev_b, "GET", "/v1/availability?after=0")
    assert [d["hospital_id"] for d in r.json()["hospitals"]] == [h_a]
    r = await hub.call(dev_a, "GET", f"/v1/availability?after={doc['version']}")
    assert r.json()["hospitals"] == []
    # The operator's regional view: every hospital, with names.
    r = await hub.call(hub.operator, "GET", "/v1/availability?region=C")
    assert [(d["name"], d["items"]["ct"]["status"]) for d in r.json()["hospitals"]] == [
        ("C病院", "available")
    ]
    with hub.state.session() as s:
        rows = s.exec(select(AuditEntry).where(AuditEntry.action == "availability_set")).all()
    assert len(rows) == 2
    assert "手術中" not in "".join(r.details for r in rows)


@pytest.mark.parametrize(
    ("item", "code"),
    [
        (
            {"code": "neurosurgery", "status": "available", "expires_at": "2020-01-01T00:00:00Z"},
            "bad_availability_expiry",
        ),
        ({"code": "neurosurgery", "status": "available"}, "bad_availability_expiry"),
        (
            {"code": "neurosurgery", "status": "available", "expires_at": "2999-01-01T00:00:00Z"},
            "bad_availability_expiry",
        ),
        (
            {"code": "dentistry", "status": "available", "expires_at": "LATER"},
            "unknown_availability_item",
        ),
        (
            {"code": "neurosurgery", "status": "available", "expires_at": "LATER", "count": 3},
            "count_not_allowed",
        ),
        ({"code": "neurosurgery", "status": "maybe", "expires_at": "LATER"}, "invalid_request"),
    ],
)
async def test_nonsense_is_refused(hub: Hub, item: dict[str, Any], code: str) -> None:
    _, hosp = await hub.register_hospital()
    item = {k: (_later() if v == "LATER" else v) for k, v in item.items()}
    r = await hub.call(hosp, "POST", "/v1/hospitals/me/availability", {"items": [item]})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == code
    r = await hub.call(hosp, "GET", "/v1/hospitals/me/availability")
    assert r.json()["version"] == 0
    assert r.json()["items"] == {}


async def test_regions_must_exist_and_only_operators_set_them(hub: Hub) -> None:
    dev = await enroll_device_in(hub, None)
    r = await hub.call(dev, "PUT", "/v1/regions/X", {"name": "X"})
    assert r.status_code == 403
    r = await hub.call(
        hub.operator, "POST", "/v1/enrollment-tokens", {"fire_department": "f", "region": "nowhere"}
    )
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "unknown_region"
    r = await hub.call(hub.operator, "PUT", "/v1/regions/X", {"name": "X", "neighbours": ["X"]})
    assert r.status_code == 422


def _cli(*args: str) -> tuple[int, list[str], str]:
    """``kyukyu`` in this process: (exit status, stdout lines, stderr)."""
    import contextlib
    import io

    from kyukyu.cli import main as kyukyu_main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = kyukyu_main(list(args))
        except SystemExit as exc:
            rc = int(exc.code or 0)
    return rc, out.getvalue().splitlines(), err.getvalue()


async def test_operator_sets_and_lists_regions_from_the_command_line(hub: Hub) -> None:
    db = ("--db", str(hub.state.settings.db_url))
    rc, out, err = _cli("hub", "region", "set", "JP-34", "--name", "広島県", *db)
    assert rc == 0, err
    rc, out, err = _cli(
        "hub", "region", "set", "JP-35", "--name", "山口県", "--neighbour", "JP-34",
        "--direct-route", *db,
    )  # fmt: skip
    assert rc == 0, err
    assert json.loads(out[-1]) == {
        "code": "JP-35",
        "name": "山口県",
        "neighbours": ["JP-34"],
        "direct_route": True,  # opted in to the disaster route (docs/disaster.md)
    }
    rc, out, err = _cli("hub", "region", "list", *db)
    assert rc == 0, err
    assert [json.loads(line) for line in out] == [
        {"code": "JP-34", "name": "広島県", "neighbours": [], "direct_route": False},
        {"code": "JP-35", "name": "山口県", "neighbours": ["JP-34"], "direct_route": True},
    ]
    # The platform's own view is the same, and the change is audited as the CLI's.
    r = await hub.call(hub.operator, "GET", "/v1/regions")
    assert [(x["code"], x["neighbours"]) for x in r.json()] == [("JP-34", []), ("JP-35", ["JP-34"])]
    with hub.state.session() as s:
        rows = s.exec(select(AuditEntry).where(AuditEntry.action == "region_set")).all()
        assert [(a.actor, a.subject) for a in rows] == [
            ("cli", "region:JP-34"),
            ("cli", "region:JP-35"),
        ]
    # A device enrolled into JP-35 reads its own region's and its neighbour's.
    dev = await enroll_device_in(hub, "JP-35")
    r = await hub.call(dev, "GET", "/v1/availability")
    assert r.json()["regions"] == ["JP-34", "JP-35"]

    # Refusals are typed and change nothing.
    rc, _, err = _cli("hub", "region", "set", "JP-35", "--name", "x", "--neighbour", "JP-35", *db)
    assert (rc, err.split(":")[0]) == (1, "region_self_neighbour")
    rc, _, err = _cli("hub", "region", "set", "県/34", "--name", "x", *db)
    assert (rc, err.split(":")[0]) == (1, "invalid_region_code")
    rc, _, err = _cli("hub", "region", "set", "JP-36", "--name", "", *db)
    assert (rc, err.split(":")[0]) == (2, "invalid_region")
    rc, out, _ = _cli("hub", "region", "list", *db)
    assert [json.loads(line)["name"] for line in out] == ["広島県", "山口県"]
