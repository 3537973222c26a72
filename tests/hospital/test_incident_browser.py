"""多数傷病者 end to end (docs/mass-casualty.md): a real hub under uvicorn, three hospitals'
real services and dashboards in Debian's Chromium, two devices' case flows.

One device declares an incident; the three hospitals of its region get the alert on their
dashboards (banner and tone) and a fourth hospital in another region does not; each
answers its capacities (赤/黄/緑) in the browser; two devices register six tags and assign
them within those capacities, each tag's case going through the device's ordinary outbox;
the boards reach both devices on their streams; each hospital sees exactly its own
patients' cases and tags, its capacity counted down to zero; the close's tally is right;
and a byte search of the platform's database finds none of what the crews noted.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, cast

import pytest

from edge.flow import CaseFlow, DeviceIdentity, IncidentDesk
from sync.client import PlatformClient
from sync.incident import TagPatient
from sync.outbox import Outbox
from tests.hospital._world import (
    PASSWORD,
    SCENE,
    Device,
    HospitalSite,
    Platform,
    cli,
    platform,
    totp_now,
    wait_for,
)
from tests.hospital.test_browser import BROWSER_ARGS

REGION, FAR = "JP-36", "JP-99"
#: What the crews note of the patients: sealed only, never in the platform's database.
NOTED = ["骨盤骨折QZX", "顔面挫創QZX", "熱傷QZX", "胸部打撲QZX", "足関節捻挫QZX", "頭部打撲QZX"]
#: hospital index -> (赤, 黄, 緑) it declares.
CAPS = [(1, 1, 0), (1, 0, 1), (0, 1, 1)]
#: tag, category, hospital index, device index
PLAN = [
    ("T-101", "red", 0, 0),
    ("T-102", "red", 1, 1),
    ("T-103", "yellow", 0, 0),
    ("T-104", "yellow", 2, 1),
    ("T-105", "green", 1, 0),
    ("T-106", "green", 2, 1),
]


def _hospital(p: Platform, tmp: Path, name: str, region: str) -> HospitalSite:
    token = p.operator.request_json(
        "POST", "/v1/hospital-enrollment-tokens", body={"name": name, "region": region}
    )["token"]
    data_dir = tmp / f"hospital-{uuid.uuid4().hex[:6]}"
    doc = cli(
        "hospital", "init", "--data-dir", str(data_dir), "--platform", p.url,
        "--token", token, "--lat", "35.69", "--lon", "139.77",
    )  # fmt: skip
    return HospitalSite(doc["hospital_id"], doc["name"], data_dir)


def _device(p: Platform) -> Device:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    token = p.operator.request_json(
        "POST", "/v1/enrollment-tokens", body={"fire_department": "徳島消防", "region": REGION}
    )["token"]
    key = Ed25519PrivateKey.generate()
    client = PlatformClient(p.url, key=key, hub_public_key=p.hub.state.hub_key.public_key)
    p.stack.callback(client.close)
    return Device(client, key, client.enroll(token, "救急隊"))


def _flow(p: Platform, device: Device, data_dir: Path) -> CaseFlow:
    outbox = Outbox(data_dir / "outbox.sqlite3")
    flow = CaseFlow(
        cards=None,
        card_reading=cast(Any, None),  # no card in this test: tags are registered without
        platform=device.client,
        outbox=outbox,
        device=DeviceIdentity(device.id, device.key, "救急隊", "徳島消防"),
        base=SCENE,
        closers=[outbox.close],
        directory=device.client.hospital_directory(*SCENE),
    )
    p.stack.callback(flow.close)
    flow.start()
    return flow


def _sign_in(browser: Any, site: HospitalSite) -> Any:
    page = browser.new_page(viewport={"width": 1300, "height": 900}, locale="ja-JP")
    page.goto(site.url + "/login")
    page.fill("#username", "staff")
    page.fill("#password", PASSWORD)
    page.fill("#totp", totp_now(site.users["staff"]))
    page.click("#sign-in")
    page.wait_for_selector("#cases")
    page.wait_for_selector("#live-state[data-state='live']")
    return page


@pytest.mark.slow
def test_incident_from_declaration_to_tally(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with platform(tmp_path) as p, sync_playwright() as pw:
        for code in (REGION, FAR):
            p.operator.request("PUT", f"/v1/regions/{code}", body={"name": code, "neighbours": []})
        sites = [_hospital(p, tmp_path, f"病院{n}", REGION) for n in "ABC"]
        far = _hospital(p, tmp_path, "遠方病院", FAR)
        for site in sites:
            p.add_user(site, "staff")
            p.start(site)
        devices = [_device(p) for _ in range(2)]
        flows = [_flow(p, d, tmp_path / f"dev{i}") for i, d in enumerate(devices)]
        desks = [IncidentDesk(f) for f in flows]
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=BROWSER_ARGS
        )
        try:
            pages = [_sign_in(browser, s) for s in sites]
            _run(p, sites, far, devices, flows, desks, pages, tmp_path)
        finally:
            browser.close()


def _run(
    p: Platform,
    sites: list[HospitalSite],
    far: HospitalSite,
    devices: list[Device],
    flows: list[CaseFlow],
    desks: list[IncidentDesk],
    pages: list[Any],
    tmp: Path,
) -> None:
    board = desks[0].declare("国道192号 トンネル内", "交通事故", 12)
    incident = board["incident_id"]
    assert {h["hospital_id"] for h in board["hospitals"]} == {s.id for s in sites}
    # One alert on every dashboard of the region, with its tone.
    for page in pages:
        page.wait_for_selector("#alert[data-kind='incident']:not([hidden])")
        assert "多数傷病者事案が発生しました" in page.locator("#alert").text_content()
        assert int(page.evaluate("document.body.dataset.tones || '0'")) >= 1
    # The far region's hospital was not alerted.
    with p.hub.state.session() as s:
        from sqlmodel import select

        from hub_server.models import Event

        alerted = {e.recipient for e in s.exec(select(Event).where(Event.kind == "incident"))}
    assert alerted == {f"hospital:{x.id}" for x in sites}
    assert f"hospital:{far.id}" not in alerted

    # Each hospital answers in its browser.
    for page, (red, yellow, green) in zip(pages, CAPS, strict=True):
        page.click("#alert")  # the alert leads to the form
        section = page.locator(f"#incident-{incident}")
        section.wait_for()
        assert section.locator(".cat-red .cap").text_content() == "未回答"
        for code, n in (("red", red), ("yellow", yellow), ("green", green)):
            section.locator(f"input[name='{code}']").fill(str(n))
        section.locator(".answer-capacity").click()
        page.wait_for_selector(f"#incident-{incident} .cat-red .cap:text-is('{red}')")
        assert section.locator(".cat-green .left").text_content() == str(green)

    desks[1].join(incident)
    wait_for(
        lambda: all(h["answered"] for h in (desks[1].board or {}).get("hospitals", [])),
        what="the capacities on the second device's board",
    )
    case_of: dict[str, str] = {}
    for i, (tag, cat, h, d) in enumerate(PLAN):
        patient = TagPatient(tag, cat, "40代", "female" if i % 2 else "male", NOTED[i])
        desks[d].register(patient)
        case_of[tag] = desks[d].assign(patient, sites[h].id)
    # A seventh red patient: every declared 赤 is taken, the platform refuses.
    extra = TagPatient("T-107", "red", "20代", "male", "QZX")
    desks[0].register(extra)
    from sync import PlatformError

    with pytest.raises(PlatformError) as refused:
        desks[0].assign(extra, sites[0].id)
    assert getattr(refused.value, "hub_code", "") == "capacity_exhausted"

    # Both devices' boards (pushed on their streams) show every assignment.
    def assigned(desk: IncidentDesk) -> list[tuple[str, str]]:
        return sorted(
            (q["tag"], q["hospital_id"])
            for q in (desk.board or {}).get("patients", [])
            if q["hospital_id"]
        )

    want = sorted((tag, sites[h].id) for tag, _, h, _ in PLAN)
    for desk in desks:
        wait_for(lambda desk=desk: assigned(desk) == want, what="the board on both devices")
    for row in (desks[0].board or {})["hospitals"]:
        assert set(row["left"].values()) == {0}  # counted down to nothing

    # Every case left the outboxes (the ordinary path), and each hospital has its own.
    for flow in flows:
        wait_for(lambda flow=flow: flow._outbox.pending_count() == 0, what="outbox drained")
    for idx, (site, page) in enumerate(zip(sites, pages, strict=True)):
        mine = {case_of[tag] for tag, _, h, _ in PLAN if h == idx}
        runtime = site.runtime
        assert runtime is not None
        wait_for(
            lambda runtime=runtime, mine=mine: {c.case_id for c in runtime.store.cases()} == mine,
            what="the hospital's own cases",
        )
        page.reload()
        section = page.locator(f"#incident-{incident}")
        tags = sorted(section.locator("li.tag").evaluate_all("els => els.map(e => e.dataset.tag)"))
        assert tags == sorted(tag for tag, _, h, _ in PLAN if h == idx)
        for code in ("red", "yellow", "green"):
            assert section.locator(f".cat-{code} .left").text_content() == "0"
        page.goto(site.url + "/")
        page.wait_for_selector("#cases article[data-case-id]")
        shown = set(
            page.locator("#cases article[data-case-id]").evaluate_all(
                "els => els.map(e => e.dataset.caseId)"
            )
        )
        assert shown == mine
        assert NOTED[next(i for i, x in enumerate(PLAN) if x[2] == idx)] in page.content()
    pages[0].screenshot(path=str(tmp / "incident-hospital.png"))

    closed = desks[1].close()
    tally = {t["hospital_id"]: (t["red"], t["yellow"], t["green"]) for t in closed["tally"]}
    assert tally == {s.id: c for s, c in zip(sites, CAPS, strict=True)}
    for page in pages:
        page.wait_for_selector("#alert[data-kind='incident']:not([hidden])")
        page.wait_for_function("document.getElementById('alert').textContent.includes('終了')")

    # The byte search of the platform's database (SQLite: the file and its WAL).
    p.hub.state.engine.dispose()
    db = Path(str(p.hub.state.engine.url.database))
    haystack = b"".join(x.read_bytes() for x in (db, Path(f"{db}-wal")) if x.exists())
    assert b"T-101" in haystack  # tags are held in clear: the search does find things
    assert "国道192号".encode() in haystack
    for noted in [*NOTED, "40代", "20代"]:
        assert noted.encode() not in haystack, noted
