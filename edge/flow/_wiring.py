"""Build a ``CaseFlow`` from the device's settings: the real reader, platform and outbox."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from edge.jpki import JpkiError
from edge.jpki.revocation import RevocationSnapshot
from edge.jpki.trust import TrustStore
from edge.reader import CardWaiter, ReaderError
from edge.settings import DeviceSettings, SettingsError
from edge.trust_bundle import (
    TrustBundleError,
    TrustBundleFile,
    device_trust_store,
    fetch_trust_bundle,
)
from sync import PlatformError, SyncError
from sync.availability import AvailabilityBook
from sync.client import (
    HospitalDirectory,
    PlatformClient,
    parse_directory,
    verify_hub_signature,
)
from sync.direct import DirectRoute, direct_hospitals
from sync.outbox import Outbox
from sync.signing import public_key_from_b64

from ._card import JpkiCardReading
from ._flow import CaseFlow, DeviceIdentity

__all__ = ["load_directory", "open_card_waiter", "open_flow"]

log = logging.getLogger("edge.flow")


def open_card_waiter(settings: DeviceSettings) -> CardWaiter | None:
    """The configured reader (pcscd or nfcpy), or None when it cannot be opened."""
    try:
        if settings.reader == "nfc":
            from edge.reader.nfc import NfcReader

            return NfcReader(settings.reader_name or "usb")
        from edge.reader.pcsc import PcscReaders

        return PcscReaders(settings.reader_name)
    except ReaderError:
        return None


def load_revocation(path: Path, hub_key: Ed25519PublicKey) -> RevocationSnapshot | None:
    """The revocation snapshot stored at provisioning, if the pinned hub key signed it.

    A missing, unreadable, forged or tampered file gives None (logged, no card data):
    reading still works, the offline check only lacks the revocation list, and
    ``kyukyu doctor`` tells the technician. A snapshot is never used unchecked.
    """

    def check(payload: bytes, signature: bytes) -> None:
        hub_key.verify(signature, payload)

    if not path.is_file():
        return None
    try:
        return RevocationSnapshot.load(path, verify_signature=check)
    except (JpkiError, InvalidSignature) as exc:
        log.warning("revocation snapshot %s not used: %s", path, type(exc).__name__)
        return None


def load_directory(path: Path, hub_key: Ed25519PublicKey) -> HospitalDirectory:
    """The hub-signed hospital directory stored at provisioning, checked against the pinned
    key on every load; empty when missing or not genuine (the platform is asked instead)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return parse_directory(verify_hub_signature(doc, "directory", hub_key))
    except (OSError, ValueError, KeyError, TypeError, PlatformError):
        return HospitalDirectory()


def _trust_refresher(
    settings: DeviceSettings, platform: PlatformClient, hub_key: Ed25519PublicKey
) -> Callable[[], TrustStore | None]:
    """GET /v1/trust-bundle, keep it (never rolled back), and rebuild the device's store.

    Called from the flow's worker (the card read), never the UI thread. A refused bundle or
    no network leaves the store as it is (None)."""
    state = TrustBundleFile(settings.trust_bundle_path, hub_key)

    def refresh() -> TrustStore | None:
        try:
            fetch_trust_bundle(platform, state, allow_test=settings.test_roots)
        except (SyncError, TrustBundleError) as exc:
            log.info("trust bundle not updated (%s)", exc.code)
            return None
        except OSError as exc:  # the bundle file could not be written: keep reading cards
            log.warning("trust bundle not stored (%s)", type(exc).__name__)
            return None
        return device_trust_store(settings)

    return refresh


def _device_key(settings: DeviceSettings) -> Ed25519PrivateKey:
    try:
        key = load_pem_private_key(settings.key_file.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise SettingsError(f"device key {settings.key_file}: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SettingsError(f"device key {settings.key_file}: not Ed25519")
    return key


def open_flow(settings: DeviceSettings, *, cards: CardWaiter | None = None) -> CaseFlow:
    """The device's flow: enrolled identity, platform client, outbox, trust store, reader.

    Raises:
        SettingsError: the device is not enrolled, its key or the pinned platform key is
            unusable, or its JPKI roots cannot be loaded.
    """
    if not settings.enrolled or settings.hub_url is None or settings.device_id is None:
        raise SettingsError("the device is not enrolled (hub_url, device_id, hub_public_key)")
    key = _device_key(settings)
    try:
        hub_key = public_key_from_b64(str(settings.hub_public_key))
    except ValueError as exc:
        raise SettingsError(f"KYUKYU_EDGE_HUB_PUBLIC_KEY: {exc}") from None
    platform = PlatformClient(
        settings.hub_url,
        key=key,
        device_id=settings.device_id,
        hub_public_key=hub_key,
        ca_file=settings.hub_ca_file,
    )
    outbox = Outbox(settings.outbox_path)
    # The pinned roots plus the trust bundle last accepted from the platform.
    try:
        trust = device_trust_store(settings)
    except JpkiError as exc:
        raise SettingsError(f"KYUKYU_EDGE_ROOTS_DIR: {exc.detail or exc.message_en}") from None
    revocation = load_revocation(settings.revocation_path, hub_key)
    if cards is None:
        cards = open_card_waiter(settings)
    directory = load_directory(settings.directory_path, hub_key)
    # The direct route (docs/disaster.md): the hospitals whose region opted in, from the
    # signed directory; used once the platform has been out for direct_unreachable_s.
    direct = DirectRoute(
        outbox,
        direct_hospitals(directory),
        key=key,
        device_id=settings.device_id,
        unreachable_seconds=settings.direct_unreachable_s,
    )
    closers: list[Callable[[], None]] = [platform.close, outbox.close]
    if cards is not None:
        closers.append(cards.close)
    return CaseFlow(
        cards=cards,
        card_reading=JpkiCardReading(
            trust,
            revocation,
            platform=platform,
            on_platform_verified=_trust_refresher(settings, platform, hub_key),
        ),
        platform=platform,
        outbox=outbox,
        device=DeviceIdentity(
            device_id=settings.device_id,
            key=key,
            name=settings.device_name,
            fire_department=settings.fire_department,
            crew_member=settings.crew_member,
            team_leader=settings.team_leader,
            callback_phone=settings.callback_phone,
        ),
        base=(settings.base_lat, settings.base_lon),
        closers=closers,
        directory=directory,
        removal_marker=settings.removal_marker_path,
        availability=AvailabilityBook(settings.availability_path),
        direct=direct,
    )
