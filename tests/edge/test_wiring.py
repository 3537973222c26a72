"""``open_flow(settings)``: the device's own parts from its settings file; the hub-signed
directory stored at provisioning lets a case go to the hospitals with no network."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from edge.card_sim import VirtualCard
from edge.flow import Stage, open_flow
from edge.settings import load_device_settings
from tests.edge._world import SCENE, TapReader, World, write_device_config


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def _store_directory(world: World, path: Path, *, tamper: bool = False) -> None:
    with world.platform() as client:
        doc = client.http.request_json(
            "GET", "/v1/hospitals/directory", params={"lat": SCENE[0], "lon": SCENE[1]}
        )
    if tamper:
        doc["directory"]["hospitals"][0]["name"] = "偽病院"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")


def test_stored_directory_works_offline(world: World, tmp_path: Path) -> None:
    config = write_device_config(world, tmp_path / "device", hub_url=_closed_port_url())
    settings = load_device_settings(config)
    _store_directory(world, settings.directory_path)
    flow = open_flow(settings, cards=None)
    try:
        flow.start_without_card()
        flow.to_hospitals()
        v = flow.view()
        assert v.stage is Stage.HOSPITALS
        assert v.hospitals[0].name == "テスト駅前クリニック"  # nearest first
        flow.toggle_hospital(v.hospitals[0].id)
        flow.send_selected()
        v = flow.view()
        assert v.waiting_sealed == 1  # sealed, waiting for the network
        assert v.notice is not None
        assert "封緘" in v.notice.text.ja
    finally:
        flow.close()


def test_a_directory_not_signed_by_the_hub_is_not_used(world: World, tmp_path: Path) -> None:
    config = write_device_config(world, tmp_path / "device", hub_url=_closed_port_url())
    settings = load_device_settings(config)
    _store_directory(world, settings.directory_path, tamper=True)
    flow = open_flow(settings, cards=None)
    try:
        flow.start_without_card()
        flow.to_hospitals()
        v = flow.view()
        assert v.stage is Stage.VITALS
        assert v.hospitals == ()
        assert v.notice is not None
        assert "病院一覧" in v.notice.text.ja
    finally:
        flow.close()


def test_a_new_process_waits_for_the_finished_case_card_to_leave(
    world: World, tmp_path: Path
) -> None:
    """Each browser session of the kiosk is a new process: the card of a finished case is
    still no new tap there (the data directory's marker), until it has left the reader."""
    config = write_device_config(world, tmp_path / "device", hub_url=_closed_port_url())
    settings = load_device_settings(config)
    marker = settings.removal_marker_path
    reader = TapReader()
    first = open_flow(settings, cards=reader)
    try:
        reader.tap(VirtualCard(world.patient()))
        assert first.wait_for_card(timeout=20)
        assert first.view().stage is Stage.CONSENT
        assert not marker.exists()
        first.finish()
        assert marker.exists()  # 事案終了 with the card maybe still on the reader
    finally:
        first.close()
    later = TapReader()
    second = open_flow(settings, cards=later)
    try:
        assert later.removals == 0
        assert second.wait_for_card(timeout=0.2) is False  # no tap meanwhile
        assert later.removals == 1  # it waited for the card to leave first
        assert not marker.exists()
        second.wait_for_card(timeout=0.2)
        assert later.removals == 1  # once
    finally:
        second.close()
