"""A running platform for the demo, the tests and the benchmarks, built one way.

``running_platform``: the hub (``hub_server.create_app``) under a real uvicorn on a
loopback port, on SQLite, with the test CA's roots trusted, the synthetic medical
source seeded (virtual cards issued for some patients) and an operator account; what
comes after goes over the hub's HTTP API with the operator's signed requests, as on a
real platform: hospitals registered (``register_hospital``) or given an enrollment
token (``hospital_token``, for ``kyukyu hospital init``), devices enrolled
(``enroll_device``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from sync import SignedHttp
from sync.xwing import XWingPublicKey

__all__ = [
    "Operator",
    "Platform",
    "add_operator",
    "enroll_device",
    "register_hospital",
    "running_platform",
]


@dataclass(frozen=True)
class Operator:
    """An operator account on the hub: its key and id (``key_id`` ``operator:<id>``)."""

    key: Ed25519PrivateKey
    id: str

    def http(self, base_url: str, **kw: Any) -> SignedHttp:
        """A client signing with this operator's key (``kw``: ``SignedHttp`` options)."""
        return SignedHttp(base_url, key=self.key, key_id=f"operator:{self.id}", **kw)


def add_operator(state: Any, name: str) -> Operator:
    """Create an operator in the hub's database (the first one has no one to ask)."""
    from hub_server import crud
    from hub_server.core.db import utcnow
    from sync.signing import public_key_to_b64

    key = Ed25519PrivateKey.generate()
    with state.session() as session:
        op = crud.create_operator(
            session,
            name=name,
            role="operator",
            public_key=public_key_to_b64(key.public_key()),
            now=utcnow(),
        )
        session.commit()
        return Operator(key, str(op.id))


def enroll_device(
    operator: SignedHttp,
    url: str,
    fire_department: str,
    name: str,
    hub_public_key: Ed25519PublicKey | None = None,
    *,
    region: str | None = None,
) -> tuple[str, Ed25519PrivateKey]:
    """A one-time token from the operator, then a new device enrolls with it over the
    hub's API at ``url``: the device's id and key. ``region``: the token's region code
    (e.g. ``JP-13``), None: the platform's default."""
    from sync.client import PlatformClient

    body = {"fire_department": fire_department}
    if region is not None:
        body["region"] = region
    token = operator.request_json("POST", "/v1/enrollment-tokens", body=body)["token"]
    key = Ed25519PrivateKey.generate()
    with PlatformClient(url, key=key, hub_public_key=hub_public_key) as device:
        return device.enroll(token, name), key


def register_hospital(
    operator: SignedHttp,
    name: str,
    lat: float,
    lon: float,
    *,
    hpke_public_key: X25519PublicKey,
    signing_public_key: Ed25519PublicKey,
    xwing_public_key: XWingPublicKey | None = None,
) -> str:
    """Register a hospital by its public keys (the operator's call); its id.
    ``xwing_public_key``: its hybrid key (devices seal v2 to it), None: X25519 only."""
    from sync.signing import b64e, public_key_to_b64

    body = {
        "name": name,
        "lat": lat,
        "lon": lon,
        "hpke_public_key": public_key_to_b64(hpke_public_key),  # type: ignore[arg-type]
        "signing_public_key": public_key_to_b64(signing_public_key),
    }
    if xwing_public_key is not None:
        body["xwing_public_key"] = b64e(xwing_public_key.to_bytes())
    out = operator.request_json("POST", "/v1/hospitals", body=body)
    return str(out["hospital_id"])


@dataclass
class Platform:
    """The running hub: its URL and state, the seeded cards, a signed operator client."""

    url: str
    state: Any
    ca_dir: Path
    cards: list[Path]
    patients: int
    operator: SignedHttp

    @property
    def hub_public_key(self) -> Ed25519PublicKey:
        key: Ed25519PublicKey = self.state.hub_key.public_key
        return key

    def enroll_device(self, fire_department: str, name: str) -> tuple[str, Ed25519PrivateKey]:
        return enroll_device(self.operator, self.url, fire_department, name, self.hub_public_key)

    def register_hospital(
        self,
        name: str,
        lat: float,
        lon: float,
        *,
        hpke_public_key: X25519PublicKey,
        signing_public_key: Ed25519PublicKey,
        xwing_public_key: XWingPublicKey | None = None,
    ) -> str:
        return register_hospital(
            self.operator,
            name,
            lat,
            lon,
            hpke_public_key=hpke_public_key,
            signing_public_key=signing_public_key,
            xwing_public_key=xwing_public_key,
        )

    def hospital_token(self, name: str) -> str:
        """A one-time token for ``kyukyu hospital init`` (``hospital.identity``)."""
        out = self.operator.request_json(
            "POST", "/v1/hospital-enrollment-tokens", body={"name": name}
        )
        return str(out["token"])


@contextmanager
def running_platform(
    workdir: Path,
    *,
    patients: int,
    cards: int = 1,
    key_factory: Callable[[], Any] | None = None,
    operator_name: str = "test-operator",
    **hub_settings: Any,
) -> Iterator[Platform]:
    """Start the platform in ``workdir`` (``hub.db``, ``ca/``, ``cards/``); stopped after.

    ``hub_settings``: ``hub_server`` settings fields over the defaults (dev environment,
    the test CA trusted); read with the role's own loader, so a bad ``KYUKYU_HUB_*``
    value is one line and exit 2 here too.
    """
    from edge.card_sim import TestCA
    from hub_server.core.config import load_hub_settings
    from hub_server.main import build_state, create_app
    from hub_server.medical import open_source
    from kyukyu.testing._cards import seed_with_cards
    from kyukyu.testing._serve import serve_in_thread

    workdir.mkdir(parents=True, exist_ok=True)
    ca_dir = workdir / "ca"
    TestCA.create(ca_dir)
    settings = load_hub_settings(
        None,
        **{
            "db_url": f"sqlite:///{workdir / 'hub.db'}",
            "environment": "dev",
            "trust_roots_dir": ca_dir,
            "allow_test_roots": True,
            **hub_settings,
        },
    )
    state = build_state(settings)
    seeded = seed_with_cards(
        settings.db_url,
        patients=patients,
        cards=cards,
        cards_dir=workdir / "cards",
        ca_dir=ca_dir,
        key_factory=key_factory,
    )
    state.medical_source = open_source(settings.db_url)
    operator = add_operator(state, operator_name)
    with ExitStack() as stack:
        url = stack.enter_context(serve_in_thread(create_app(settings, state=state)))
        http = stack.enter_context(operator.http(url))
        yield Platform(
            url=url,
            state=state,
            ca_dir=ca_dir,
            cards=[c.path for c in seeded.cards],
            patients=seeded.patients,
            operator=http,
        )
