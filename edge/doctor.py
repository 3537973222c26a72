"""``kyukyu doctor``: is this device ready? One line per check, OK / WARN / FAIL with the fix.

Checks, in order: readers seen by pcscd and by nfcpy, udev rules and module
blacklist in place, a card test when a card is on the reader, the platform
reachable, the device still enrolled (not revoked), clock skew against the
platform, the device key (file, mode, owner, age), the pinned JPKI roots
(present, loadable, expiry), the revocation snapshot (signature, age), disk
space, sealed cases waiting in the outbox.

Every check is a function of a ``DoctorContext``; what touches the outside
(the clock, the HTTP transport, the PC/SC and nfcpy enumerations, disk
thresholds) is injectable so broken set-ups can be reproduced in tests.
Messages carry no patient or certificate-subject data.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Literal

import httpx

from edge.provision import (
    DATA_DIR,
    ROOTS_DIR,
    SERVICE_USER,
    DeviceLayout,
    ProvisionError,
    hardware_dir,
)
from edge.settings import DeviceSettings, SettingsError, load_device_settings
from errbase import KyukyuError

__all__ = ["Check", "DoctorContext", "DoctorReport", "Status", "run_doctor"]

Status = Literal["ok", "warn", "fail"]

# The hub refuses requests whose timestamp is off by more than this (hub default).
HUB_MAX_SKEW_S = 300.0
CLOCK_WARN_S = 10.0
ROOT_WARN_DAYS = 180
KEY_WARN_DAYS = 30
NFCPY_IDS = {(0x054C, 0x06C1), (0x054C, 0x06C3), (0x072F, 0x2200)}


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    id: str
    status: Status
    message_en: str
    message_ja: str
    fix_en: str | None = None
    fix_ja: str | None = None

    def line(self) -> str:
        label = {"ok": "OK  ", "warn": "WARN", "fail": "FAIL"}[self.status]
        en = self.message_en + (f"; fix: {self.fix_en}" if self.fix_en else "")
        ja = self.message_ja + (f"（対処: {self.fix_ja}）" if self.fix_ja else "")
        return f"{label} {self.id:<11} {en} / {ja}"

    def to_dict(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(c.status == "fail" for c in self.checks)

    @property
    def exit_code(self) -> int:
        """0 when nothing failed (warnings included), 1 when a check failed."""
        return 0 if self.ok else 1

    def by_id(self, check_id: str) -> Check:
        return next(c for c in self.checks if c.id == check_id)

    def to_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "checks": [c.to_dict() for c in self.checks]}

    def text(self) -> str:
        return "\n".join(c.line() for c in self.checks)


def _pcsc_list() -> list[str]:
    from edge.reader.pcsc import PcscReaders

    with PcscReaders() as readers:
        return readers.list()


def _nfcpy_find() -> list[tuple[int, int]]:
    """(vendor, product) of the USB devices nfcpy could drive."""
    import nfc.clf.transport as transport

    found = transport.USB.find("usb") or []
    return [(int(v), int(p)) for v, p, *_ in found]


@dataclass
class DoctorContext:
    """What the checks look at; every outside dependency can be replaced."""

    layout: DeviceLayout = field(default_factory=DeviceLayout)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    transport: httpx.BaseTransport | None = None
    timeout_s: float = 5.0
    pcsc_list: Callable[[], list[str]] = _pcsc_list
    nfcpy_find: Callable[[], list[tuple[int, int]]] = _nfcpy_find
    card_test: bool = True
    card_timeout_s: float = 0.3
    disk_warn_bytes: int = 500 * 1024 * 1024
    disk_fail_bytes: int = 50 * 1024 * 1024
    settings: DeviceSettings | None = None
    # The settings file when it is not the layout's (``kyukyu edge --config``).
    config: Path | None = None
    # Filled in as the checks run.
    hub_date: datetime | None = None
    local_at_hub_date: datetime | None = None
    platform_up: bool = False


def _ok(cid: str, en: str, ja: str) -> Check:
    return Check(cid, "ok", en, ja)


def _warn(cid: str, en: str, ja: str, fix_en: str, fix_ja: str) -> Check:
    return Check(cid, "warn", en, ja, fix_en, fix_ja)


def _fail(cid: str, en: str, ja: str, fix_en: str, fix_ja: str) -> Check:
    return Check(cid, "fail", en, ja, fix_en, fix_ja)


# -- readers ----------------------------------------------------------------------------


def check_pcscd(ctx: DoctorContext, s: DeviceSettings) -> Check:
    used = s.reader == "pcsc"
    try:
        names = ctx.pcsc_list()
    except KyukyuError as exc:
        fix_en, fix_ja = (
            "systemctl start pcscd.socket",
            "pcscd を起動する（systemctl start pcscd.socket）",
        )
        if not used:
            return _warn(
                "pcscd",
                f"pcscd not reachable ({exc.code})",
                "pcscd に接続できません",
                fix_en,
                fix_ja,
            )
        return _fail(
            "pcscd", f"pcscd not reachable ({exc.code})", "pcscd に接続できません", fix_en, fix_ja
        )
    if s.reader_name and used:
        hits = [n for n in names if n == s.reader_name or n.startswith(s.reader_name)]
        if not hits:
            return _fail(
                "pcscd",
                f"reader {s.reader_name!r} not seen by pcscd ({len(names)} other readers)",
                "設定されたカードリーダーが見つかりません",
                "plug the reader in (or fix KYUKYU_EDGE_READER_NAME)",
                "リーダーを接続する（または設定を直す）",
            )
        return _ok("pcscd", f"reader {hits[0]!r} seen by pcscd", "カードリーダーを認識しています")
    if not names:
        if not used:
            return _ok("pcscd", "pcscd running, no reader (not used)", "pcscd 稼働中（未使用）")
        return _fail(
            "pcscd",
            "pcscd sees no reader",
            "カードリーダーが見つかりません",
            "plug the reader in; check `kyukyu doctor` udev line",
            "リーダーを接続する",
        )
    return _ok(
        "pcscd",
        f"{len(names)} reader(s) seen by pcscd: {', '.join(names)}",
        f"カードリーダー {len(names)} 台を認識しています",
    )


def check_nfcpy(ctx: DoctorContext, s: DeviceSettings) -> Check:
    used = s.reader == "nfc"
    if used and s.reader_name and not s.reader_name.startswith("usb"):
        return _ok("nfcpy", f"nfcpy path {s.reader_name} (not USB)", "nfcpy（USB 以外）")
    try:
        found = [d for d in ctx.nfcpy_find() if d in NFCPY_IDS]
    except Exception as exc:  # nfcpy/libusb missing or broken: report, don't crash
        msg = f"nfcpy cannot enumerate USB ({type(exc).__name__})"
        if used:
            return _fail(
                "nfcpy",
                msg,
                "nfcpy で USB を確認できません",
                "install nfcpy and libusb-1.0-0",
                "nfcpy と libusb を入れる",
            )
        return _ok("nfcpy", msg + " (not used)", "nfcpy 未使用")
    if found:
        ids = ", ".join(f"{v:04x}:{p:04x}" for v, p in found)
        return _ok("nfcpy", f"nfcpy reader(s) {ids}", "nfcpy のリーダーを認識しています")
    if used:
        return _fail(
            "nfcpy",
            "no nfcpy reader (RC-S380, ACR122U) on USB",
            "nfcpy のカードリーダーが見つかりません",
            "plug the reader in",
            "リーダーを接続する",
        )
    return _ok("nfcpy", "no nfcpy reader (not used)", "nfcpy リーダーなし（未使用）")


def check_udev(ctx: DoctorContext) -> Check:
    return _installed_file(
        ctx,
        "udev",
        "udev/60-kyukyu-readers.rules",
        "/etc/udev/rules.d/60-kyukyu-readers.rules",
        "reader udev rules",
        "カードリーダーの udev ルール",
    )


def check_blacklist(ctx: DoctorContext) -> Check:
    c = _installed_file(
        ctx,
        "blacklist",
        "modprobe/kyukyu-nfc-blacklist.conf",
        "/etc/modprobe.d/kyukyu-nfc-blacklist.conf",
        "kernel NFC module blacklist",
        "カーネル NFC モジュールの無効化",
    )
    if c.status != "ok" or not ctx.layout.is_live:
        return c
    try:
        loaded = {ln.split()[0] for ln in Path("/proc/modules").read_text().splitlines()}
    except OSError:
        return c
    bad = sorted(loaded & {"port100", "pn533", "pn533_usb", "nfc"})
    if bad:
        return _warn(
            "blacklist",
            f"blacklisted modules still loaded: {', '.join(bad)}",
            "無効化したモジュールが読み込まれています",
            f"modprobe -r {' '.join(bad)} (or reboot)",
            "再起動する",
        )
    return c


def _installed_file(
    ctx: DoctorContext, cid: str, source: str, dest: str, what_en: str, what_ja: str
) -> Check:
    path = ctx.layout.host(dest)
    if not path.is_file():
        return _fail(
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
        return _warn(
            cid,
            f"{what_en} differ from this version ({dest})",
            f"{what_ja}が古いか変更されています",
            "kyukyu provision install",
            "kyukyu provision install を実行する",
        )
    return _ok(cid, f"{what_en} in place", f"{what_ja}は設定済みです")


# -- card -------------------------------------------------------------------------------


def check_card(ctx: DoctorContext, s: DeviceSettings) -> Check:
    if not ctx.card_test or s.reader != "pcsc":
        return _ok("card", "card test skipped", "カード読み取り試験は省略")
    try:
        from edge.reader import ApduChannel, NoCard, ReaderError
        from edge.reader.pcsc import PcscReaders
    except ImportError:  # pragma: no cover - pyscard missing
        return _ok("card", "card test skipped (no pyscard)", "カード読み取り試験は省略")
    try:
        with PcscReaders(s.reader_name) as readers:
            try:
                conn = readers.wait_for_card(timeout=ctx.card_timeout_s)
            except NoCard:
                return _ok(
                    "card",
                    "no card on the reader (tap one to test reading)",
                    "カードなし（置くと読み取り試験をします）",
                )
            with conn:
                return _read_test(ctx, s, ApduChannel(conn))
    except ReaderError as exc:
        return _warn(
            "card",
            f"card test not possible ({exc.code})",
            "カード読み取り試験ができません",
            "check the reader",
            "リーダーを確認する",
        )


def _read_test(ctx: DoctorContext, s: DeviceSettings, channel: Any) -> Check:
    from edge.jpki import JpkiError
    from edge.jpki.read import ReadOptions, read_card
    from edge.jpki.trust import TrustStore

    try:
        store = TrustStore.from_directory(
            ctx.layout.host(s.roots_dir or ROOTS_DIR),
            allow_test_roots=s.test_roots,
        )
    except JpkiError:
        store = None
    try:
        result = read_card(channel, ReadOptions(trust=store, now=ctx.clock()))
    except KyukyuError as exc:
        return _fail(
            "card",
            f"card read failed ({exc.code})",
            "カードを読み取れません",
            "try another card; check the reader",
            "別のカードで試す・リーダーを確認する",
        )
    verdict = result.verdict
    if verdict is not None:
        test = " (TEST root)" if verdict.test_root else ""
        return _ok(
            "card",
            f"card read; certificate trusted under {verdict.root}{test}",
            "カードを読み取り、証明書を確認しました",
        )
    err = result.first_error()
    code = err.code if err is not None else "not_checked"
    return _warn(
        "card",
        f"card read; certificate not trusted on the device ({code})",
        "カードは読めましたが証明書を端末で確認できません",
        "check the JPKI roots (kyukyu provision trust install)",
        "ルート証明書を確認する",
    )


# -- platform ---------------------------------------------------------------------------


def _client(ctx: DoctorContext, s: DeviceSettings) -> Any:
    from edge.provision import load_device_key
    from sync.client import PlatformClient

    key = load_device_key(ctx.layout.host(s.key_file))
    ca = ctx.layout.host(s.hub_ca_file) if s.hub_ca_file else None
    return PlatformClient(
        s.hub_url or "",
        key=key,
        device_id=s.device_id,
        ca_file=ca,
        transport=ctx.transport,
        timeout=httpx.Timeout(ctx.timeout_s),
    )


def check_platform(ctx: DoctorContext, s: DeviceSettings) -> Check:
    if not s.hub_url:
        return _fail(
            "platform",
            "no platform configured (not enrolled)",
            "プラットフォームが設定されていません",
            "kyukyu provision enroll",
            "kyukyu provision enroll を実行する",
        )
    from sync import PlatformError

    try:
        with _client(ctx, s) as client:
            t0 = ctx.clock()
            response = client.http.request("GET", "/v1/health", signed=False)
            t1 = ctx.clock()
    except ProvisionError:
        try:  # no key: still see whether the platform answers
            with httpx.Client(
                transport=ctx.transport,
                timeout=ctx.timeout_s,
                verify=str(ctx.layout.host(s.hub_ca_file)) if s.hub_ca_file else True,
            ) as plain:
                t0 = ctx.clock()
                response = plain.get(f"{s.hub_url}/v1/health")
                t1 = ctx.clock()
        except httpx.HTTPError as exc:
            return _platform_down(s, type(exc).__name__)
    except PlatformError as exc:
        return _platform_down(s, exc.code)
    ctx.platform_up = True
    date = response.headers.get("date")
    if date:
        try:
            # HTTP dates are whole seconds, truncated: the hub's clock was half a second on.
            ctx.hub_date = parsedate_to_datetime(date) + timedelta(seconds=0.5)
            ctx.local_at_hub_date = t0 + (t1 - t0) / 2
        except (TypeError, ValueError):
            pass
    return _ok("platform", f"platform {s.hub_url} reachable", "プラットフォームに接続できます")


def _platform_down(s: DeviceSettings, why: str) -> Check:
    return _fail(
        "platform",
        f"platform {s.hub_url} unreachable ({why})",
        "プラットフォームに接続できません",
        "check the network and the platform URL (cases queue sealed meanwhile)",
        "通信環境と接続先を確認する（その間の事案は暗号化して保留されます）",
    )


def check_enrollment(ctx: DoctorContext, s: DeviceSettings) -> Check:
    fix_en = "kyukyu provision retire --force, then kyukyu provision enroll"
    fix_ja = "廃止処理の後、再登録する（kyukyu provision enroll）"
    if not s.enrolled:
        return _fail(
            "enrollment",
            "device not enrolled",
            "端末が登録されていません",
            "kyukyu provision enroll",
            "kyukyu provision enroll を実行する",
        )
    if not ctx.platform_up:
        return _warn(
            "enrollment",
            "enrollment not checked (platform unreachable)",
            "登録状態を確認できません（プラットフォームに接続できません）",
            "run doctor again when online",
            "接続できるときに再確認する",
        )
    from sync import HttpStatusError, PlatformError

    try:
        with _client(ctx, s) as client:
            me = client.http.request_json("GET", "/v1/devices/me")
    except ProvisionError as exc:
        return _fail(
            "enrollment",
            f"device key unusable ({exc.detail})",
            "端末の鍵を使えません",
            fix_en,
            fix_ja,
        )
    except HttpStatusError as exc:
        if exc.status == 403 and exc.hub_code == "revoked":
            return _fail(
                "enrollment",
                f"device {s.device_id} has been REVOKED by the platform",
                "この端末はプラットフォームで失効しています",
                fix_en,
                fix_ja,
            )
        if exc.status == 401 and exc.hub_code == "stale_request":
            return _fail(
                "enrollment",
                "the platform refused the request time (clock)",
                "時刻のずれにより拒否されました",
                "set the clock (NTP)",
                "時刻を合わせる",
            )
        return _fail(
            "enrollment",
            f"the platform refused the device ({exc.hub_code or exc.status})",
            "プラットフォームが端末を拒否しました",
            fix_en,
            fix_ja,
        )
    except PlatformError as exc:
        return _warn(
            "enrollment",
            f"enrollment not checked ({exc.code})",
            "登録状態を確認できません",
            "run doctor again",
            "再確認する",
        )
    if isinstance(me, dict) and me.get("revoked"):
        return _fail(
            "enrollment",
            f"device {s.device_id} has been REVOKED by the platform",
            "この端末はプラットフォームで失効しています",
            fix_en,
            fix_ja,
        )
    return _ok("enrollment", f"enrolled as device {s.device_id}", "端末は登録済みです")


def check_clock(ctx: DoctorContext, s: DeviceSettings) -> Check:
    if ctx.hub_date is None or ctx.local_at_hub_date is None:
        return _warn(
            "clock",
            "clock not compared (platform unreachable)",
            "時刻を確認できません",
            "check NTP (timedatectl)",
            "NTP を確認する",
        )
    skew = (ctx.local_at_hub_date - ctx.hub_date).total_seconds()
    text = f"clock {skew:+.0f} s from the platform"
    if abs(skew) > HUB_MAX_SKEW_S:
        return _fail(
            "clock",
            text + f" (the platform refuses beyond {HUB_MAX_SKEW_S:.0f} s)",
            f"時刻が {skew:+.0f} 秒ずれています",
            "set the clock: timedatectl set-ntp true",
            "時刻を合わせる（timedatectl set-ntp true）",
        )
    if abs(skew) > CLOCK_WARN_S:
        return _warn(
            "clock",
            text,
            f"時刻が {skew:+.0f} 秒ずれています",
            "enable NTP: timedatectl set-ntp true",
            "NTP を有効にする",
        )
    return _ok("clock", text, "時刻は正確です")


# -- key, roots, snapshot ---------------------------------------------------------------


def check_device_key(ctx: DoctorContext, s: DeviceSettings) -> Check:
    from edge.provision import load_device_key

    fix_en = "kyukyu provision retire, then kyukyu provision enroll (a new key)"
    fix_ja = "廃止処理の後に再登録して鍵を更新する"
    path = ctx.layout.host(s.key_file)
    if not s.enrolled:
        return _fail(
            "device_key",
            "no device key (not enrolled)",
            "端末の鍵がありません",
            "kyukyu provision enroll",
            "kyukyu provision enroll を実行する",
        )
    try:
        load_device_key(path)
        st = path.stat()
    except (ProvisionError, OSError) as exc:
        return _fail(
            "device_key",
            f"device key unusable: {getattr(exc, 'detail', exc)}",
            "端末の鍵を読めません",
            fix_en,
            fix_ja,
        )
    if st.st_mode & 0o077:
        return _fail(
            "device_key",
            f"device key is mode {st.st_mode & 0o777:o} (must be 600)",
            "端末の鍵の権限が広すぎます",
            f"chmod 600 {s.key_file}",
            f"chmod 600 {s.key_file}",
        )
    try:
        user = ctx.layout.user(SERVICE_USER)
        if st.st_uid != user.uid:
            return _fail(
                "device_key",
                f"device key not owned by {SERVICE_USER}",
                "端末の鍵の所有者が違います",
                f"chown {SERVICE_USER}: {s.key_file}",
                f"chown {SERVICE_USER}: {s.key_file}",
            )
    except ProvisionError:
        pass
    if s.enrolled_at:
        try:
            born = datetime.fromisoformat(s.enrolled_at)
        except ValueError:
            born = None
        if born is not None:
            expires = born + timedelta(days=s.device_key_max_age_days)
            left = expires - ctx.clock()
            if left <= timedelta(0):
                return _fail(
                    "device_key",
                    f"device key expired {expires.date().isoformat()}",
                    "端末の鍵の有効期限が切れています",
                    fix_en,
                    fix_ja,
                )
            if left < timedelta(days=KEY_WARN_DAYS):
                return _warn(
                    "device_key",
                    f"device key expires {expires.date().isoformat()}",
                    "端末の鍵の有効期限が近づいています",
                    fix_en,
                    fix_ja,
                )
            return _ok(
                "device_key",
                f"device key valid until {expires.date().isoformat()}",
                "端末の鍵は有効です",
            )
    return _ok("device_key", "device key in place", "端末の鍵は有効です")


def check_roots(ctx: DoctorContext, s: DeviceSettings) -> Check:
    from edge.jpki import JpkiError
    from edge.jpki.trust import TrustStore

    fix_en = "kyukyu provision trust install --bundled (or <J-LIS root files>)"
    fix_ja = "ルート証明書を登録する（kyukyu provision trust install）"
    directory = ctx.layout.host(s.roots_dir or ROOTS_DIR)
    try:
        store = TrustStore.from_directory(directory, allow_test_roots=s.test_roots)
    except JpkiError as exc:
        return _fail(
            "roots",
            f"JPKI roots not usable ({exc.code})",
            "JPKI ルート証明書を使えません",
            fix_en,
            fix_ja,
        )
    now = ctx.clock()
    auth = [a for a in store.anchors if a.purpose in ("auth", "test")]
    live = [a for a in auth if a.certificate.not_valid_after_utc > now]
    if not live:
        return _fail(
            "roots",
            "no valid user-authentication root",
            "有効な利用者証明用ルートがありません",
            fix_en,
            fix_ja,
        )
    expired = sorted(a.name for a in store.anchors if a.certificate.not_valid_after_utc <= now)
    first = min(a.certificate.not_valid_after_utc for a in live)
    if s.test_roots:
        return _warn(
            "roots",
            f"{len(store.anchors)} roots, TEST mode (test roots accepted)",
            "テストモードです（テスト用ルートを受け入れます）",
            "production devices: remove KYUKYU_EDGE_TEST_ROOTS",
            "本番端末ではテストモードを外す",
        )
    if expired:
        return _warn(
            "roots",
            f"expired roots installed: {', '.join(expired)}",
            "期限切れのルート証明書があります",
            f"remove them from {s.roots_dir}",
            "期限切れのルートを削除する",
        )
    if first - now < timedelta(days=ROOT_WARN_DAYS):
        return _warn(
            "roots",
            f"a root expires {first.date().isoformat()}",
            "ルート証明書の期限が近づいています",
            fix_en,
            fix_ja,
        )
    names = ", ".join(sorted(a.name for a in store.anchors))
    return _ok(
        "roots",
        f"JPKI roots {names}; valid until at least {first.date().isoformat()}",
        "JPKI ルート証明書は有効です",
    )


def check_revocation(ctx: DoctorContext, s: DeviceSettings) -> Check:
    from edge.provision import load_snapshot
    from sync.signing import public_key_from_b64

    fix_en = "bring the device online and run kyukyu provision refresh (the timer does it hourly)"
    fix_ja = "通信できる状態で kyukyu provision refresh を実行する"
    path = ctx.layout.host(s.revocation_path)
    if not s.hub_public_key:
        return _fail(
            "revocation",
            "no pinned platform key (not enrolled)",
            "端末が登録されていません",
            "kyukyu provision enroll",
            "kyukyu provision enroll を実行する",
        )
    try:
        snapshot = load_snapshot(path.read_bytes(), public_key_from_b64(s.hub_public_key))
    except FileNotFoundError:
        return _fail("revocation", "no revocation snapshot", "失効情報がありません", fix_en, fix_ja)
    except (KyukyuError, OSError, ValueError):
        return _fail(
            "revocation",
            "revocation snapshot damaged or not signed by the platform",
            "失効情報が壊れているか署名が正しくありません",
            fix_en,
            fix_ja,
        )
    issued = datetime.fromtimestamp(snapshot.issued_at, UTC)
    hours = (ctx.clock() - issued).total_seconds() / 3600
    limit = s.revocation_max_age_hours
    text = f"revocation snapshot #{snapshot.sequence}, {hours:.1f} h old (limit {limit:g} h)"
    if hours > limit:
        return _fail(
            "revocation", "EXPIRED " + text, "失効情報の有効期限が切れています", fix_en, fix_ja
        )
    if hours > limit / 2:
        return _warn("revocation", text, "失効情報が古くなっています", fix_en, fix_ja)
    return _ok("revocation", text, "失効情報は最新です")


# -- disk, outbox -----------------------------------------------------------------------


def check_disk(ctx: DoctorContext, s: DeviceSettings) -> Check:
    path = ctx.layout.host(s.data_dir)
    probe = path if path.exists() else ctx.layout.host(DATA_DIR).parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    usage = shutil.disk_usage(probe)
    mb = usage.free / 1024 / 1024
    text = f"{mb:.0f} MB free for {s.data_dir}"
    if usage.free < ctx.disk_fail_bytes:
        return _fail(
            "disk",
            text + f" (< {ctx.disk_fail_bytes // 2**20} MB)",
            f"空き容量が不足しています（{mb:.0f} MB）",
            "free space (journalctl --vacuum-size=50M; remove old files)",
            "空き容量を増やす",
        )
    if usage.free < ctx.disk_warn_bytes:
        return _warn(
            "disk",
            text + f" (< {ctx.disk_warn_bytes // 2**20} MB)",
            f"空き容量が少なくなっています（{mb:.0f} MB）",
            "free space (journalctl --vacuum-size=50M)",
            "空き容量を増やす",
        )
    return _ok("disk", text, f"空き容量は十分です（{mb:.0f} MB）")


def check_outbox(ctx: DoctorContext, s: DeviceSettings) -> Check:
    path = ctx.layout.host(s.outbox_path)
    if not path.exists():
        return _ok("outbox", "no sealed case waiting", "送信待ちの事案はありません")
    from sync import Outbox, SyncError

    try:
        with Outbox(path) as outbox:
            n = outbox.pending_count()
    except SyncError as exc:
        return _fail(
            "outbox",
            f"outbox unreadable ({exc.code})",
            "送信待ちの保存領域を読めません",
            "keep the device; contact support (do not delete the outbox)",
            "端末を保管し、サポートに連絡する",
        )
    if n:
        return _warn(
            "outbox",
            f"{n} sealed case(s) waiting to be sent",
            f"送信待ちの事案が {n} 件あります",
            "bring the device online; they leave by themselves",
            "通信できる状態にすると自動で送信されます",
        )
    return _ok("outbox", "no sealed case waiting", "送信待ちの事案はありません")


def run_doctor(ctx: DoctorContext | None = None) -> DoctorReport:
    """Run every check; never raises for a broken device (that is what the report is for)."""
    c = ctx or DoctorContext()
    report = DoctorReport()
    try:
        s = c.settings or load_device_settings(c.config or c.layout.config)
    except SettingsError as exc:
        report.checks.append(
            _fail(
                "settings",
                f"settings invalid ({exc.detail})",
                "端末の設定に誤りがあります",
                f"fix {c.config or c.layout.config}",
                "設定ファイルを直す",
            )
        )
        return report
    report.checks += [
        check_pcscd(c, s),
        check_nfcpy(c, s),
        check_udev(c),
        check_blacklist(c),
        check_card(c, s),
        check_platform(c, s),
        check_enrollment(c, s),
        check_clock(c, s),
        check_device_key(c, s),
        check_roots(c, s),
        check_revocation(c, s),
        check_disk(c, s),
        check_outbox(c, s),
    ]
    return report
