"""A real terminal: hub, a virtual card on pcscd/vpcd and ``kyukyu edge`` inside tmux;
a full case by mouse and keys, the screen read with capture-pane; with a bad setting the
screen says so and quitting exits 0."""

from __future__ import annotations

import os
import re
import shlex
import sys
import time
from pathlib import Path

from edge.card_sim import VirtualCard, VpcdFrontEnd
from tests._process import cli_env
from tests.components import Pcscd
from tests.edge._world import World, newest_case_id, wait_until, write_device_config
from tests.ui._terminal import Tmux, cells


def press_pad_key(term: Tmux, key: str) -> None:
    """A finger on one key of the number pad: the row whose only words are pad keys (in
    a dialog's frame or not)."""
    time.sleep(0.3)
    lines = term.screen().splitlines()
    for y in reversed(range(len(lines))):
        line = lines[y]
        words = [w for w in line.split() if w not in "┃│"]  # a dialog's frame is not a key
        if len(words) >= 2 and all(w in "0123456789⌫" and len(w) == 1 for w in words):
            m = re.search(rf"(?<!\S){re.escape(key)}(?!\S)", line)
            if m is not None:
                term.click(cells(line[: m.start()]), y)
                return
    raise AssertionError(f"pad key {key!r} is not on the screen:\n{term.screen()}")


def test_collation_b_error_in_tmux(pcscd: Pcscd, world: World, tmp_path: Path) -> None:
    """A wrong 照合番号B says 照合番号B (not 暗証番号), the tries left and what to check."""
    data = tmp_path / "device"
    config = write_device_config(world, data, reader_name=pcscd.readers[0])
    term = Tmux(tmp_path)
    env = {"LANG": "C.UTF-8", "TERM": "xterm-256color", "PATH": os.environ.get("PATH", "")}
    image = world.patient()
    good = image.collation_b
    wrong = good[:-4] + ("0000" if good[-4:] != "0000" else "1111")
    front = VpcdFrontEnd(VirtualCard(image), port=pcscd.ports[0])
    try:
        term.start([sys.executable, "-m", "kyukyu", "edge", "--config", str(config)], env)
        term.wait_for("カードをタッチしてください")
        front.start()  # the tap
        term.wait_for("同意の確認")
        term.click_text("口頭同意あり")
        term.wait_for("照合番号B（券面の数字）で確認")
        term.click_text("照合番号B（券面の数字）で確認")
        screen = term.wait_for("西暦から和暦に変換")
        assert "和暦6桁" in screen
        for d in wrong:
            press_pad_key(term, d)
        term.wait_for(wrong)
        term.click_text("確定")
        screen = term.wait_for("照合番号Bが違います。残り9回です。")
        (tmp_path / "collation-b-screen.txt").write_text(screen)
        assert "暗証番号" not in screen
        assert "（残り9回）" in screen
    finally:
        term.kill()
        front.stop()
    # One try of 照合番号B's own counter was spent; the PIN's were not touched.
    assert image.tries["text_collation_b"] == 9
    assert image.tries["text_pin"] == 3
    assert image.tries["auth_pin"] == 3


def test_full_case_in_tmux(pcscd: Pcscd, world: World, tmp_path: Path) -> None:
    data = tmp_path / "device"
    config = write_device_config(world, data, reader_name=pcscd.readers[0])
    term = Tmux(tmp_path)
    env = {"LANG": "C.UTF-8", "TERM": "xterm-256color", "PATH": os.environ.get("PATH", "")}
    front = VpcdFrontEnd(VirtualCard(world.patient()), port=pcscd.ports[0])
    try:
        term.start([sys.executable, "-m", "kyukyu", "edge", "--config", str(config)], env)
        term.wait_for("カードをタッチしてください")
        term.key("F2")  # trainers' English
        term.wait_for("Tap the card or phone")
        term.key("F2")
        term.wait_for("カードをタッチしてください")

        front.start()  # the tap
        term.wait_for("同意の確認")
        term.click_text("口頭同意あり")
        term.wait_for("顔写真で本人確認済み")
        term.click_text("顔写真で本人確認済み")
        screen = term.wait_for("アレルギー・副作用")
        (tmp_path / "summary-screen.txt").write_text(screen)
        assert "口頭同意あり" in screen

        term.click_text("主訴・バイタルへ")
        term.wait_for("主訴・バイタル")
        term.click_text("胸痛")
        term.wait_for("✓ 胸痛")
        term.click_text("病院選択へ")
        term.wait_for("病院選択")
        term.click_text("テスト駅前クリニック")  # the nearest
        term.wait_for("選択した1病院へ一斉送信")
        term.click_text("一斉送信")
        term.wait_for("送信済み")  # the platform answered 201
        case_id = wait_until(lambda: newest_case_id(world), what="the case at the hub")
        nearest = next(h for h in world.hospitals if h.name == "テスト駅前クリニック")
        with world.hospital_client(nearest) as c:
            c.answer(case_id, "accept")
        term.wait_for("受入可")
        term.click_text("搬送先に決定")
        term.wait_for("搬送先決定")
        term.click_text("事案終了")
        screen = term.wait_for("消去しました")
        assert "アレルギー" not in screen
        assert "胸痛" not in screen
        # The card was left on the reader: standby says so (it is not read again) ...
        term.wait_for("前の事案のカードがリーダーに置かれたままです")
        front.remove()
        # ... until it is taken away.
        deadline = time.monotonic() + 15
        while "置かれたまま" in term.screen():
            assert time.monotonic() < deadline, "the card-left line stayed after removal"
            time.sleep(0.1)
        assert "カードをタッチしてください" in term.screen()
    finally:
        term.kill()
        front.stop()
    image = world.patient()
    for f in data.rglob("*"):
        if f.is_file():
            blob = f.read_bytes()
            assert image.holder.name.encode() not in blob
            assert image.holder.address.encode() not in blob


def test_declined_hospital_refused_then_phone_in_tmux(world: World, tmp_path: Path) -> None:
    """One row of the intents matrix in a real terminal: no card (a reader that is not
    there), send, the hospital declines (満床): the row says so, 搬送先に決定 is not
    offered, and only the 「電話で受入確認済み」 step chooses it."""
    from hub_server.models import Case

    data = tmp_path / "device"
    config = write_device_config(world, data, reader_name="kyukyu-test-no-such-reader")
    term = Tmux(tmp_path)
    env = {"LANG": "C.UTF-8", "TERM": "xterm-256color", "PATH": os.environ.get("PATH", "")}
    try:
        term.start([sys.executable, "-m", "kyukyu", "edge", "--config", str(config)], env)
        term.wait_for("カードをタッチしてください")  # the flow is open (not 起動中…)
        term.click_text("カードなしで開始")
        term.wait_for("主訴・バイタル")
        term.click_text("病院選択へ")
        term.wait_for("病院選択")
        before = newest_case_id(world)
        term.click_text("テスト駅前クリニック")
        term.wait_for("選択した1病院へ一斉送信")
        term.click_text("一斉送信")
        term.wait_for("送信済み")  # the platform answered 201
        case_id = wait_until(
            lambda: (c := newest_case_id(world)) != before and c, what="the case at the hub"
        )
        nearest = next(h for h in world.hospitals if h.name == "テスト駅前クリニック")
        with world.hospital_client(nearest) as c:
            c.answer(case_id, "decline", "満床")
        screen = term.wait_for("受入不可（満床）")
        assert "搬送先に決定" not in screen
        term.click_text("電話で受入確認済み")
        term.wait_for("電話で受入を確認しましたか？")
        term.click_text("戻る")
        screen = term.wait_for("病院選択 — 近い順")
        with world.state.session() as s:
            assert s.get(Case, case_id).destination_hospital_id is None  # type: ignore[union-attr]
        term.click_text("電話で受入確認済み")
        term.wait_for("電話で受入を確認しましたか？")
        term.click_text("はい、電話で確認済み")
        term.wait_for("病院へ通知済み")
        with world.state.session() as s:
            assert s.get(Case, case_id).destination_hospital_id == nearest.id  # type: ignore[union-attr]
        term.click_text("事案終了")
        # Back at standby (its notice soon says the reader is missing: there is none here).
        screen = term.wait_for("カードをタッチしてください")
        assert "テスト駅前クリニック" not in screen
    finally:
        term.kill()


def test_bad_settings_open_the_screen_and_quit_with_0(tmp_path: Path) -> None:
    """``kyukyu edge`` with a bad setting in a real terminal: the screen says 設定に誤り and
    stays; quitting (Ctrl-Q) exits 0; the one stderr line says its English once."""
    config = tmp_path / "edge.env"
    config.write_text(
        f"KYUKYU_EDGE_DATA_DIR={tmp_path / 'data'}\nKYUKYU_EDGE_BASE_LAT='north'\n",
        encoding="utf-8",
    )
    edge = shlex.join([sys.executable, "-m", "kyukyu", "edge", "--config", str(config)])
    term = Tmux(tmp_path)
    env = {
        k: v
        for k, v in cli_env(tmp_path).items()
        if k in ("PATH", "PYTHONPATH", "KYUKYU_EDGE_CONFIG")
    }
    env |= {"LANG": "C.UTF-8", "TERM": "xterm-256color"}
    try:
        term.start(["sh", "-c", f"{edge}; echo exit=$?; sleep 120"], env)
        term.wait_for("マイナ救急：設定に誤り", 60)
        term.wait_for("KYUKYU_EDGE_BASE_LAT")
        term.wait_for("不可 settings", 60)  # kyukyu doctor's line
        term.key("C-q")
        screen = term.wait_for("exit=0", 30)
        assert screen.count("The device settings are invalid") == 1
    finally:
        term.kill()


def test_bad_web_port_opens_the_settings_screen(tmp_path: Path) -> None:
    """``KYUKYU_EDGE_WEB_PORT=abc`` is a bad setting like any other: the screen says
    設定に誤り and names it (the command line does not refuse it first)."""
    config = tmp_path / "edge.env"
    config.write_text(f"KYUKYU_EDGE_DATA_DIR={tmp_path / 'data'}\n", encoding="utf-8")
    edge = shlex.join([sys.executable, "-m", "kyukyu", "edge", "--config", str(config)])
    term = Tmux(tmp_path)
    env = {k: v for k, v in cli_env(tmp_path).items() if k in ("PATH", "PYTHONPATH")}
    env |= {"LANG": "C.UTF-8", "TERM": "xterm-256color", "KYUKYU_EDGE_WEB_PORT": "abc"}
    try:
        term.start(["sh", "-c", f"{edge}; echo exit=$?; sleep 120"], env)
        term.wait_for("マイナ救急：設定に誤り", 60)
        term.wait_for("KYUKYU_EDGE_WEB_PORT")
        term.key("C-q")
        term.wait_for("exit=0", 30)
    finally:
        term.kill()


def test_two_vital_sets_listed_on_screen_at_100x30(world: World, tmp_path: Path) -> None:
    """At 100×30 the 主訴 grid and the tiles fill the body: after two sets are keyed,
    both sets' lines (number, time, values) are on the terminal without scrolling."""
    config = write_device_config(
        world, tmp_path / "device", reader_name="kyukyu-test-no-such-reader"
    )
    term = Tmux(tmp_path, size=(100, 30))
    env = {"LANG": "C.UTF-8", "TERM": "xterm-256color", "PATH": os.environ.get("PATH", "")}
    try:
        term.start([sys.executable, "-m", "kyukyu", "edge", "--config", str(config)], env)
        term.wait_for("カードをタッチしてください")
        term.click_text("カードなしで開始")
        term.wait_for("主訴・バイタル")
        for pulse, listed in (("88", "1回目"), ("120", "2回目")):
            if listed == "2回目":
                term.click_text("＋新しい測定")
                term.wait_for("2回目")
            term.click_text("脈拍")
            term.wait_for("取消")  # the pad is open
            for digit in pulse:
                press_pad_key(term, digit)
            term.click_text("OK")
            term.wait_for(f"P {pulse}")
        screen = term.wait_for("1回目")
        (tmp_path / "vitals-screen.txt").write_text(screen)
        second = re.search(r"▶ 2回目 (\d\d:\d\d)  P 120", screen)
        first = re.search(r"  1回目 (\d\d:\d\d)  P 88", screen)
        assert second is not None, screen
        assert first is not None, screen
        assert screen.index("2回目 ") < screen.index("1回目 ")  # newest first
        assert "＋新しい測定" in screen  # the tiles are still there above the list
    finally:
        term.kill()
