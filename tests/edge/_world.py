"""A real platform for the flow and UI tests: hub under uvicorn, synthetic patients with
virtual cards, three hospitals, an enrolled device; and a tap-able in-process reader."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from edge.card_sim import CardImage, KeyPool, LoopbackConnection, TestCA, VirtualCard
from edge.flow import CaseFlow, DeviceIdentity, JpkiCardReading
from edge.jpki.trust import TrustStore
from edge.reader import Cancelled, Connection, NoCard
from sync import TransportError
from sync.xwing import XWingPrivateKey

PIN = "1234"
SCENE = (35.6812, 139.7671)


@dataclass
class WorldHospital:
    name: str
    lat: float
    lon: float
    hpke: X25519PrivateKey = field(default_factory=X25519PrivateKey.generate)
    signing: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    id: str = ""
    xwing: XWingPrivateKey | None = None  # its hybrid key (envelope v2), when it has one


@dataclass
class World:
    url: str
    ca_dir: Path
    ca: TestCA
    state: Any
    hospitals: list[WorldHospital]
    device_id: str
    device_key: Ed25519PrivateKey
    patient_card: Path
    keys: KeyPool

    @property
    def hub_public_key(self) -> Any:
        return self.state.hub_key.public_key

    def trust(self) -> TrustStore:
        return TrustStore.from_directory(self.ca_dir, allow_test_roots=True)

    def patient(self) -> CardImage:
        """A fresh copy of the seeded patient's card (PIN counters in memory only)."""
        return CardImage.load(self.patient_card)

    def card(self, profile: str = "card", **kw: Any) -> CardImage:
        return self.ca.issue_card(profile=profile, key_factory=self.keys, **kw)

    def platform(self) -> Any:
        from sync.client import PlatformClient

        return PlatformClient(
            self.url,
            key=self.device_key,
            device_id=self.device_id,
            hub_public_key=self.hub_public_key,
        )

    def hospital_client(self, h: WorldHospital) -> Any:
        from sync.receiver import HospitalClient

        return HospitalClient(self.url, hospital_id=h.id, key=h.signing)


HOSPITALS = (  # nearest first from SCENE: 2, 0, 1
    ("テスト中央病院", 35.6850, 139.7700),
    ("テスト救命救急センター", 35.7000, 139.7500),
    ("テスト駅前クリニック", 35.6815, 139.7675),
)


@contextmanager
def running_world(
    workdir: Path, *, patients: int = 20, hybrid: tuple[int, ...] = (), **hub_settings: Any
) -> Iterator[World]:
    """Start the hub (``kyukyu.testing.running_platform``), register hospitals, enroll.

    ``hybrid``: the indices of ``HOSPITALS`` registered with a hybrid (X-Wing) key too;
    ``hub_settings`` over the platform's (e.g. ``require_pq=True``)."""
    from kyukyu.testing import running_platform

    keys = KeyPool(3)
    with running_platform(
        workdir,
        patients=patients,
        key_factory=keys,
        operator_name="edge-test-operator",
        sse_keepalive_seconds=0.3,
        # One device identity serves every flow of a test session (several at once).
        max_streams_per_identity=64,
        **hub_settings,
    ) as platform:
        hospitals = [
            WorldHospital(n, lat, lon, xwing=XWingPrivateKey.generate() if i in hybrid else None)
            for i, (n, lat, lon) in enumerate(HOSPITALS)
        ]
        for h in hospitals:
            h.id = platform.register_hospital(
                h.name,
                h.lat,
                h.lon,
                hpke_public_key=h.hpke.public_key(),
                signing_public_key=h.signing.public_key(),
                xwing_public_key=h.xwing.public_key() if h.xwing is not None else None,
            )
        device_id, device_key = platform.enroll_device("テスト消防本部", "テスト救急1")
        yield World(
            url=platform.url,
            ca_dir=platform.ca_dir,
            ca=TestCA.load(platform.ca_dir),
            state=platform.state,
            hospitals=hospitals,
            device_id=device_id,
            device_key=device_key,
            patient_card=platform.cards[0],
            keys=keys,
        )


class TapReader:
    """A ``CardWaiter`` over in-process virtual cards: ``tap(card)`` puts one in the field."""

    def __init__(self) -> None:
        self._cards: queue.Queue[VirtualCard] = queue.Queue()
        self._cancelled = threading.Event()
        self.waiting = threading.Event()
        self.removals = 0

    def tap(self, card: VirtualCard) -> None:
        self._cards.put(card)

    def wait_for_card(
        self, *, timeout: float | None = None, cancel: threading.Event | None = None
    ) -> Connection:
        self._cancelled.clear()
        self.waiting.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                if self._cancelled.is_set() or (cancel is not None and cancel.is_set()):
                    raise Cancelled()
                try:
                    card = self._cards.get(timeout=0.02)
                except queue.Empty:
                    if deadline is not None and time.monotonic() > deadline:
                        raise NoCard("timeout") from None
                    continue
                card.insert()
                return LoopbackConnection(card)
        finally:
            self.waiting.clear()

    def wait_for_removal(
        self, *, timeout: float | None = None, cancel: threading.Event | None = None
    ) -> None:
        self.removals += 1  # in-process cards leave the field when the test says so

    def cancel(self) -> None:
        self._cancelled.set()

    def close(self) -> None:
        self._cancelled.set()


def make_flow(
    world: World,
    data_dir: Path,
    *,
    cards: Any = None,
    platform: Any = None,
    revocation: Any = None,
    background: bool = True,
    **extra: Any,
) -> CaseFlow:
    from sync.outbox import Outbox

    platform = platform or world.platform()
    outbox = Outbox(data_dir / "outbox.sqlite3")
    flow = CaseFlow(
        cards=cards,
        card_reading=JpkiCardReading(world.trust(), revocation),
        platform=platform,
        outbox=outbox,
        device=DeviceIdentity(world.device_id, world.device_key, "テスト救急1", "テスト消防本部"),
        base=SCENE,
        background=background,
        closers=[outbox.close],
        **extra,
    )
    flow.start()
    return flow


def wait_until(pred: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def write_device_config(world: World, data_dir: Path, **extra: str) -> Path:
    """A device's settings file (``KYUKYU_EDGE_*`` lines) and key, as provisioning leaves them."""
    from kyukyu.testing import write_device_settings

    settings: dict[str, object] = {
        "hub_url": world.url,
        "device_id": world.device_id,
        "roots_dir": world.ca_dir,
        "base_lat": SCENE[0],
        "base_lon": SCENE[1],
        **extra,
    }
    return write_device_settings(
        data_dir, device_key=world.device_key, hub_public_key=world.hub_public_key, **settings
    )


def newest_case_id(world: World) -> str | None:
    """The newest case the hub holds for the world's device (what a hospital would get)."""
    from sqlmodel import col, select

    from hub_server.models import Case

    with world.state.session() as session:
        row = session.exec(
            select(Case)
            .where(Case.device_id == world.device_id)
            .order_by(col(Case.created_at).desc())
        ).first()
        return None if row is None else str(row.id)


class Switchable:
    """The real platform client behind a switch: ``down`` plays a lost network."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.down = True

    def device_events(self, after: int = 0, stop: Any = None, on_keepalive: Any = None) -> Any:
        # An open stream breaks too when the network goes down.
        if self.down:
            raise TransportError("network down (test)")

        def keepalive() -> None:
            if self.down:
                raise TransportError("network down (test)")
            if on_keepalive is not None:
                on_keepalive()

        for ev in self.inner.device_events(after=after, stop=stop, on_keepalive=keepalive):
            if self.down:
                raise TransportError("network down (test)")
            yield ev
        if self.down:
            raise TransportError("network down (test)")

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def call(*a: Any, **kw: Any) -> Any:
            if self.down:
                raise TransportError("network down (test)")
            return attr(*a, **kw)

        return call
