"""The hospital's 応需状況, end to end: real hub and hospital service under uvicorn.

- The dashboard's panel in Debian's Chromium: staff tap 脳神経外科 不可; the panel shows
  it with who changed it; the device's own event stream gets the push, and its catch-up
  (``GET /v1/availability``) has it.
- The local API of a bed-management system: a staff session with its CSRF token, the
  bearer token; a wrong token, no CSRF token and an unknown item are refused with typed
  errors, and change nothing.
- ``kyukyu hospital availability set/show`` through the same service's data directory.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sync.client import AVAILABILITY
from tests.hospital._world import (
    PASSWORD,
    Device,
    HospitalSite,
    cli,
    platform,
    signed_in,
    totp_now,
)
from tests.hospital.test_browser import BROWSER_ARGS

API_TOKEN = "bed-management-token-0123456789"


def _items(device: Device, hospital_id: str) -> dict[str, Any]:
    """The hospital's items as the device's catch-up reads them ({} if not there)."""
    docs = device.client.availability(0)["hospitals"]
    doc = next((d for d in docs if d["hospital_id"] == hospital_id), None)
    return doc["items"] if doc else {}


class _Pushes:
    """The device's own stream, collecting ``event: availability`` documents."""

    def __init__(self) -> None:
        self.docs: list[dict[str, Any]] = []
        self.got = threading.Condition()

    def wait(self, hospital_id: str, code: str, status: str, timeout: float = 15) -> None:
        def seen() -> bool:
            return any(
                d.get("hospital_id") == hospital_id
                and d.get("items", {}).get(code, {}).get("status") == status
                for d in self.docs
            )

        with self.got:
            assert self.got.wait_for(seen, timeout), f"{code} {status} not pushed"


@contextlib.contextmanager
def pushes_to(device: Device) -> Iterator[_Pushes]:
    """Follows the device's stream for the block (ended before the platform stops)."""
    pushes = _Pushes()
    stop = threading.Event()

    def follow() -> None:
        for ev in device.client.device_events(0, stop):
            if ev.kind == AVAILABILITY:
                with pushes.got:
                    pushes.docs.append(ev.data)
                    pushes.got.notify_all()

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    try:
        yield pushes
    finally:
        stop.set()
        thread.join(10)  # the stream's next keep-alive (0.5 s) lets it see ``stop``


@pytest.mark.slow
def test_staff_tap_reaches_the_device(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with platform(tmp_path) as p, sync_playwright() as pw:
        site = p.start(p.new_hospital(tmp_path, "テスト中央病院", 35.685, 139.77))
        secret = p.add_user(site, "alice")
        device = p.new_device()
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=BROWSER_ARGS
        )
        try:
            with pushes_to(device) as pushes:
                _tap_and_watch(browser, site, secret, device, pushes, tmp_path)
        finally:
            browser.close()


def _tap_and_watch(
    browser: Any, site: HospitalSite, secret: str, device: Device, pushes: _Pushes, tmp: Path
) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="ja-JP")
    page.goto(site.url + "/login")
    page.fill("#username", "alice")
    page.fill("#password", PASSWORD)
    page.fill("#totp", totp_now(secret))
    page.click("#sign-in")
    page.wait_for_selector("#cases")
    page.click("#availability-link")  # the list's link 応需状況
    row = page.locator("#item-neurosurgery")
    row.wait_for()
    assert row.get_attribute("data-status") == "unknown"  # never set: 不明
    assert row.locator(".status").text_content() == "不明"
    assert page.locator("#availability-history").count() == 0

    page.click("#set-neurosurgery-unavailable")  # one tap
    page.wait_for_selector("#item-neurosurgery[data-status='unavailable']")
    assert row.locator(".status").text_content() == "不可"
    change = page.locator("#availability-history tr.change").first
    assert "alice" in (change.text_content() or "")
    assert "脳神経外科" in (change.text_content() or "")
    page.screenshot(path=str(tmp / "availability-panel.png"))

    pushes.wait(site.id, "neurosurgery", "unavailable")  # on the device's stream
    items = _items(device, site.id)  # and in its catch-up
    assert items["neurosurgery"]["status"] == "unavailable"
    assert set(items) == {"neurosurgery"}  # one tap, one item

    page.click("#set-neurosurgery-available")
    page.wait_for_selector("#item-neurosurgery[data-status='available']")
    pushes.wait(site.id, "neurosurgery", "available")
    assert page.locator("#availability-history tr.change").count() == 2


def _csrf(c: httpx.Client) -> str:
    session = c.get("/api/session").json()
    assert session["signed_in"] is True
    return str(session["csrf"])


def test_local_api_and_cli_go_through_the_platform(tmp_path: Path) -> None:
    with platform(tmp_path) as p:
        site: HospitalSite = p.new_hospital(tmp_path, "テスト中央病院", 35.685, 139.77)
        p.add_user(site, "alice")
        p.start(site, availability_api_token=API_TOKEN)
        device = p.new_device()
        api = "/api/availability"

        with httpx.Client(base_url=site.url, timeout=10) as anon:
            body = {"items": [{"code": "ct", "status": "unavailable", "hours": 2}]}
            r = anon.post(api, json=body)  # neither session nor token
            assert r.status_code == 401
            assert r.json()["error"]["code"] == "not_signed_in"
            wrong = {"Authorization": "Bearer " + "x" * len(API_TOKEN)}
            r = anon.post(api, json=body, headers=wrong)
            assert r.status_code == 401
            assert r.json()["error"]["code"] == "not_signed_in"
            assert "message_ja" in r.json()["error"]
            assert "ct" not in _items(device, site.id)  # refused: nothing reached the platform

            bearer = {"Authorization": f"Bearer {API_TOKEN}"}
            r = anon.post(api, json=body, headers=bearer)
            assert r.status_code == 200, r.text
            assert r.json()["items"]["ct"]["status"] == "unavailable"
            bad = {"items": [{"code": "no_such_item", "status": "available"}]}
            r = anon.post(api, json=bad, headers=bearer)
            assert r.status_code == 422
            assert r.json()["error"]["code"] == "availability_invalid"
        assert _items(device, site.id)["ct"]["status"] == "unavailable"

        with signed_in(site, "alice") as c:
            change = {"items": [{"code": "mri", "status": "consult", "note": "夜間は要電話"}]}
            r = c.post(api, json=change)  # a session without its CSRF token
            assert r.status_code == 401
            r = c.post(api, json=change, headers={"X-CSRF-Token": "0" * 32})
            assert r.status_code == 401
            r = c.post(api, json=change, headers={"X-CSRF-Token": _csrf(c)})
            assert r.status_code == 200, r.text
        mri = _items(device, site.id)["mri"]
        assert mri["status"] == "consult"
        assert mri["note"] == "夜間は要電話"

        # The CLI, against the same data directory while the service runs.
        where = ("--data-dir", str(site.data_dir))
        doc = cli(
            "hospital", "availability", "set", "icu", "available", "--count", "3",
            "--hours", "4", "--by", "bed-system", *where,
        )  # fmt: skip
        assert doc["items"]["icu"] == {**doc["items"]["icu"], "status": "available", "count": 3}
        assert _items(device, site.id)["icu"]["count"] == 3
        rc = _cli_rc("hospital", "availability", "set", "icu", "available", "--count", "x")
        assert rc == 2  # argparse: not a number
        rc = _cli_rc("hospital", "availability", "set", "no_such_item", "available", *where)
        assert rc != 0

        lines = _cli_lines("hospital", "availability", "show", *where)
        platform_doc = lines[0]["platform"]
        assert set(platform_doc["items"]) == {"ct", "mri", "icu"}
        changes = [(c["by"], c["code"], c["status"]) for c in lines[1:]]
        assert changes == [  # newest first: who changed what
            ("bed-system", "icu", "available"),
            ("alice", "mri", "consult"),
            ("api", "ct", "unavailable"),
        ]


def _cli_rc(*args: str) -> int:
    """The command's exit status (argparse's refusal included), its output dropped."""
    import contextlib
    import io

    from kyukyu.cli import main as kyukyu_main

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            return kyukyu_main(list(args))
        except SystemExit as exc:
            return int(exc.code or 0)


def _cli_lines(*args: str) -> list[dict[str, Any]]:
    import contextlib
    import io

    from kyukyu.cli import main as kyukyu_main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert kyukyu_main(list(args)) == 0
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
