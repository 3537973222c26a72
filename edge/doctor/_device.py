"""The device's own state: key, pinned JPKI roots, revocation snapshot, disk, outbox."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

from edge.provision import (
    DATA_DIR,
    SERVICE_USER,
    DeviceLayout,
    ProvisionError,
    load_device_key,
    load_snapshot,
)
from edge.settings import DeviceSettings
from errbase import KyukyuError

from ._hardware import roots_dir
from ._report import Check, fail, ok, warn

ROOT_WARN_DAYS = 180
KEY_WARN_DAYS = 30


def check_device_key(s: DeviceSettings, layout: DeviceLayout, now: datetime) -> Check:
    fix_en = "kyukyu provision retire, then kyukyu provision enroll (a new key)"
    fix_ja = "廃止処理の後に再登録して鍵を更新する"
    path = layout.host(s.key_file)
    if not s.enrolled:
        return fail(
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
        return fail(
            "device_key",
            f"device key unusable: {getattr(exc, 'detail', exc)}",
            "端末の鍵を読めません",
            fix_en,
            fix_ja,
        )
    if st.st_mode & 0o077:
        return fail(
            "device_key",
            f"device key is mode {st.st_mode & 0o777:o} (must be 600)",
            "端末の鍵の権限が広すぎます",
            f"chmod 600 {s.key_file}",
            f"chmod 600 {s.key_file}",
        )
    try:
        owner = layout.user(SERVICE_USER).uid
    except ProvisionError:  # no service user in this root: nothing to compare with
        owner = st.st_uid
    if st.st_uid != owner:
        return fail(
            "device_key",
            f"device key not owned by {SERVICE_USER}",
            "端末の鍵の所有者が違います",
            f"chown {SERVICE_USER}: {s.key_file}",
            f"chown {SERVICE_USER}: {s.key_file}",
        )
    try:
        born = datetime.fromisoformat(s.enrolled_at) if s.enrolled_at else None
    except ValueError:
        born = None
    if born is None:
        return ok("device_key", "device key in place", "端末の鍵は有効です")
    expires = born + timedelta(days=s.device_key_max_age_days)
    left = expires - now
    if left <= timedelta(0):
        return fail(
            "device_key",
            f"device key expired {expires.date().isoformat()}",
            "端末の鍵の有効期限が切れています",
            fix_en,
            fix_ja,
        )
    if left < timedelta(days=KEY_WARN_DAYS):
        return warn(
            "device_key",
            f"device key expires {expires.date().isoformat()}",
            "端末の鍵の有効期限が近づいています",
            fix_en,
            fix_ja,
        )
    return ok(
        "device_key",
        f"device key valid until {expires.date().isoformat()}",
        "端末の鍵は有効です",
    )


def check_roots(s: DeviceSettings, layout: DeviceLayout, now: datetime) -> Check:
    from edge.jpki import JpkiError
    from edge.jpki.trust import TrustStore

    fix_en = "kyukyu provision trust install --bundled (or <J-LIS root files>)"
    fix_ja = "ルート証明書を登録する（kyukyu provision trust install）"
    try:
        store = TrustStore.from_directory(roots_dir(layout, s), allow_test_roots=s.test_roots)
    except JpkiError as exc:
        return fail(
            "roots",
            f"JPKI roots not usable ({exc.code})",
            "JPKI ルート証明書を使えません",
            fix_en,
            fix_ja,
        )
    auth = [a for a in store.anchors if a.purpose in ("auth", "test")]
    live = [a for a in auth if a.certificate.not_valid_after_utc > now]
    if not live:
        return fail(
            "roots",
            "no valid user-authentication root",
            "有効な利用者証明用ルートがありません",
            fix_en,
            fix_ja,
        )
    expired = sorted(a.name for a in store.anchors if a.certificate.not_valid_after_utc <= now)
    first = min(a.certificate.not_valid_after_utc for a in live)
    if s.test_roots:
        return warn(
            "roots",
            f"{len(store.anchors)} roots, TEST mode (test roots accepted)",
            "テストモードです（テスト用ルートを受け入れます）",
            "production devices: remove KYUKYU_EDGE_TEST_ROOTS",
            "本番端末ではテストモードを外す",
        )
    if expired:
        return warn(
            "roots",
            f"expired roots installed: {', '.join(expired)}",
            "期限切れのルート証明書があります",
            f"remove them from {s.roots_dir}",
            "期限切れのルートを削除する",
        )
    if first - now < timedelta(days=ROOT_WARN_DAYS):
        return warn(
            "roots",
            f"a root expires {first.date().isoformat()}",
            "ルート証明書の期限が近づいています",
            fix_en,
            fix_ja,
        )
    names = ", ".join(sorted(a.name for a in store.anchors))
    return ok(
        "roots",
        f"JPKI roots {names}; valid until at least {first.date().isoformat()}",
        "JPKI ルート証明書は有効です",
    )


def check_revocation(s: DeviceSettings, layout: DeviceLayout, now: datetime) -> Check:
    from sync.signing import public_key_from_b64

    fix_en = "bring the device online and run kyukyu provision refresh (the timer does it hourly)"
    fix_ja = "通信できる状態で kyukyu provision refresh を実行する"
    if not s.hub_public_key:
        return fail(
            "revocation",
            "no pinned platform key (not enrolled)",
            "端末が登録されていません",
            "kyukyu provision enroll",
            "kyukyu provision enroll を実行する",
        )
    try:
        data = layout.host(s.revocation_path).read_bytes()
        snapshot = load_snapshot(data, public_key_from_b64(s.hub_public_key))
    except FileNotFoundError:
        return fail("revocation", "no revocation snapshot", "失効情報がありません", fix_en, fix_ja)
    except (KyukyuError, OSError, ValueError):
        return fail(
            "revocation",
            "revocation snapshot damaged or not signed by the platform",
            "失効情報が壊れているか署名が正しくありません",
            fix_en,
            fix_ja,
        )
    issued = datetime.fromtimestamp(snapshot.issued_at, UTC)
    hours = (now - issued).total_seconds() / 3600
    limit = s.revocation_max_age_hours
    text = f"revocation snapshot #{snapshot.sequence}, {hours:.1f} h old (limit {limit:g} h)"
    if hours > limit:
        return fail(
            "revocation", "EXPIRED " + text, "失効情報の有効期限が切れています", fix_en, fix_ja
        )
    if hours > limit / 2:
        return warn("revocation", text, "失効情報が古くなっています", fix_en, fix_ja)
    return ok("revocation", text, "失効情報は最新です")


def check_disk(
    s: DeviceSettings, layout: DeviceLayout, *, warn_bytes: int, fail_bytes: int
) -> Check:
    path = layout.host(s.data_dir)
    probe = path if path.exists() else layout.host(DATA_DIR).parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    usage = shutil.disk_usage(probe)
    mb = usage.free / 1024 / 1024
    text = f"{mb:.0f} MB free for {s.data_dir}"
    if usage.free < fail_bytes:
        return fail(
            "disk",
            text + f" (< {fail_bytes // 2**20} MB)",
            f"空き容量が不足しています（{mb:.0f} MB）",
            "free space (journalctl --vacuum-size=50M; remove old files)",
            "空き容量を増やす",
        )
    if usage.free < warn_bytes:
        return warn(
            "disk",
            text + f" (< {warn_bytes // 2**20} MB)",
            f"空き容量が少なくなっています（{mb:.0f} MB）",
            "free space (journalctl --vacuum-size=50M)",
            "空き容量を増やす",
        )
    return ok("disk", text, f"空き容量は十分です（{mb:.0f} MB）")


def check_outbox(s: DeviceSettings, layout: DeviceLayout) -> Check:
    path = layout.host(s.outbox_path)
    none_waiting = ok("outbox", "no sealed case waiting", "送信待ちの事案はありません")
    if not path.exists():
        return none_waiting
    from sync import Outbox, SyncError

    try:
        with Outbox(path) as outbox:
            n = outbox.pending_count()
    except SyncError as exc:
        return fail(
            "outbox",
            f"outbox unreadable ({exc.code})",
            "送信待ちの保存領域を読めません",
            "keep the device; contact support (do not delete the outbox)",
            "端末を保管し、サポートに連絡する",
        )
    if n:
        return warn(
            "outbox",
            f"{n} sealed case(s) waiting to be sent",
            f"送信待ちの事案が {n} 件あります",
            "bring the device online; they leave by themselves",
            "通信できる状態にすると自動で送信されます",
        )
    return none_waiting
