"""The doctor's card, in a real browser (Debian's Chromium): a case with every field the
crew records arrives sealed through the real platform, and every value is on the card at
1280×800 and at 800×1280, the answer buttons on the first screen without scrolling.
A second case without a card shows the estimated age and sex and the heard allergy; the
five source words are distinct; a new case raises a banner and a tone (muted per user);
a declined case collapses. Screenshots go to the test's tmp directory."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from hospital.casefile import read_case
from sync.fhir_case import build_case_bundle
from sync.vocabulary import SOURCE_LABELS
from tests.hospital._world import PASSWORD, full_record, platform, totp_now
from tests.hospital.test_browser import browser  # noqa: F401  (the fixture)

JST = timezone(timedelta(hours=9))
LAYOUTS = {"wall": (1280, 800), "tablet": (800, 1280)}


def hhmm(moment: datetime) -> str:
    return moment.astimezone(JST).strftime("%H:%M")


def age_on(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def test_five_source_words_are_distinct() -> None:
    words = [w.ja for w in SOURCE_LABELS.values()]
    assert len(set(words)) == 5
    now = datetime.now(UTC)
    seen = {}
    for status in ("found", "unavailable", "no_card"):
        record = full_record("c", "d", now, card=False)
        from dataclasses import replace

        bundle = build_case_bundle(replace(record, summary_status=status, heard={}))
        seen[status] = read_case("c", bundle).source("allergies")
    assert seen == {"found": "記録なし", "unavailable": "サマリー取得不可", "no_card": "カードなし"}


@pytest.mark.slow
def test_every_field_on_the_card_in_both_layouts(tmp_path: Path, browser: Any) -> None:  # noqa: F811
    shots = tmp_path / "screenshots"
    shots.mkdir()
    now = datetime.now(UTC)
    with platform(tmp_path) as p:
        site = p.new_hospital(tmp_path, "テスト中央病院", 35.685, 139.77)
        secret = p.add_user(site, "alice")
        p.start(site)
        device = p.new_device()
        record = full_record("x", device.id, now, card=True)
        nocard = full_record("y", device.id, now, card=False)

        page = browser.new_page(viewport={"width": 1280, "height": 800}, locale="ja-JP")
        page.goto(site.url + "/")
        page.fill("#username", "alice")
        page.fill("#password", PASSWORD)
        page.fill("#totp", totp_now(secret))
        page.click("#sign-in")
        page.wait_for_selector("#live-state[data-state='live']")

        # A new case while the list is open: a banner and a tone.
        case_n = device.send([site.id], bundle=build_case_bundle(nocard), case_id="case-nocard")
        page.locator(f"[data-case-id='{case_n}']").wait_for(timeout=10_000)
        page.locator("#alert").wait_for(state="visible", timeout=5_000)
        assert "新着" in (page.locator("#alert").text_content() or "")
        assert page.evaluate("document.body.dataset.tones") == "1"
        # alice mutes: the next case shows the banner, without a tone.
        page.click("#mute")
        assert page.locator("#mute").get_attribute("aria-pressed") == "true"
        case_id = device.send([site.id], bundle=build_case_bundle(record), case_id="case-full")
        card = page.locator(f"[data-case-id='{case_id}']")
        card.wait_for(timeout=10_000)
        page.locator("#alert").wait_for(state="visible", timeout=5_000)
        assert page.evaluate("document.body.dataset.tones") == "1"
        assert page.evaluate("localStorage.getItem('kyukyu.mute.alice')") == "1"

        for name, (width, height) in LAYOUTS.items():
            page.set_viewport_size({"width": width, "height": height})
            page.goto(site.url + "/")
            card = page.locator(f"[data-case-id='{case_id}']")
            card.wait_for(timeout=10_000)
            assert page.evaluate("window.scrollY") == 0
            # The answer: 受入可 and every decline reason on the first screen.
            for button in card.locator("form.answer button").all():
                box = button.bounding_box()
                assert box is not None
                assert box["y"] >= 0
                assert box["y"] + box["height"] <= height, (name, button.text_content())
                assert box["x"] + box["width"] <= width, (name, button.text_content())
            page.screenshot(path=str(shots / f"{name}-first-screen.png"))
            page.screenshot(path=str(shots / f"{name}-full.png"), full_page=True)
            check_full_card(card, record, now)

        ncard = page.locator(f"[data-case-id='{case_n}']")
        text = ncard.text_content() or ""
        assert "70歳（推定）" in text
        assert "男性（推定）" in text
        assert (
            ncard.locator("[data-list='allergies'] [data-source='heard']").text_content() == "聴取"
        )
        assert "卵（本人より）" in (ncard.locator("[data-list='allergies']").text_content() or "")
        for key in ("conditions", "medications"):
            empty = ncard.locator(f"[data-list='{key}'] [data-source='empty']")
            assert empty.text_content() == "カードなし"

        # Declined: the card collapses to one line (complaint, age, sex, badge).
        ncard.locator("button.decline").first.click()
        ncard = page.locator(f"[data-case-id='{case_n}']")
        ncard.locator("[data-status='declined']").wait_for(timeout=10_000)
        assert "done" in (ncard.get_attribute("class") or "")
        assert ncard.locator("details.body").get_attribute("open") is None
        assert not ncard.locator(".vitals").is_visible()
        page.screenshot(path=str(shots / "tablet-declined-collapsed.png"), full_page=True)
        page.close()
    for png in shots.iterdir():
        assert png.stat().st_size > 10_000, png


def check_full_card(card: Any, record: Any, now: datetime) -> None:
    """Every value of ``record`` on ``card`` (a Playwright locator)."""
    text = card.text_content() or ""
    latest, first = record.vitals[1], record.vitals[0]
    assert card.locator(".complaint .cc").text_content() == record.chief_complaint
    assert record.chief_complaint_note in text
    age = age_on(date(1948, 4, 2), now.astimezone(JST).date())
    assert card.locator(".patient .age").first.text_content() == f"{age}歳"
    assert card.locator(".patient .sex").first.text_content() == "女性"
    assert "（サマリー）" in text
    # Elapsed since 覚知 (30 minutes ago) and the ETA.
    since = card.locator(".since .val").text_content() or ""
    assert since in ("30分", "31分"), since
    assert card.locator(".eta .val").text_content() == hhmm(record.eta[0].arrival)
    assert "あと" in (card.locator(".eta .left").text_content() or "")
    # The latest set's tiles, abnormal values of the latest set marked.
    tiles = {t.get_attribute("data-vital"): t for t in card.locator(".vitals > div").all()}

    def tile(key: str) -> str:
        return tiles[key].text_content() or ""

    assert "178/96" in tile("bp")
    assert "62" in tile("pulse")
    assert "20" in tile("respiration")
    assert "95" in tile("spo2")
    assert "O2 4L/分" in tile("spo2")
    assert "36.9" in tile("temperature")
    assert "II-10" in tile("jcs")
    assert "◆異常" in tile("jcs")
    assert "13" in tile("gcs")
    assert "E3V4M6" in tile("gcs")
    assert "3.0/3.5" in tile("pupil_l")
    assert "迅速/迅速" in tile("pupil_l")
    assert "洞調律" in tile("ecg")
    assert "138" in tile("glucose")
    assert "CPSS 1/3" in tile("cpss")
    assert "◆異常" in tile("cpss")
    assert "abnormal" not in (tiles["pulse"].get_attribute("class") or "")
    # The trend: both sets with their times, the first one's abnormal values marked.
    rows = card.locator("tr.vset").all()
    assert len(rows) == 2
    newest, oldest = (r.text_content() or "" for r in rows)
    assert f"2回目 {latest.observed_at.astimezone(JST):%m/%d %H:%M}" in newest
    assert f"1回目 {first.observed_at.astimezone(JST):%m/%d %H:%M}" in oldest
    for value in (
        "210/120◆",
        "48◆",
        "24",
        "88 室内気◆",
        "37.2",
        "II-30-RI◆",
        "10 E2V3M5",
        "3.0/5.0 迅速/緩慢 瞳孔不同◆",
        "心房細動",
        "142",
        "CPSS 2/3◆",
    ):
        assert value in oldest, value
    # The lists, each with its source word.
    allergies = card.locator("[data-list='allergies']")
    assert allergies.locator("[data-source='summary']").text_content() == "サマリー"
    assert allergies.locator("[data-source='heard']").text_content() == "聴取"
    assert "ペニシリン系" in (allergies.text_content() or "")
    assert "そば（家族より）" in (allergies.text_content() or "")
    conditions = card.locator("[data-list='conditions']").text_content() or ""
    assert "2型糖尿病" in conditions
    assert "高血圧（本人より）" in conditions
    meds = card.locator("[data-list='medications'] [data-source='empty']").text_content()
    assert meds == "記録なし"
    # Treatments with their times, the six EMS times, the crew and the callback phone.
    treatments = card.locator(".treatments").text_content() or ""
    for t in record.treatments:
        assert hhmm(t.at) in treatments
    assert "酸素投与" in treatments
    assert "4L/分" in treatments
    assert "静脈路確保" in treatments
    assert "保温" in treatments
    for attr, label in (
        ("call_received", "覚知"),
        ("arrived_scene", "現着"),
        ("patient_contact", "接触"),
        ("in_ambulance", "車内収容"),
        ("departed_scene", "現発"),
        ("arrived_hospital", "病着"),
    ):
        cell = card.locator(f"[data-time='{attr}']").text_content() or ""
        assert cell == label + hhmm(getattr(record.times, attr)), cell
    crew = card.locator(".crew").text_content() or ""
    assert "中央救急1" in crew
    assert "隊長 消防 太郎" in crew
    assert "救急救命士 救命 次郎" in crew
    assert "090-1234-5678" in crew
    assert "口頭同意あり" in text
    assert "顔写真で確認" in text
