"""Hospitals check a sealed case against the device key the hub vouches for."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sync import AuthError, ResponseError
from sync.client import PlatformClient
from sync.device_keys import HubDeviceKeys
from sync.fhir_case import build_case_bundle
from sync.receiver import HospitalClient, ReceivedCase, Receiver, ReceiverState
from sync.seal import seal_json
from tests.sync._data import case_record
from tests.sync._net import World, serve
from tests.sync._realhub import RealHub, make_real_hub, populate


@pytest.fixture
def hub_world(tmp_path: Path) -> Iterator[tuple[RealHub, str, World]]:
    hub = make_real_hub(tmp_path)
    world = World()
    with serve(hub.app) as url:
        populate(hub, url, world, 2)
        yield hub, url, world


class Counting:
    """A hospital client whose requests are counted (to see the cache work)."""

    def __init__(self, client: HospitalClient) -> None:
        self.client = client
        self.calls = 0

    @property
    def http(self) -> Any:
        outer = self

        class _Http:
            def request_json(self, method: str, path: str, **kw: Any) -> Any:
                outer.calls += 1
                return outer.client.http.request_json(method, path, **kw)

        return _Http()


def test_hospital_gets_the_enrolled_key_signed_by_the_hub(
    hub_world: tuple[RealHub, str, World],
) -> None:
    hub, url, world = hub_world
    h = world.hospitals[0]
    with HospitalClient(url, hospital_id=h.id, key=h.signing) as client:
        counting = Counting(client)
        keys = HubDeviceKeys(counting, hub.state.hub_key.public_key)
        assert keys(world.device_id) == world.device_key.public_key()
        assert keys(world.device_id) == world.device_key.public_key()
        assert counting.calls == 1  # cached
        assert keys("no-such-device") is None


def test_answer_not_signed_by_the_pinned_hub_key_is_refused(
    hub_world: tuple[RealHub, str, World],
) -> None:
    _hub, url, world = hub_world
    h = world.hospitals[0]
    impostor = Ed25519PrivateKey.generate().public_key()
    with (
        HospitalClient(url, hospital_id=h.id, key=h.signing) as client,
        pytest.raises(ResponseError),
    ):
        HubDeviceKeys(client, impostor)(world.device_id)


def test_devices_cannot_read_device_keys(hub_world: tuple[RealHub, str, World]) -> None:
    _hub, url, world = hub_world
    with (
        PlatformClient(url, key=world.device_key, device_id=world.device_id) as device,
        pytest.raises(AuthError),
    ):
        device.http.request_json("GET", f"/v1/devices/{world.device_id}/key")


def test_receiver_opens_a_case_with_the_hub_vouched_key(
    hub_world: tuple[RealHub, str, World], tmp_path: Path
) -> None:
    hub, url, world = hub_world
    h = world.hospitals[0]
    sealed = seal_json(
        build_case_bundle(case_record("keys-0001")),
        case_id="keys-0001",
        device_id=world.device_id,
        device_key=world.device_key,
        recipients={h.id: h.hpke.public_key()},
    )
    with PlatformClient(url, key=world.device_key, device_id=world.device_id) as device:
        device.post_case("keys-0001", [h.id], sealed, idempotency_key="keys-0001")
    got: list[ReceivedCase] = []
    stop = threading.Event()
    with HospitalClient(url, hospital_id=h.id, key=h.signing) as client:
        rx = Receiver(
            client,
            hospital_key=h.hpke,
            device_key_for=HubDeviceKeys(client, hub.state.hub_key.public_key),
            state=ReceiverState(tmp_path / "rx.db"),
            on_case=lambda c: (got.append(c), stop.set()),
        )
        rx.run_once(stop)
    assert [c.case_id for c in got] == ["keys-0001"]


def test_a_closed_client_ends_the_receiver_quietly(tmp_path: Path) -> None:
    from sync import TransportError
    from tests.sync._net import Hospital

    h = Hospital(id="h-closed")
    client = HospitalClient("http://127.0.0.1:9", hospital_id=h.id, key=h.signing)
    client.close()
    with pytest.raises(TransportError):
        client.ack("case-x")
    rx = Receiver(
        client,
        hospital_key=h.hpke,
        device_key_for=lambda _d: None,
        state=ReceiverState(tmp_path / "rx.db"),
        on_case=lambda _c: None,
    )
    done = threading.Thread(target=rx.run, args=(threading.Event(),))
    done.start()
    done.join(5)
    assert not done.is_alive()
