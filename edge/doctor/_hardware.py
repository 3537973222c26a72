"""The readers (pcscd, nfcpy), the installed udev rules and module blacklist, the card."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from edge.provision import ROOTS_DIR, DeviceLayout, ProvisionError, hardware_dir
from edge.settings import DeviceSettings
from errbase import KyukyuError

from ._report import Check, fail, ok, warn

NFCPY_IDS = {(0x054C, 0x06C1), (0x054C, 0x06C3), (0x072F, 0x2200)}
# Kernel NFC modules that would take the readers from pcscd and nfcpy.
BLACKLISTED = frozenset({"port100", "pn533", "pn533_usb", "nfc"})


def pcsc_list() -> list[str]:
    """The reader names pcscd sees."""
    from edge.reader.pcsc import PcscReaders

    with PcscReaders() as readers:
        return readers.list()


def nfcpy_find() -> list[tuple[int, int]]:
    """(vendor, product) of the USB devices nfcpy could drive."""
    import nfc.clf.transport as transport

    found = transport.USB.find("usb") or []
    return [(int(v), int(p)) for v, p, *_ in found]


def check_pcscd(s: DeviceSettings, list_readers: Callable[[], list[str]]) -> Check:
    used = s.reader == "pcsc"
    try:
        names = list_readers()
    except KyukyuError as exc:
        fix_en, fix_ja = (
            "systemctl start pcscd.socket",
            "pcscd を起動する（systemctl start pcscd.socket）",
        )
        finding = warn if not used else fail
        return finding(
            "pcscd", f"pcscd not reachable ({exc.code})", "pcscd に接続できません", fix_en, fix_ja
        )
    if s.reader_name and used:
        hits = [n for n in names if n == s.reader_name or n.startswith(s.reader_name)]
        if not hits:
            return fail(
                "pcscd",
                f"reader {s.reader_name!r} not seen by pcscd ({len(names)} other readers)",
                "設定されたカードリーダーが見つかりません",
                "plug the reader in (or fix KYUKYU_EDGE_READER_NAME)",
                "リーダーを接続する（または設定を直す）",
            )
        return ok("pcscd", f"reader {hits[0]!r} seen by pcscd", "カードリーダーを認識しています")
    if not names:
        if not used:
            return ok("pcscd", "pcscd running, no reader (not used)", "pcscd 稼働中（未使用）")
        return fail(
            "pcscd",
            "pcscd sees no reader",
            "カードリーダーが見つかりません",
            "plug the reader in; check `kyukyu doctor` udev line",
            "リーダーを接続する",
        )
    return ok(
        "pcscd",
        f"{len(names)} reader(s) seen by pcscd: {', '.join(names)}",
        f"カードリーダー {len(names)} 台を認識しています",
    )


def check_nfcpy(s: DeviceSettings, find: Callable[[], list[tuple[int, int]]]) -> Check:
    used = s.reader == "nfc"
    if used and s.reader_name and not s.reader_name.startswith("usb"):
        return ok("nfcpy", f"nfcpy path {s.reader_name} (not USB)", "nfcpy（USB 以外）")
    try:
        found = [d for d in find() if d in NFCPY_IDS]
    except Exception as exc:  # nfcpy/libusb missing or broken: report, don't crash
        msg = f"nfcpy cannot enumerate USB ({type(exc).__name__})"
        if used:
            return fail(
                "nfcpy",
                msg,
                "nfcpy で USB を確認できません",
                "install nfcpy and libusb-1.0-0",
                "nfcpy と libusb を入れる",
            )
        return ok("nfcpy", msg + " (not used)", "nfcpy 未使用")
    if found:
        ids = ", ".join(f"{v:04x}:{p:04x}" for v, p in found)
        return ok("nfcpy", f"nfcpy reader(s) {ids}", "nfcpy のリーダーを認識しています")
    if used:
        return fail(
            "nfcpy",
            "no nfcpy reader (RC-S380, ACR122U) on USB",
            "nfcpy のカードリーダーが見つかりません",
            "plug the reader in",
            "リーダーを接続する",
        )
    return ok("nfcpy", "no nfcpy reader (not used)", "nfcpy リーダーなし（未使用）")


def check_udev(layout: DeviceLayout) -> Check:
    return _installed_file(
        layout,
        "udev",
        "udev/60-kyukyu-readers.rules",
        "/etc/udev/rules.d/60-kyukyu-readers.rules",
        "reader udev rules",
        "カードリーダーの udev ルール",
    )


def loaded_modules() -> set[str] | None:
    """The kernel modules loaded on this machine, None when that cannot be read."""
    try:
        return {ln.split()[0] for ln in Path("/proc/modules").read_text().splitlines()}
    except OSError:
        return None


def check_blacklist(layout: DeviceLayout, modules: Callable[[], set[str] | None]) -> Check:
    """The blacklist file; on the live device also that no blacklisted module is loaded."""
    c = _installed_file(
        layout,
        "blacklist",
        "modprobe/kyukyu-nfc-blacklist.conf",
        "/etc/modprobe.d/kyukyu-nfc-blacklist.conf",
        "kernel NFC module blacklist",
        "カーネル NFC モジュールの無効化",
    )
    if c.status != "ok" or not layout.is_live:
        return c
    loaded = modules()
    bad = sorted((loaded or set()) & BLACKLISTED)
    if bad:
        return warn(
            "blacklist",
            f"blacklisted modules still loaded: {', '.join(bad)}",
            "無効化したモジュールが読み込まれています",
            f"modprobe -r {' '.join(bad)} (or reboot)",
            "再起動する",
        )
    return c


def _installed_file(
    layout: DeviceLayout, cid: str, source: str, dest: str, what_en: str, what_ja: str
) -> Check:
    path = layout.host(dest)
    if not path.is_file():
        return fail(
            cid,
            f"{what_en} missing ({dest})",
            f"{what_ja}がありません",
            "kyukyu provision install",
            "kyukyu provision install を実行する",
        )
    try:
        expected = (hardware_dir() / source).read_bytes()
    except (OSError, ProvisionError):
        expected = None
    if expected is not None and path.read_bytes() != expected:
        return warn(
            cid,
            f"{what_en} differ from this version ({dest})",
            f"{what_ja}が古いか変更されています",
            "kyukyu provision install",
            "kyukyu provision install を実行する",
        )
    return ok(cid, f"{what_en} in place", f"{what_ja}は設定済みです")


def roots_dir(layout: DeviceLayout, s: DeviceSettings) -> Path:
    """Where the device's pinned JPKI roots are on this machine."""
    return layout.host(s.roots_dir or ROOTS_DIR)


def check_card(
    s: DeviceSettings, layout: DeviceLayout, now: datetime, *, enabled: bool, timeout_s: float
) -> Check:
    """Read the card on the reader, if one is there (pcsc readers only)."""
    if not enabled or s.reader != "pcsc":
        return ok("card", "card test skipped", "カード読み取り試験は省略")
    try:
        from edge.reader import ApduChannel, NoCard, ReaderError
        from edge.reader.pcsc import PcscReaders
    except ImportError:  # pragma: no cover - pyscard missing
        return ok("card", "card test skipped (no pyscard)", "カード読み取り試験は省略")
    try:
        with PcscReaders(s.reader_name) as readers:
            try:
                conn = readers.wait_for_card(timeout=timeout_s)
            except NoCard:
                return ok(
                    "card",
                    "no card on the reader (tap one to test reading)",
                    "カードなし（置くと読み取り試験をします）",
                )
            with conn:
                return _read_test(roots_dir(layout, s), s.test_roots, now, ApduChannel(conn))
    except ReaderError as exc:
        return warn(
            "card",
            f"card test not possible ({exc.code})",
            "カード読み取り試験ができません",
            "check the reader",
            "リーダーを確認する",
        )


def _read_test(roots: Path, test_roots: bool, now: datetime, channel: Any) -> Check:
    from edge.jpki import JpkiError
    from edge.jpki.read import ReadOptions, read_card
    from edge.jpki.trust import TrustStore

    try:
        store = TrustStore.from_directory(roots, allow_test_roots=test_roots)
    except JpkiError:
        store = None
    try:
        result = read_card(channel, ReadOptions(trust=store, now=now))
    except KyukyuError as exc:
        return fail(
            "card",
            f"card read failed ({exc.code})",
            "カードを読み取れません",
            "try another card; check the reader",
            "別のカードで試す・リーダーを確認する",
        )
    verdict = result.verdict
    if verdict is not None:
        test = " (TEST root)" if verdict.test_root else ""
        return ok(
            "card",
            f"card read; certificate trusted under {verdict.root}{test}",
            "カードを読み取り、証明書を確認しました",
        )
    err = result.first_error()
    code = err.code if err is not None else "not_checked"
    return warn(
        "card",
        f"card read; certificate not trusted on the device ({code})",
        "カードは読めましたが証明書を端末で確認できません",
        "check the JPKI roots (kyukyu provision trust install)",
        "ルート証明書を確認する",
    )
