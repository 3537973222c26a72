"""``kyukyu demo``: the README's main job, end to end through the real components."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.components import Pcscd


def test_demo_runs_the_whole_flow(pcscd: Pcscd, tmp_path: Path) -> None:
    work = tmp_path / "demo"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "kyukyu",
            "demo",
            "--headless",
            "--json",
            "--workdir",
            str(work),
            "--patients",
            "50",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["card"]["trusted"] is True
    assert report["card"]["attributes_integrity"] is True
    assert report["summary"]["status"] == "found"
    assert sorted(report["answers"].values()) == ["accept", "decline"]
    assert all(n == 1 for n in report["hospitals_received"].values())
    assert report["outbox_pending"] == 0
    assert "Traceback" not in proc.stderr

    # The device keeps nothing readable about the patient; the output shows no identity.
    from edge.card_sim import CardImage

    (card_file,) = (work / "cards").glob("*.json")
    holder = CardImage.load(card_file).holder
    for f in (work / "device").iterdir():
        blob = f.read_bytes()
        assert holder.name.encode() not in blob
        assert holder.address.encode() not in blob
    assert holder.name not in proc.stdout + proc.stderr
    assert holder.address not in proc.stdout + proc.stderr


def test_demo_case_accepted_by_signed_in_staff_on_a_dashboard(pcscd: Pcscd, tmp_path: Path) -> None:
    """The way the README says: start the demo, sign in to a printed dashboard with the
    printed account, see the tapped card's case there, accept it; the ambulance sees it."""
    import queue
    import re
    import threading
    import time

    cmd = [sys.executable, "-m", "kyukyu", "demo", "--headless", "--json"]
    cmd += ["--wait-for-staff", "45", "--workdir", str(tmp_path / "demo"), "--patients", "50"]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    seen: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()

    def until(pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                assert proc.poll() is None, "\n".join(seen)
                continue
            seen.append(line)
            if m := re.search(pattern, line):
                return m
        raise AssertionError(f"no {pattern!r} in:\n" + "\n".join(seen))

    try:
        sites = []
        for _ in range(2):
            name = until(r"^  (\S.*/ .*)$").group(1)
            url = until(r"dashboard: (http://127\.0\.0\.1:\d+)/").group(1)
            m = until(r"user: (\S+)  password: (\S+)  totp_secret: ([A-Z2-7]+)")
            sites.append((name, url, m.group(1), m.group(2), m.group(3)))
        until(r"救急用サマリー")
        summary = until(r"アレルギー・副作用: \d+, 傷病名: \d+").group(0)
        assert summary
        until(r"accept the case on a dashboard")

        name, url, user, password, secret = sites[1]
        case_id = accept_on_dashboard(url, user, password, secret)
        until(re.escape(f"the ambulance sees: {name}: 受入可"), 30)
        until(re.escape(f"destination: {name}"), 10)
        report = json.loads(until(r"^\{.*\}$", 30).group(0))
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert report["case_id"] == case_id
    assert report["answers"] == {name: "accept"}
    assert report["destination"] == name
    assert report["outbox_pending"] == 0
    assert all(n == 1 for n in report["hospitals_received"].values())


def accept_on_dashboard(url: str, user: str, password: str, secret: str) -> str:
    """Sign in like the login form (a current TOTP code), find the new case on the
    dashboard, check the crew's chief complaint on its page, accept it; its id."""
    import re

    import httpx
    import pyotp

    with httpx.Client(base_url=url, timeout=10) as c:
        login = c.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', login.text)
        assert csrf
        r = c.post(
            "/login",
            data={
                "username": user,
                "password": password,
                "totp": pyotp.TOTP(secret).now(),
                "csrf": csrf.group(1),
            },
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
        found = None
        for _ in range(100):
            board = c.get("/")
            assert board.status_code == 200
            found = re.search(r'href="/cases/(case-[0-9a-f]+)"', board.text)
            if found:
                break
            time.sleep(0.1)
        assert found, board.text
        case_id = found.group(1)
        page = c.get(f"/cases/{case_id}")
        assert "胸痛" in page.text  # the chief complaint the crew entered
        form_csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert form_csrf
        r = c.post(
            f"/cases/{case_id}/answer",
            data={"csrf": form_csrf.group(1), "answer": "accept"},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
        return case_id


def test_demo_interactive_in_a_terminal(pcscd: Pcscd, tmp_path: Path) -> None:
    """`kyukyu demo` in a real terminal (tmux): the first card is on the reader, the crew
    goes to the summary and sends; a person signs in with the printed account (the
    terminal screen covers it: demo.txt keeps it) and accepts; the screen shows it."""
    import os
    import re

    from tests.ui._terminal import Tmux

    work = tmp_path / "demo"
    term = Tmux(tmp_path, size=(110, 32))
    env = {"LANG": "C.UTF-8", "TERM": "xterm-256color", "PATH": os.environ.get("PATH", "")}
    cmd = [sys.executable, "-m", "kyukyu", "demo", "--workdir", str(work), "--patients", "30"]
    try:
        term.start(cmd, env)
        term.wait_for("press Enter to open the paramedic screen", 60)
        notes = (work / "demo.txt").read_text(encoding="utf-8")
        assert "kyukyu demo tap --workdir" in notes
        term.key("Enter")
        term.wait_for("同意の確認", 30)  # the first card was read from the virtual reader
        term.click_text("口頭同意あり")
        term.wait_for("顔写真で本人確認済み")
        term.click_text("顔写真で本人確認済み")
        term.wait_for("アレルギー・副作用")  # the summary
        term.click_text("主訴・バイタルへ")
        term.wait_for("主訴・バイタル")
        term.click_text("胸痛")
        term.wait_for("✓ 胸痛")
        term.click_text("病院選択へ")
        term.wait_for("デモ救命救急センター")
        term.click_text("デモ救命救急センター")
        term.wait_for("選択した1病院へ一斉送信")
        term.click_text("一斉送信")
        term.wait_for("送信済み")  # the platform answered 201

        blocks = notes.split("デモ救命救急センター / Demo Emergency Center")[1]
        url = re.search(r"dashboard: (http://127\.0\.0\.1:\d+)/", blocks)
        acct = re.search(r"user: (\S+)  password: (\S+)  totp_secret: ([A-Z2-7]+)", blocks)
        assert url, notes
        assert acct, notes
        accept_on_dashboard(url.group(1), acct.group(1), acct.group(2), acct.group(3))
        term.wait_for("受入可", 20)  # the ambulance sees the answer
        term.click_text("搬送先に決定")
        term.wait_for("搬送先決定")
    finally:
        term.kill()


def test_demo_web_serves_the_paramedic_screen(pcscd: Pcscd, tmp_path: Path) -> None:
    """`kyukyu demo --web --port N` prints what to open, and that address serves the screen."""
    import socket

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "kyukyu", "demo", "--web", "--port", str(port)]
    cmd += ["--workdir", str(tmp_path / "demo"), "--patients", "30"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        out = []
        for line in proc.stdout:
            out.append(line)
            if "the paramedic screen: open" in line:
                break
        assert f"open http://127.0.0.1:{port}/" in "".join(out), "".join(out)
        page = None
        for _ in range(100):
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert page is not None
        assert page.status_code == 200
        assert "マイナ救急" in page.text
        assert "dashboard: http://127.0.0.1:" in "".join(out)
    finally:
        proc.terminate()
        proc.wait(20)


def test_the_demo_device_seals_a_case_offline_from_boot(tmp_path: Path) -> None:
    """The demo's device has the hub-signed hospital directory stored as a provisioned one
    has it (``refresh_device``): with the platform unreachable from boot, a case is sealed
    for the hospitals of that directory and waits, shown as waiting, never as sent."""
    import asyncio
    import socket

    from edge.flow import Stage, open_flow
    from edge.flow._texts import QUEUED_OFFLINE, SENT
    from edge.settings import load_device_settings
    from edge.ui import make_app
    from kyukyu._demo import demo_world, write_device_config
    from tests.ui._pilot import PANEL, wait_text

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        unreachable = f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens there
    with demo_world(tmp_path / "demo", say=lambda _line: None, patients=20) as world:
        config = write_device_config(world)
        stored = load_device_settings(config)
        assert stored.directory_path.is_file()
        assert stored.revocation_path.is_file()
        # The platform cut from the start: the device never reached it in this process.
        settings = load_device_settings(config, hub_url=unreachable)
        flow = open_flow(settings, cards=None)
        flow.start()
        app = make_app(settings, flow=flow, watch_cards=False)

        async def run() -> None:
            async with app.run_test(size=PANEL) as pilot:
                flow.start_without_card()
                flow.set_chief_complaint("胸痛")
                flow.to_hospitals()
                v = flow.view()
                assert v.stage is Stage.HOSPITALS
                assert sorted(h.name for h in v.hospitals) == sorted(
                    h.name for h in world.hospitals
                )
                for row in v.hospitals:
                    flow.toggle_hospital(row.id)
                flow.send_selected()
                v = flow.view()
                assert v.waiting_sealed == 1
                assert v.notice is not None
                assert v.notice.text == QUEUED_OFFLINE
                assert all(row.answer is None for row in v.hospitals)
                await wait_text(pilot, app, QUEUED_OFFLINE.ja)  # type: ignore[arg-type]
                assert SENT.ja not in str(app.screen.query_one("#notice").render())

        try:
            asyncio.run(run())
        finally:
            flow.close()
        assert [h.received() for h in world.hospitals] == [0, 0]
