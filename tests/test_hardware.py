"""The reader rules and blacklists a technician installs."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Readers that nfcpy drives from user space (jpki-card.md, "Readers").
NFCPY_READERS = {("054c", "06c1"), ("054c", "06c3"), ("072f", "2200")}
BLACKLISTED = {"port100", "pn533", "pn533_usb", "nfc"}


def _rules() -> set[tuple[str, str]]:
    text = (ROOT / "hardware/udev/60-kyukyu-nfc-readers.rules").read_text()
    found = set()
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        vid = re.search(r'ATTRS\{idVendor\}=="([0-9a-f]{4})"', line)
        pid = re.search(r'ATTRS\{idProduct\}=="([0-9a-f]{4})"', line)
        assert vid, f"rule without vendor id: {line}"
        assert pid, f"rule without product id: {line}"
        assert 'MODE="0660"' in line
        assert 'GROUP="plugdev"' in line
        found.add((vid.group(1), pid.group(1)))
    return found


def test_every_nfcpy_reader_has_a_rule() -> None:
    assert _rules() == NFCPY_READERS


def test_kernel_drivers_that_steal_the_readers_are_blacklisted() -> None:
    text = (ROOT / "hardware/modprobe/kyukyu-nfc-blacklist.conf").read_text()
    names = {ln.split()[1] for ln in text.splitlines() if ln.startswith("blacklist ")}
    assert names == BLACKLISTED


def test_installer_writes_into_a_staging_root(tmp_path: Path) -> None:
    subprocess.run([str(ROOT / "hardware/install.sh"), "--root", str(tmp_path)], check=True)
    assert (tmp_path / "etc/udev/rules.d/60-kyukyu-nfc-readers.rules").is_file()
    assert (tmp_path / "etc/modprobe.d/kyukyu-nfc-blacklist.conf").is_file()
