"""The dashboard's JSON API (a staff bot answers without reading HTML), its live notices,
its single cards and its static files: real hub and hospital under uvicorn, real HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.hospital._world import PASSWORD, answer_seen, platform, totp_now, wait_for


def _listed(c: httpx.Client, case_id: str) -> dict[str, Any] | None:
    listing = c.get("/api/cases")
    assert listing.status_code == 200
    return next((i for i in listing.json()["cases"] if i["case_id"] == case_id), None)


def test_a_bot_signs_in_lists_and_answers_over_the_api(tmp_path: Path) -> None:
    with platform(tmp_path) as p:
        site = p.new_hospital(tmp_path, "テスト中央病院", 35.685, 139.77)
        secret = p.add_user(site, "bot")
        p.start(site)
        rt = site.runtime
        assert rt is not None
        device = p.new_device()
        with httpx.Client(base_url=site.url, timeout=10) as c:
            # Signed out: the API is 401 (JSON, not a redirect), the probe gives a sign-in token.
            assert c.get("/api/cases").json()["error"]["code"] == "not_signed_in"
            r = c.post("/api/cases/x/answer", json={"answer": "accept"})
            assert r.status_code == 401
            probe = c.get("/api/session").json()
            assert probe["signed_in"] is False
            r = c.post(
                "/login",
                data={
                    "username": "bot",
                    "password": PASSWORD,
                    "totp": totp_now(secret),
                    "csrf": probe["login_csrf"],
                },
            )
            assert r.status_code == 303, r.text
            session = c.get("/api/session").json()
            assert session["signed_in"] is True
            assert session["username"] == "bot"
            csrf = {"X-CSRF-Token": session["csrf"]}

            case_id = device.send([site.id])
            item = wait_for(lambda: _listed(c, case_id), what="the case on /api/cases")
            assert item["state"] == "waiting"
            assert item["answer"] is None
            listing = c.get("/api/cases").text
            assert "胸痛" not in listing  # ids and states only: nothing of the case
            assert "ペニシリン" not in listing

            # The card alone: the same version as the list says, and a view, audited.
            card = c.get(f"/cases/{case_id}/card")
            assert card.status_code == 200
            assert f'data-version="{item["version"]}"' in card.text
            assert "胸痛" in card.text
            assert [a.case_id for a in rt.store.audit_rows("case_viewed")] == [case_id]
            assert c.get("/cases/nope/card").status_code == 404

            # Refusals, each typed, each with its Japanese message; nothing sent.
            url = f"/api/cases/{case_id}/answer"
            cases: list[tuple[dict[str, Any], Any, int, str]] = [
                ({}, {"answer": "accept"}, 403, "csrf"),
                ({"X-CSRF-Token": "wrong"}, {"answer": "accept"}, 403, "csrf"),
                ({"X-CSRF-Token": "ｗｒｏｎｇ".encode()}, {"answer": "accept"}, 403, "csrf"),
                (csrf, {"answer": "maybe"}, 422, "answer_required"),
                (csrf, {"answer": "decline"}, 422, "reason_required"),
                (csrf, {"answer": "decline", "reason": "眠い"}, 422, "reason_required"),
                (csrf, ["accept"], 422, "bad_body"),
            ]
            for headers, body, status, code in cases:
                r = c.post(url, json=body, headers=headers)
                assert r.status_code == status, (body, r.text)
                assert r.json()["error"]["code"] == code
                assert r.json()["error"]["message_ja"]
            r = c.post(url, content=b"\xff{", headers={**csrf, "Content-Type": "application/json"})
            assert r.json()["error"]["code"] == "bad_body"
            r = c.post("/api/cases/nope/answer", json={"answer": "accept"}, headers=csrf)
            assert (r.status_code, r.json()["error"]["code"]) == (404, "unknown_case")
            assert len(rt.store.audit_rows("csrf_refused")) == 3
            assert rt.store.audit_rows("case_answered") == []

            # The answer: through the platform to the device, recorded and audited as bot's.
            r = c.post(url, json={"answer": "decline", "reason": "満床"}, headers=csrf)
            assert r.status_code == 200, r.text
            assert r.json() == {
                "ok": True,
                "case_id": case_id,
                "answer": "decline",
                "reason": "満床",
            }
            seen = answer_seen(device, case_id)
            assert (seen["answer"], seen["reason"]) == ("decline", "満床")
            [audit] = rt.store.audit_rows("case_answered")
            assert (audit.actor, audit.case_id, audit.detail) == ("bot", case_id, "decline:満床")
            after = _listed(c, case_id)
            assert after is not None
            assert (after["state"], after["reason"]) == ("declined", "満床")
            assert after["version"] != item["version"]


def test_live_notices_name_the_case_and_static_files(tmp_path: Path) -> None:
    with platform(tmp_path) as p:
        site = p.new_hospital(tmp_path, "テスト中央病院", 35.685, 139.77)
        secret = p.add_user(site, "alice")
        p.start(site)
        device = p.new_device()
        with httpx.Client(base_url=site.url, timeout=10) as c:
            js = c.get("/static/app.js")
            assert js.status_code == 200
            assert js.headers["content-type"].startswith("text/javascript")
            assert js.headers["cache-control"] == "max-age=300"
            assert "frame-ancestors 'none'" in js.headers["content-security-policy"]
            css = c.get("/static/app.css")
            assert css.headers["content-type"].startswith("text/css")
            assert c.get("/static/nope.js").status_code == 404
            assert c.get("/static/").status_code == 404

            token = c.get("/api/session").json()["login_csrf"]
            c.post(
                "/login",
                data={
                    "username": "alice",
                    "password": PASSWORD,
                    "totp": totp_now(secret),
                    "csrf": token,
                },
            )
            with c.stream("GET", "/live") as live:
                assert live.status_code == 200
                assert live.headers["content-type"].startswith("text/event-stream")
                assert live.headers["cache-control"] == "no-store"
                lines = live.iter_lines()
                assert next(lines) == "retry: 1000"
                case_id = device.send([site.id])
                event, notice = None, None
                for line in lines:
                    if line.startswith("event: "):
                        event = line.removeprefix("event: ")
                    elif line.startswith("data: "):
                        assert event == "cases"
                        notice = json.loads(line.removeprefix("data: "))
                        break
                assert notice == {"kind": "case", "case_id": case_id}
