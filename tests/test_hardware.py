"""The reader rules, module blacklist and pcscd socket limit a technician installs."""

from __future__ import annotations

import os
import re

import pytest

from edge.provision import hardware_dir

HW = hardware_dir()

# jpki-card.md, "Readers".
NFCPY_READERS = {("054c", "06c1"), ("054c", "06c3"), ("072f", "2200")}
PCSC_READERS = {("054c", "0dc8"), ("054c", "0dc9"), ("072f", "223b")}
BLACKLISTED = {"port100", "pn533", "pn533_usb", "nfc"}


def _rules() -> dict[tuple[str, str], str]:
    text = (HW / "udev/60-kyukyu-readers.rules").read_text()
    found: dict[tuple[str, str], str] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip() or "idVendor" not in line:
            continue
        vid = re.search(r'ATTR\{idVendor\}=="([0-9a-f]{4})"', line)
        pid = re.search(r'ATTR\{idProduct\}=="([0-9a-f]{4})"', line)
        assert vid, f"rule without vendor id: {line}"
        assert pid, f"rule without product id: {line}"
        found[(vid.group(1), pid.group(1))] = line
    return found


def test_every_supported_reader_has_exactly_one_rule() -> None:
    assert set(_rules()) == NFCPY_READERS | PCSC_READERS


def test_only_the_service_user_reaches_nfcpy_readers() -> None:
    rules = _rules()
    for ids in NFCPY_READERS:
        assert 'MODE="0660"' in rules[ids]
        assert 'GROUP="kyukyu-edge"' in rules[ids]


def test_pcsc_readers_belong_to_pcscd_alone() -> None:
    rules = _rules()
    for ids in PCSC_READERS:
        assert 'MODE="0600"' in rules[ids]
        assert 'OWNER="root"' in rules[ids]


def test_no_seat_access_for_the_kiosk_user() -> None:
    text = (HW / "udev/60-kyukyu-readers.rules").read_text()
    code = "\n".join(ln for ln in text.splitlines() if not ln.startswith("#"))
    assert "uaccess" not in code
    assert "plugdev" not in code
    # The rules only touch USB devices: the GOTO guard comes before any match.
    assert code.index('SUBSYSTEM!="usb"') < code.index("idVendor")


def test_kernel_drivers_that_steal_the_readers_are_blacklisted() -> None:
    text = (HW / "modprobe/kyukyu-nfc-blacklist.conf").read_text()
    names = {ln.split()[1] for ln in text.splitlines() if ln.startswith("blacklist ")}
    assert names == BLACKLISTED


def test_pcscd_socket_is_limited_to_the_service_group() -> None:
    text = (HW / "systemd/pcscd.socket.d/kyukyu.conf").read_text()
    assert "SocketGroup=kyukyu-edge" in text
    assert "SocketMode=0660" in text


def test_every_service_is_hardened() -> None:
    for unit in sorted((HW / "systemd").glob("*.service")):
        text = unit.read_text()
        for directive in (
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "ProtectHome=yes",
            "PrivateTmp=yes",
            "CapabilityBoundingSet=\n",
            "StateDirectory=",
            "UMask=0077",
        ):
            assert directive in text, f"{unit.name} lacks {directive.strip()}"
        user = re.search(r"^User=(\S+)$", text, re.M)
        assert user, unit.name
        assert user.group(1).startswith("kyukyu-"), unit.name
        sysusers = "\n".join(p.read_text() for p in (HW / "sysusers.d").glob("*.conf"))
        assert re.search(rf"^u\s+{user.group(1)}\s", sysusers, re.M), unit.name
        # The browser holds no key; the hospital keeps its keys in its own state directory.
        if unit.name not in {"kyukyu-kiosk.service", "kyukyu-hospital.service"}:
            assert re.search(r"^LoadCredential=\S+:/etc/kyukyu/credentials/", text, re.M)
            assert "%d/" in text


def test_kiosk_opens_the_edge_services_web_port() -> None:
    from edge.settings import DeviceSettings

    port = DeviceSettings.model_fields["web_port"].default
    kiosk = (HW / "systemd/kyukyu-kiosk.service").read_text()
    assert f"http://127.0.0.1:{port}/" in kiosk
    edge = (HW / "systemd/kyukyu-edge.service").read_text()
    assert "ExecStart=@KYUKYU@ edge --web\n" in edge


def _unit_environment(unit: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in (HW / "systemd" / unit).read_text().splitlines():
        if line.startswith("Environment="):
            key, _, value = line.removeprefix("Environment=").partition("=")
            env[key] = value.replace("%d", f"/run/credentials/{unit}")
    return env


def test_hub_unit_passes_the_hubs_production_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """The unit's environment and the settings file installed with it are what
    `kyukyu hub serve` sees: prod must accept them."""
    from hub_server.core.config import Settings

    for key in [k for k in os.environ if k.startswith("KYUKYU_HUB_")]:
        monkeypatch.delenv(key)
    unit_env = _unit_environment("kyukyu-hub.service")
    assert unit_env.pop("KYUKYU_HUB_CONFIG") == "/etc/kyukyu/hub.env"
    for key, value in unit_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("KYUKYU_HUB_CONFIG", str(HW / "etc/hub.env"))
    settings = Settings.from_env().check()
    assert settings.environment == "prod"
    assert settings.is_postgres
    assert str(settings.hub_key_path) == "/run/credentials/kyukyu-hub.service/hub-key.pem"
