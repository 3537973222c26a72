"""The disaster route on real processes: the platform (``kyukyu hub serve``, to kill -9),
hospital services with their direct endpoint (``kyukyu hospital serve --direct-port``,
HTTPS with a certificate of their own), devices that switch to the direct route when the
platform is out (``sync.Sender`` with ``sync.direct.DirectRoute``).

Used by tests/test_disaster.py and benchmarks/disaster_route.py (docs/disaster.md).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import ssl
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from cryptography.x509.oid import NameOID

from kyukyu.testing._fleet import HubProcess, operator_http, wait_for
from kyukyu.testing._process import ROOT, cli_env, free_port
from kyukyu.testing._staff import STAFF_PASSWORD
from kyukyu.testing._world import enroll_device

__all__ = [
    "CASE_BUNDLE",
    "DisasterDevice",
    "DisasterHospital",
    "DisasterWorld",
    "self_signed_certificate",
]

REGION = "JP-13"
#: The smallest case a hospital stores: a FHIR document Bundle that starts with a Composition.
CASE_BUNDLE = json.dumps(
    {
        "resourceType": "Bundle",
        "type": "document",
        "entry": [{"resource": {"resourceType": "Composition", "status": "final"}}],
    }
).encode()


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (PEM files): what a hospital registers for
    its direct route and devices pin."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = directory / "tls-cert.pem", directory / "tls-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    os.chmod(key_file, 0o600)
    return cert_file, key_file


def _cli(tmp: Path, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "kyukyu", *args],
        cwd=ROOT,
        env=cli_env(tmp),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@dataclass
class DisasterHospital:
    """One hospital service on its own process, with its direct endpoint."""

    id: str
    data_dir: Path
    port: int
    direct_port: int
    cert: Path
    key: Path
    hub_url: str
    hpke: X25519PublicKey
    totp: str = ""
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def direct_url(self) -> str:
        return f"https://127.0.0.1:{self.direct_port}"

    def start(self, *, roster_seconds: float = 0.5) -> DisasterHospital:
        self.log = self.data_dir.parent / f"{self.data_dir.name}.log"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kyukyu",
                "hospital",
                "serve",
                "--data-dir",
                str(self.data_dir),
                "--port",
                str(self.port),
                "--tls-cert",
                str(self.cert),
                "--tls-key",
                str(self.key),
                "--direct-port",
                str(self.direct_port),
                "--direct-url",
                self.direct_url,
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=open(self.log, "ab"),  # noqa: SIM115 - the child holds it
            env=cli_env(
                self.data_dir.parent,
                KYUKYU_HOSPITAL_ROSTER_REFRESH_SECONDS=str(roster_seconds),
                KYUKYU_HOSPITAL_DIRECT_RECONCILE_SECONDS="0.3",
            ),
            start_new_session=True,
        )
        ctx = ssl.create_default_context(cafile=str(self.cert))
        ctx.check_hostname = False

        def up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"hospital exited: {self.tail()}")
            try:
                return (
                    httpx.get(f"{self.direct_url}/direct/v1/health", verify=ctx).status_code == 200
                )
            except httpx.HTTPError:
                return False

        if not wait_for(up, 90):
            raise RuntimeError(f"hospital did not start: {self.tail()}")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(10)

    def tail(self) -> str:
        return (
            self.log.read_text(errors="replace")[-3000:] if self.log and self.log.exists() else ""
        )

    def staff(self) -> Any:
        from kyukyu.testing._staff import DashboardStaff

        return DashboardStaff(self.url, "doctor", STAFF_PASSWORD, self.totp, verify=str(self.cert))

    def rows(self, case_id: str) -> list[tuple[str, str | None, int]]:
        """(route, answer, answer_unsent) of every stored row of ``case_id`` (read-only)."""
        db = sqlite3.connect(f"file:{self.data_dir / 'hospital.db'}?mode=ro", uri=True)
        try:
            return [
                (str(r[0]), r[1], int(r[2]))
                for r in db.execute(
                    "SELECT route, answer, answer_unsent FROM cases WHERE case_id = ?", (case_id,)
                )
            ]
        finally:
            db.close()

    def report(self, case_id: str) -> str | None:
        """How handing the direct case ``case_id`` in to the platform ended (None: not
        yet, or nothing to hand in): reported | platform | refused:<code> (read-only)."""
        db = sqlite3.connect(f"file:{self.data_dir / 'hospital.db'}?mode=ro", uri=True)
        try:
            row = db.execute(
                "SELECT direct_report FROM cases WHERE case_id = ?", (case_id,)
            ).fetchone()
        finally:
            db.close()
        return None if row is None else row[0]

    def outcome(self, case_id: str) -> tuple[str | None, int]:
        """(destination, closures) of ``case_id`` as this hospital stored them (read-only)."""
        db = sqlite3.connect(f"file:{self.data_dir / 'hospital.db'}?mode=ro", uri=True)
        try:
            row = db.execute("SELECT destination FROM cases WHERE case_id = ?", (case_id,))
            found = row.fetchone()
            (closures,) = db.execute(
                "SELECT COUNT(*) FROM closures WHERE case_id = ?", (case_id,)
            ).fetchone()
        finally:
            db.close()
        return (None if found is None else found[0]), int(closures)

    def roster(self) -> dict[str, Any]:
        path = self.data_dir / "device-roster.json"
        if not path.exists():
            return {}
        try:
            body: dict[str, Any] = json.loads(path.read_text())["roster"]
        except (ValueError, KeyError):
            return {}
        return body


class DisasterDevice:
    """A device: seals cases into its outbox; a thread sends them (``sync.Sender`` with the
    direct route) until stopped."""

    def __init__(
        self,
        world: DisasterWorld,
        device_id: str,
        key: Ed25519PrivateKey,
        *,
        unreachable_seconds: float,
    ) -> None:
        from sync import Backoff
        from sync.client import PlatformClient
        from sync.direct import DirectRoute, direct_hospitals
        from sync.outbox import Outbox
        from sync.sender import Sender

        self.id, self.key = device_id, key
        workdir = world.tmp / f"device-{device_id}"
        workdir.mkdir(parents=True, exist_ok=True)
        self.outbox = Outbox(workdir / "outbox.db", backoff=Backoff(base=0.2, cap=1.0))
        self.client = PlatformClient(
            world.hub_url,
            key=key,
            device_id=device_id,
            hub_public_key=world.hub_public_key(),
            timeout=httpx.Timeout(2.0),
        )
        # The signed directory, fetched while the platform is up (as at the start of a shift).
        self.directory = {h.id: h for h in self.client.hospital_directory(35.68, 139.76)}
        self.direct = DirectRoute(
            self.outbox,
            direct_hospitals(self.directory.values()),
            key=key,
            device_id=device_id,
            unreachable_seconds=unreachable_seconds,
            backoff=Backoff(base=0.2, cap=1.0),
            timeout=httpx.Timeout(2.0),
            poll_seconds=0.3,
        )
        self.sender = Sender(
            self.outbox,
            self.client,
            platform_backoff=Backoff(base=0.2, cap=0.5),
            direct=self.direct,
        )
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="disaster-device")
        self._n = 0

    def start(self) -> DisasterDevice:
        self._thread.start()
        return self

    def send(self, recipients: list[str]) -> str:
        """Seal one case for ``recipients`` and queue it; its case id."""
        from sync.seal import seal_case

        self._n += 1
        case_id = f"{self.id}-{self._n:04d}"
        sealed = seal_case(
            CASE_BUNDLE,
            case_id=case_id,
            device_id=self.id,
            device_key=self.key,
            recipients={h: self.directory[h].hpke_public_key for h in recipients},
        )
        with self._lock:
            self.outbox.enqueue(sealed)
        return case_id

    def destination(self, case_id: str, hospital_id: str, recipients: list[str]) -> None:
        body = json.dumps({"hospital_id": hospital_id, "via": "answer"}).encode()
        with self._lock:
            self.outbox.enqueue_intent(case_id, "destination", body, recipients)

    def close_case(self, case_id: str, recipients: list[str], reason: str = "搬送拒否") -> None:
        from sync.closure import seal_closure

        sealed = seal_closure(
            case_id=case_id,
            reason=reason,
            closed_at=dt.datetime.now(dt.UTC),
            device_id=self.id,
            device_key=self.key,
            recipients={h: self.directory[h].hpke_public_key for h in recipients},
        )
        with self._lock:
            assert self.outbox.close_case(case_id, sealed, force=True) is True

    def pending(self) -> int:
        with self._lock:
            return self.outbox.pending_count()

    def direct_done(self, case_id: str, kind: str = "case") -> set[str]:
        with self._lock:
            return self.outbox.direct.done(case_id, kind)

    def answers(self, case_id: str) -> dict[str, str]:
        with self._lock:
            status = self.outbox.status(case_id)
        return {} if status is None else dict(status.answers)

    def route(self, case_id: str) -> str | None:
        with self._lock:
            status = self.outbox.status(case_id)
        return None if status is None else status.route

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                changes = self.direct.changes
                sent, failed = self.sender.send_due()
            if not sent and not failed and changes == self.direct.changes:
                self._stop.wait(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        self.sender.close()
        self.direct.close()
        self.client.close()
        self.outbox.close()


@dataclass
class DisasterWorld:
    """The platform, hospitals and devices of one run (``start``, ``close``)."""

    tmp: Path
    hub_port: int = field(default_factory=free_port)
    hub: HubProcess | None = None
    hospitals: list[DisasterHospital] = field(default_factory=list)
    devices: list[DisasterDevice] = field(default_factory=list)
    _op: Any = None

    @property
    def hub_url(self) -> str:
        return f"http://127.0.0.1:{self.hub_port}"

    @property
    def db(self) -> Path:
        return self.tmp / "hub.db"

    def start_hub(self) -> None:
        self.hub = HubProcess(
            [
                "--db",
                f"sqlite:///{self.db}",
                "--port",
                str(self.hub_port),
                "--env",
                "test",
                "--key",
                str(self.tmp / "hub.key"),
            ],
            self.tmp / "hub.log",
            env={
                "KYUKYU_HUB_CONFIG": str(self.tmp / "absent.env"),
                "KYUKYU_HUB_SSE_KEEPALIVE_SECONDS": "0.5",
            },
        ).start()
        from kyukyu.testing._serve import wait_until_serving

        wait_until_serving(self.hub_url, self.hub.proc, why=self.hub.tail)

    def kill_hub(self) -> None:
        assert self.hub is not None
        self.hub.kill()

    @property
    def operator(self) -> Any:
        if self._op is None:
            self._op = operator_http(self.hub_url, self.tmp / "op.json")
        return self._op

    def hub_public_key(self) -> Any:
        from sync.signing import public_key_from_b64

        doc = httpx.get(f"{self.hub_url}/v1/hub-key", timeout=10).json()
        return public_key_from_b64(doc["public_key"])

    def start(self, *, hospitals: int, devices: int, unreachable_seconds: float) -> None:
        self.tmp.mkdir(parents=True, exist_ok=True)
        init = [sys.executable, "-m", "kyukyu", "hub", "init", "--db", f"sqlite:///{self.db}"]
        subprocess.run(
            [*init, "--out", str(self.tmp / "op.json")],
            check=True,
            env=cli_env(self.tmp),
            cwd=ROOT,
            capture_output=True,
        )
        self.start_hub()
        op = self.operator
        op.request_json(
            "PUT", f"/v1/regions/{REGION}", body={"name": "東京都", "direct_route": True}
        )
        for i in range(hospitals):
            token = op.request_json(
                "POST",
                "/v1/hospital-enrollment-tokens",
                body={"name": f"災害病院{i}", "region": REGION},
            )["token"]
            data_dir = self.tmp / f"hospital{i}"
            doc = _cli(
                self.tmp, "hospital", "init", "--data-dir", str(data_dir),
                "--platform", self.hub_url, "--token", token,
                "--lat", str(35.68 + i / 100), "--lon", "139.76",
            )  # fmt: skip
            user = _cli(
                self.tmp, "hospital", "user", "add", "doctor", "--data-dir", str(data_dir),
                "--password", STAFF_PASSWORD,
            )  # fmt: skip
            cert, tls_key = self_signed_certificate(data_dir.parent / f"tls{i}")
            from sync.signing import b64d

            hpke = X25519PublicKey.from_public_bytes(b64d(doc["hpke_public_key"]))
            self.hospitals.append(
                DisasterHospital(
                    id=doc["hospital_id"],
                    data_dir=data_dir,
                    port=free_port(),
                    direct_port=free_port(),
                    cert=cert,
                    key=tls_key,
                    hub_url=self.hub_url,
                    hpke=hpke,
                    totp=user["totp_secret"],
                )
            )
        enrolled = [
            enroll_device(op, self.hub_url, "東京消防庁", f"救急{i}", region=REGION)
            for i in range(devices)
        ]
        for h in self.hospitals:
            h.start()
        # Every hospital registered its address and holds a roster with every device.
        ids = {d for d, _ in enrolled}

        def ready() -> bool:
            doc = op.request_json(
                "GET", "/v1/hospitals/directory", params={"lat": 35.6, "lon": 139.7}
            )
            listed = {h["id"] for h in doc["directory"]["hospitals"] if h.get("direct_url")}
            rosters_ok = all(
                ids <= {d["id"] for d in h.roster().get("devices", [])} for h in self.hospitals
            )
            return listed >= {h.id for h in self.hospitals} and rosters_ok

        if not wait_for(ready, 60):
            raise RuntimeError("hospitals did not register their direct route")
        for device_id, key in enrolled:
            self.devices.append(
                DisasterDevice(
                    self, device_id, key, unreachable_seconds=unreachable_seconds
                ).start()
            )

    def lose_device(self, device: DisasterDevice) -> None:
        """The device is destroyed: it stops and its outbox never reaches the platform."""
        device.stop()
        self.devices.remove(device)

    def platform_cases(self, case_id: str) -> int:
        db = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            return int(
                db.execute("SELECT COUNT(*) FROM cases WHERE id = ?", (case_id,)).fetchone()[0]
            )
        finally:
            db.close()

    def audit_details(self, case_id: str) -> list[dict[str, Any]]:
        db = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            rows = db.execute(
                "SELECT details FROM audit WHERE subject = ? AND action = 'case_created'",
                (f"case:{case_id}",),
            ).fetchall()
        finally:
            db.close()
        return [json.loads(r[0]) for r in rows]

    def audit_verifies(self) -> bool:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "kyukyu",
                "hub",
                "audit",
                "verify",
                "--db",
                f"sqlite:///{self.db}",
            ],
            cwd=ROOT,
            env=cli_env(self.tmp),
            capture_output=True,
            timeout=120,
        )
        return out.returncode == 0

    def close(self) -> None:
        for d in self.devices:
            d.stop()
        for h in self.hospitals:
            h.stop()
        if self._op is not None:
            self._op.close()
        if self.hub is not None:
            self.hub.stop()
