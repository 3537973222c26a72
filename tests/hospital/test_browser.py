"""End to end in a real browser: hub under uvicorn, two hospital services, a device.

Debian's Chromium (headless, driven by Playwright for Python) signs in with password
and TOTP, sees the sealed case arrive live (no reload), accepts it in one click;
the device sees the answer on its stream; the confirmed destination is marked live.
Screenshots go to the test's tmp directory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.hospital._world import PASSWORD, answer_seen, platform, totp_now, wait_for

BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Free text as crews type it, and as nobody should: separators, emoji, RTL marks, length.
UNICODE_TEXT = (
    "胸痛\u2028行区切り\u2029段落区切り 🚑🫀 \u200fעברית\u200e \u202eRTL override\u202c "
    + "長文" * 3000
)


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=BROWSER_ARGS
        )
        try:
            yield b
        finally:
            b.close()


@pytest.mark.slow
def test_case_to_browser_accept_to_device(tmp_path: Path, browser: Any) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with platform(tmp_path) as p:
        a = p.new_hospital(tmp_path, "テスト中央病院", 35.685, 139.77)
        b = p.new_hospital(tmp_path, "テスト第二病院", 35.69, 139.75)
        secret = p.add_user(a, "alice")
        p.add_user(b, "bob")
        p.start(a)
        p.start(b)
        device = p.new_device()

        page = browser.new_page(viewport={"width": 1600, "height": 1000}, locale="ja-JP")
        page.goto(a.url + "/")
        assert page.url.endswith("/login")  # no session: the sign-in page, nothing else
        page.fill("#username", "alice")
        page.fill("#password", PASSWORD)
        page.fill("#totp", totp_now(secret))
        page.click("#sign-in")
        page.wait_for_selector("#cases")
        page.wait_for_selector("#live-state[data-state='live']")
        page.screenshot(path=str(shots / "01-empty.png"))
        page.evaluate("window.__noReload = 'still here'")

        case_a = device.send([a.id])
        case_b = device.send([b.id], chief_complaint="腹痛")
        card = page.locator(f"[data-case-id='{case_a}']")
        card.wait_for(timeout=10_000)
        # Live: the same document, no reload.
        assert page.evaluate("window.__noReload") == "still here"
        assert card.locator(".cc").text_content() == "胸痛"
        assert card.locator("[data-status='waiting']").count() == 1
        # Out-of-range systolic (300) is flagged, not refused.
        assert card.locator(".vitals .flag").count() == 1
        assert "ペニシリン系" in (card.locator(".allergy").text_content() or "")
        assert "口頭同意あり" in (card.text_content() or "")
        assert "090-0000-2222" in (card.locator(".crew").text_content() or "")
        assert page.locator(f"[data-case-id='{case_b}']").count() == 0
        assert page.title().startswith("(1) 応答待ち")  # a tab or wall screen shows the count
        page.screenshot(path=str(shots / "02-incoming.png"), full_page=True)

        card.locator("button.accept").click()
        card.locator("[data-status='accepted']").wait_for(timeout=10_000)
        assert not page.title().startswith("(")
        seen = answer_seen(device, case_a)
        assert seen["answer"] == "accept"
        assert seen["hospital_id"] == a.id
        page.screenshot(path=str(shots / "03-accepted.png"), full_page=True)

        device.client.set_destination(case_a, a.id)
        card.locator("[data-status='destination']").wait_for(timeout=10_000)
        assert "dest" in (card.get_attribute("class") or "")
        page.screenshot(path=str(shots / "04-destination.png"), full_page=True)
        # The detail page of the case (also a view, audited).
        detail = browser.new_page(viewport={"width": 1200, "height": 900})
        detail.context.add_cookies(page.context.cookies())
        detail.goto(f"{a.url}/cases/{case_a}")
        detail.locator(f"[data-case-id='{case_a}'] [data-status='destination']").wait_for()
        detail.wait_for_timeout(500)
        assert detail.url.endswith(f"/cases/{case_a}")  # stays put (no reload loop)
        assert detail.evaluate("performance.getEntriesByType('navigation')[0].type") == "navigate"
        detail.close()

        # Free text with any Unicode arrives intact, in the browser too. Only the new
        # case's card is fetched and inserted: the cards already shown stay as they were
        # (the same elements), and the list is not fetched again.
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.evaluate(f"window.__cardA = document.querySelector(\"[data-case-id='{case_a}']\")")
        case_u = device.send([a.id], chief_complaint=UNICODE_TEXT)
        ucard = page.locator(f"[data-case-id='{case_u}']")
        ucard.wait_for(timeout=10_000)
        assert ucard.locator(".cc").text_content() == UNICODE_TEXT
        assert page.evaluate(
            f"document.querySelector(\"[data-case-id='{case_a}']\") === window.__cardA"
        )
        assert [u for u in requests if "/cases/" in u] == [f"{a.url}/cases/{case_u}/card"]
        order = page.eval_on_selector_all("#cases article", "els => els.map(e => e.dataset.caseId)")
        assert order == [case_u, case_a]  # newest first
        page.set_viewport_size({"width": 820, "height": 1180})  # a tablet
        page.screenshot(path=str(shots / "05-tablet.png"))

        # A case the receiving service refused: a banner on the list; its page says when,
        # from which device, why in words, and what to do (never any content).
        ra = a.runtime
        assert ra is not None
        ra.store.add_rejection(
            event_id=10**6, case_id=None, code="envelope_bad_signature", device_id=device.id
        )
        page.reload()
        banner = page.locator("#refused-banner")
        banner.wait_for(timeout=10_000)
        assert "受信できない事案があります（1件）" in (banner.text_content() or "")
        banner.locator("a").click()
        page.wait_for_selector("#refusals")
        refused = page.locator("tr.refusal")
        assert refused.count() == 1
        text = refused.text_content() or ""
        assert device.id in text
        assert "署名が合いません" in text
        assert "送信元の消防本部に電話で確認してください" in text
        page.screenshot(path=str(shots / "06-refused.png"), full_page=True)

        # The second hospital never got the first one's case; it got its own.
        rb = b.runtime
        assert rb is not None
        wait_for(lambda: rb.store.case(case_b), what="B's own case")
        assert rb.store.case(case_a) is None
        assert rb.store.case(case_u) is None
        assert rb.store.rejections() == []

        # A purge (retention) announced live: the purged cards leave the list.
        page.goto(a.url + "/")
        page.wait_for_selector("#live-state[data-state='live']")
        assert page.locator("#cases article").count() == 2
        assert ra.store.purge(0) == 2
        ra.service.news.publish(json.dumps({"kind": "purge", "case_id": None}))
        page.locator("#empty").wait_for(timeout=10_000)
        assert page.locator("#cases article").count() == 0
        page.close()
    for name in (
        "01-empty",
        "02-incoming",
        "03-accepted",
        "04-destination",
        "05-tablet",
        "06-refused",
    ):
        assert (shots / f"{name}.png").stat().st_size > 10_000
