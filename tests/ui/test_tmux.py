"""A real terminal: hub, a virtual card on pcscd/vpcd and ``kyukyu edge`` inside tmux;
a full case by mouse and keys, the screen read with capture-pane; with a bad setting the
screen says so and quitting exits 0."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from edge.card_sim import VirtualCard, VpcdFrontEnd
from tests._process import cli_env
from tests.components import Pcscd
from tests.edge._world import World, newest_case_id, wait_until, write_device_config
from tests.ui._terminal import Tmux


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
        term.wait_for("応答待ち")
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
    finally:
        term.kill()
        front.stop()
    image = world.patient()
    for f in data.rglob("*"):
        if f.is_file():
            blob = f.read_bytes()
            assert image.holder.name.encode() not in blob
            assert image.holder.address.encode() not in blob


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
