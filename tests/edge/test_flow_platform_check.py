"""Issue 13 in the case flow, built by ``open_flow`` from the device's settings: a
certificate under an issuer the device does not pin (the world's generated root: a third
generation pinned nowhere on this production device, which pins only the J-LIS roots) is
sent to the platform. Online the case marks it 'verified by the platform' and fetches the
summary; offline it stays 'not verified on the device' and the case goes on to the vitals."""

from __future__ import annotations

import socket
from pathlib import Path

from edge.card_sim import VirtualCard
from edge.flow import CERTIFICATE_TEXT, CaseFlow, Consent, IdentityMethod, Stage, open_flow
from edge.settings import load_device_settings
from tests.edge._world import TapReader, World, write_device_config


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def _device(world: World, data_dir: Path, jpki_roots_dir: Path, **extra: str) -> CaseFlow:
    extra = {"test_roots": "false", **extra}
    config = write_device_config(world, data_dir, roots_dir=str(jpki_roots_dir), **extra)
    return open_flow(load_device_settings(config), cards=TapReader())


def _tap(flow: CaseFlow, world: World) -> None:
    flow._cards.tap(VirtualCard(world.patient()))  # type: ignore[attr-defined]
    assert flow.wait_for_card(timeout=10)


def test_online_verified_by_the_platform_and_summary_fetched(
    world: World, tmp_path: Path, jpki_roots_dir: Path
) -> None:
    flow = _device(world, tmp_path / "device", jpki_roots_dir)
    try:
        _tap(flow, world)
        v = flow.view()
        assert v.stage is Stage.CONSENT
        assert v.certificate_ok
        assert v.certificate_status == "verified_by_platform"
        assert CERTIFICATE_TEXT[v.certificate_status].ja == "プラットフォームで検証済み"
        flow.choose_consent(Consent.CONSENTED)
        flow.choose_identity(IdentityMethod.FACE)
        v = flow.view()
        assert v.stage is Stage.SUMMARY
        assert v.summary_status == "found"
        assert v.summary
        assert v.certificate_status == "verified_by_platform"
    finally:
        flow.close()


def test_offline_not_verified_on_the_device_and_the_case_goes_on(
    world: World, tmp_path: Path, jpki_roots_dir: Path
) -> None:
    flow = _device(world, tmp_path / "device", jpki_roots_dir, hub_url=_dead_url())
    try:
        _tap(flow, world)
        v = flow.view()
        assert v.stage is Stage.CONSENT  # not stopped: the read stands, marked
        assert v.certificate_status == "not_verified_on_device"
        assert CERTIFICATE_TEXT[v.certificate_status].ja == "端末では未検証"
        flow.choose_consent(Consent.UNCONSCIOUS)
        assert flow.view().summary_status == "unavailable"
        flow.to_vitals()
        flow.set_vital("pulse", 90)
        v = flow.view()
        assert v.stage is Stage.VITALS
        assert v.vitals[0].pulse == 90
        assert v.certificate_status == "not_verified_on_device"
    finally:
        flow.close()


def test_a_pinned_root_is_verified_on_the_device(world: World, tmp_path: Path) -> None:
    config = write_device_config(world, tmp_path / "device")  # pins the world's root
    flow = open_flow(load_device_settings(config), cards=TapReader())
    try:
        _tap(flow, world)
        assert flow.view().certificate_status == "trusted"
    finally:
        flow.close()


def test_the_trust_bundle_is_fetched_and_the_next_tap_is_verified_on_the_device(
    world: World, tmp_path: Path, jpki_roots_dir: Path
) -> None:
    """After the platform verified a generation new to the device, the device fetches the
    platform's signed trust bundle (GET /v1/trust-bundle, kept on disk) and its trust store
    takes it: the next card of that generation is verified on the device itself.
    (A test-mode device: the world's platform lists its generated root as a test root.)"""
    data_dir = tmp_path / "device"
    flow = _device(world, data_dir, jpki_roots_dir, test_roots="true")
    try:
        _tap(flow, world)
        assert flow.view().certificate_status == "verified_by_platform"
        settings = load_device_settings(data_dir / "edge.env")
        assert settings.trust_bundle_path.is_file()  # accepted and kept
        flow.finish()
        _tap(flow, world)
        assert flow.view().certificate_status == "trusted"
    finally:
        flow.close()
    # A device started later has it too (open_flow's store includes the kept bundle).
    flow = _device(world, data_dir, jpki_roots_dir, test_roots="true", hub_url=_dead_url())
    try:
        _tap(flow, world)
        assert flow.view().certificate_status == "trusted"
    finally:
        flow.close()
