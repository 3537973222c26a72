"""Mass-casualty incidents at the platform (SQLite and PostgreSQL): a declaration alerts
the hospitals of the region and its neighbours (one stored ``incident`` event each) and no
other; capacities bound the assignments (within them: the hospital's acceptance,
``declared_capacity``); the board is pushed to the region's device streams; a hospital
sees only its own tags; the close gives the tally; the operator sees incidents and
tallies; and a byte search of the whole database finds none of the patients' data, which
travelled only inside their sealed cases."""

from __future__ import annotations

import contextlib
import io
import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, text
from sqlmodel import select

from hub_server.models import AuditEntry, Event, IncidentPatient
from kyukyu.cli import main as kyukyu_main
from sync.fhir_case import DeviceInfo, build_case_bundle
from sync.incident import TagPatient, tag_case_record
from sync.seal import seal_json
from tests.hub_server._support import (
    Hub,
    enroll_device_in,
    named_events,
    put_region,
    register_hospital_in,
    until,
)

pytestmark = pytest.mark.anyio

#: What the crews note of the patients: none of it may reach the platform in clear.
SECRETS = ["右大腿骨開放骨折ZQX", "左前腕挫創ZQX", "推定 70代", "女性ZQX"]


async def test_incident_alerts_bounds_tallies_and_keeps_no_patient_data(
    hub: Hub, db_url: str
) -> None:
    await put_region(hub, "A", ["B"])
    await put_region(hub, "B", [])
    await put_region(hub, "C", [])
    hospitals = [
        await register_hospital_in(hub, n, r) for n, r in (("甲", "A"), ("乙", "A"), ("丙", "B"))
    ]
    _h_c, hosp_c, _ = await register_hospital_in(hub, "丁", "C")
    dev1, dev2 = await enroll_device_in(hub, "A"), await enroll_device_in(hub, "A")
    dev_c = await enroll_device_in(hub, "C")

    path = "/v1/devices/me/events"
    ctx = hub.client.stream("GET", path, headers=dev2.headers("GET", path, b""))
    stream = await ctx.__aenter__()
    try:
        await until(lambda: hub.state.bus.topic_streams() == 1, "device stream")
        r = await hub.call(
            dev1,
            "POST",
            "/v1/incidents",
            {"place": "国道2号", "kind": "交通事故", "estimated_count": 8},
        )
        assert r.status_code == 201, r.text
        inc = r.json()["incident_id"]
        assert {h["hospital_id"] for h in r.json()["hospitals"]} == {h[0] for h in hospitals}
        # A device of a region that does not see A's hospitals cannot act on it.
        r = await hub.call(dev_c, "GET", f"/v1/incidents/{inc}")
        assert r.status_code == 404
        assert (await named_events(stream, "incident", 1))[0]["incident_id"] == inc
        # One stored alert per hospital of A and its neighbour B, none to C.
        with hub.state.session() as s:
            alerts = s.exec(select(Event).where(Event.kind == "incident")).all()
        assert sorted(e.recipient for e in alerts) == sorted(f"hospital:{h[0]}" for h in hospitals)
        r = await hub.call(hosp_c, "GET", "/v1/hospitals/me/incidents")
        assert r.json() == []

        caps = [(1, 1, 0), (1, 0, 1), (0, 1, 1)]
        for (_, signer, _), (red, yellow, green) in zip(hospitals, caps, strict=True):
            r = await hub.call(
                signer,
                "POST",
                f"/v1/hospitals/me/incidents/{inc}/capacity",
                {"red": red, "yellow": yellow, "green": green},
            )
            assert r.status_code == 200, r.text
        # Six patients, by two devices, within the capacities.
        plan = [
            ("T-001", "red", 0, dev1),
            ("T-002", "red", 1, dev2),
            ("T-003", "yellow", 0, dev1),
            ("T-004", "yellow", 2, dev2),
            ("T-005", "green", 1, dev1),
            ("T-006", "green", 2, dev2),
        ]
        for i, (tag, cat, h, dev) in enumerate(plan):
            r = await hub.call(
                dev, "POST", f"/v1/incidents/{inc}/patients", {"tag": tag, "category": cat}
            )
            assert r.status_code == 200, r.text
            hid, _, hpke = hospitals[h]
            case_id = f"case-mci{i}"
            r = await hub.call(
                dev,
                "POST",
                f"/v1/incidents/{inc}/patients/{tag}/assignment",
                {"hospital_id": hid, "case_id": case_id},
            )
            assert r.status_code == 200, r.text
            row = next(x for x in r.json()["hospitals"] if x["hospital_id"] == hid)
            assert row["left"][cat] == caps[h][("red", "yellow", "green").index(cat)] - 1
            record = tag_case_record(
                TagPatient(tag, cat, "70代", "female", SECRETS[i % 2] + SECRETS[3]),
                case_id=case_id,
                incident=r.json(),
                device=DeviceInfo(dev.key_id.split(":")[1], "救急", "テスト消防"),
                crew=(),
                now=datetime.now(UTC),
            )
            sealed = seal_json(
                build_case_bundle(record),
                case_id=case_id,
                device_id=dev.key_id.split(":")[1],
                device_key=dev.key,
                recipients={hid: hpke.public_key()},
            )
            r = await hub.post_case(dev, [hid], case_id=case_id, envelope=sealed)
            assert r.status_code == 201, r.text
        # The board went out on the stream as it changed: the last one counts it all.
        last = (await named_events(stream, "incident", 15))[-1]
        assert sorted(p["tag"] for p in last["patients"] if p["hospital_id"]) == [
            p[0] for p in plan
        ]
    finally:
        await ctx.__aexit__(None, None, None)

    # Capacity used up: refused, typed; an unanswered category likewise.
    await hub.call(
        dev1, "POST", f"/v1/incidents/{inc}/patients", {"tag": "T-007", "category": "red"}
    )
    for hid in (hospitals[0][0], hospitals[2][0]):
        r = await hub.call(
            dev1,
            "POST",
            f"/v1/incidents/{inc}/patients/T-007/assignment",
            {"hospital_id": hid, "case_id": "case-mci7"},
        )
        assert r.status_code == 409
        assert r.json()["error"]["code"] == "capacity_exhausted", r.text
    # Each hospital sees its own tags only.
    for idx, (_, signer, _) in enumerate(hospitals):
        r = await hub.call(signer, "GET", "/v1/hospitals/me/incidents")
        (view,) = r.json()
        assert sorted(p["tag"] for p in view["patients"]) == sorted(
            p[0] for p in plan if p[2] == idx
        )
        assert all(v == 0 for v in view["left"].values())
    # Recorded as the hospital's acceptance.
    with hub.state.session() as s:
        rows = s.exec(select(IncidentPatient).where(IncidentPatient.hospital_id.is_not(None))).all()  # type: ignore[union-attr]
        assert {p.acceptance for p in rows} == {"declared_capacity"}

    r = await hub.call(dev2, "POST", f"/v1/incidents/{inc}/close")
    assert r.status_code == 200, r.text
    tally = {t["hospital_id"]: (t["red"], t["yellow"], t["green"]) for t in r.json()["tally"]}
    assert tally == {h[0]: c for h, c in zip(hospitals, caps, strict=True)}
    r = await hub.call(
        dev1, "POST", f"/v1/incidents/{inc}/patients", {"tag": "T-9", "category": "red"}
    )
    assert r.json()["error"]["code"] == "incident_closed"
    r = await hub.call(hub.operator, "GET", "/v1/incidents")
    (seen,) = r.json()
    assert seen["closed_at"]
    assert "patients" not in seen
    assert len(seen["tally"]) == 3
    assert "T-001" not in r.text
    with hub.state.session() as s:
        actions = [a.action for a in s.exec(select(AuditEntry)).all()]
    for action in (
        "incident_declared",
        "incident_capacity",
        "incident_tag",
        "incident_assigned",
        "incident_closed",
    ):
        assert action in actions

    # The operator's command: the same incidents and tallies, JSON lines.
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert kyukyu_main(["hub", "incidents", "--db", db_url]) == 0
    (line,) = [json.loads(x) for x in out.getvalue().splitlines()]
    assert line["incident_id"] == inc
    assert {t["hospital_id"]: (t["red"], t["yellow"], t["green"]) for t in line["tally"]} == tally

    # The byte search: none of what the crews noted is anywhere in the database.
    haystack = _database_bytes(hub, db_url)
    assert b"T-001" in haystack
    assert "国道2号".encode() in haystack
    for secret in SECRETS:
        assert secret.encode() not in haystack, secret


def _database_bytes(hub: Hub, db_url: str) -> bytes:
    if db_url.startswith("sqlite"):
        hub.state.engine.dispose()
        path = db_url.removeprefix("sqlite:///")
        data = b""
        for suffix in ("", "-wal"):
            try:
                with open(path + suffix, "rb") as f:
                    data += f.read()
            except FileNotFoundError:
                pass
        return data
    # PostgreSQL: every column of every table as text.
    out = []
    with hub.state.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f'SELECT CAST(t AS text) FROM "{table}" t')):
                out.append(row[0])
    return "\n".join(out).encode()
