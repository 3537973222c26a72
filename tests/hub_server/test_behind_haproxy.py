"""The real HAProxy (Debian's) with the shipped configuration (docs/haproxy/kyukyu-hub.cfg)
in front of two real ``kyukyu hub serve`` processes on one PostgreSQL: the limits count the
client the proxy vouches for (PROXY protocol v2 for connections, X-Forwarded-For for
requests), streams spread over both hubs and are capped per identity across them, and a
hub killed behind the proxy loses no case."""

from __future__ import annotations

import csv
import shutil
import socket
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kyukyu.testing import (
    EnrolledDevice,
    FleetDevice,
    FleetReceiver,
    HubProcess,
    RegisteredHospital,
    make_fleet,
    wait_for,
)
from sync.signing import sign_request
from tests.components import fresh_postgres_database
from tests.hub_server.guard._served import free_port, kyukyu, raw, read_all, status_of

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "docs" / "haproxy" / "kyukyu-hub.cfg"
PER_CLIENT = 3  # connections per client address, per hub process
STREAMS = 2  # streams per identity, across the platform


@dataclass
class Site:
    lb: str
    hubs: list[HubProcess]
    hub_ports: list[int]
    metrics: list[int]
    hospitals: list[RegisteredHospital]
    devices: list[EnrolledDevice]
    tmp: Path


def _health_from(url: str, source: str) -> int:
    with httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=5) as c:
        return c.get(f"{url}/v1/health").status_code


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    assert shutil.which("haproxy"), "haproxy is missing (scripts/bootstrap installs it)"
    tmp = tmp_path_factory.mktemp("lb")
    with fresh_postgres_database() as db, ExitStack() as stack:
        r = kyukyu("hub", "init", "--db", db, "--out", str(tmp / "op.json"))
        assert r.returncode == 0, r.stderr
        ports, metrics, hubs = [free_port(), free_port()], [free_port(), free_port()], []
        for i, (port, mport) in enumerate(zip(ports, metrics, strict=True)):
            hub = HubProcess(
                [
                    "--db",
                    db,
                    "--port",
                    str(port),
                    "--env",
                    "test",
                    "--no-migrate",
                    "--key",
                    str(tmp / "hub.key"),
                    "--metrics-port",
                    str(mport),
                    "--forwarded-allow-ips",
                    "127.0.0.1",
                    "--proxy-protocol",
                ],
                tmp / f"hub{i}.log",
                env={
                    "KYUKYU_HUB_CONFIG": str(tmp / "absent.env"),
                    "KYUKYU_HUB_MAX_CONNECTIONS_PER_CLIENT": str(PER_CLIENT),
                    "KYUKYU_HUB_MAX_STREAMS_PER_IDENTITY": str(STREAMS),
                    "KYUKYU_HUB_UNSIGNED_BURST": "10",
                    "KYUKYU_HUB_UNSIGNED_RATE": "1",
                },
            ).start()
            stack.callback(hub.stop)
            hubs.append(hub)
        lb_port = free_port()
        env = {
            "KYUKYU_LB_BIND": f"127.0.0.1:{lb_port}",
            "KYUKYU_HUB_1": f"127.0.0.1:{ports[0]}",
            "KYUKYU_HUB_2": f"127.0.0.1:{ports[1]}",
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        }
        # The shipped file unchanged, plus a stats socket for this test only: the fixture
        # waits until the proxy itself counts both hubs up.
        stats = tmp / "haproxy.sock"
        extra = tmp / "stats.cfg"
        extra.write_text(f'global\n    stats socket "{stats}" mode 600 level user\n')
        files = ["-f", str(CONFIG), "-f", str(extra)]
        check = subprocess.run(["haproxy", "-c", *files], env=env, capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        proxy = subprocess.Popen(
            ["haproxy", "-db", *files],
            env=env,
            stdout=open(tmp / "haproxy.log", "wb"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )

        def stop_proxy() -> None:
            proxy.terminate()
            proxy.wait(10)

        stack.callback(stop_proxy)
        lb = f"http://127.0.0.1:{lb_port}"

        def both_up() -> bool:
            assert proxy.poll() is None, (tmp / "haproxy.log").read_text()[-2000:]
            for hub in hubs:
                assert hub.proc is not None
                assert hub.proc.poll() is None, hub.tail()
            # The proxy's health checks may have begun before the hubs listened and marked
            # them down (then `rise 2` brings them back): wait for the proxy's own state,
            # not for one request that happened to get through.
            if _server_states(stats) != {"hub1": "UP", "hub2": "UP"}:
                return False
            try:  # each hub's metrics port
                return all(
                    httpx.get(f"http://127.0.0.1:{m}/metrics", timeout=2).status_code == 200
                    for m in metrics
                )
            except httpx.HTTPError:
                return False

        assert wait_for(both_up, 60, 0.2), (
            _server_states(stats),
            (tmp / "haproxy.log").read_text()[-2000:],
        )
        assert _health_from(lb, "127.0.0.8") == 200
        assert wait_for(lambda: _streams_open(metrics) is not None, 10)
        hospitals, devices = make_fleet(lb, tmp / "op.json", hospitals=14, devices=2)
        yield Site(lb, hubs, ports, metrics, hospitals, devices, tmp)


def _server_states(stats: Path) -> dict[str, str]:
    """The hubs' states as the proxy counts them (``show stat`` on its stats socket)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(stats))
            s.sendall(b"show stat\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
    except OSError:
        return {}
    rows = csv.DictReader(data.decode().removeprefix("# ").splitlines())
    return {
        row["svname"]: row["status"]
        for row in rows
        if row.get("pxname") == "kyukyu_hubs" and row["svname"] not in ("BACKEND", "FRONTEND")
    }


def _streams_open(metrics: list[int]) -> list[float] | None:
    out = []
    for port in metrics:
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
        except httpx.HTTPError:
            return None
        for family in text_string_to_metric_families(text):
            if family.name == "kyukyu_hub_streams_open":
                out.append(sum(s.value for s in family.samples))
    return out


class _Stream:
    """A hospital's event stream through the proxy, from ``source``, held open."""

    def __init__(self, lb: str, hospital: RegisteredHospital, source: str) -> None:
        self.client = httpx.Client(
            base_url=lb,
            transport=httpx.HTTPTransport(local_address=source),
            timeout=httpx.Timeout(10, read=None),
        )
        path = "/v1/hospitals/me/events"
        headers = sign_request(hospital.signing, f"hospital:{hospital.id}", "GET", path, b"")
        self.cm = self.client.stream("GET", path, headers=headers)
        self.response = self.cm.__enter__()
        self.status = self.response.status_code
        self.code = ""
        if self.status != 200:
            self.response.read()
            self.code = self.response.json()["error"]["code"]

    def close(self) -> None:
        self.cm.__exit__(None, None, None)
        self.client.close()


def test_limits_count_the_client_the_proxy_vouches_for(site: Site) -> None:
    # Straight to a hub from the trusted proxy's address without a PROXY header: refused,
    # so nobody on the proxy's host can pass for another client.
    s = raw(site.hub_ports[0], b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
    answer, _ = read_all(s)
    s.close()
    assert status_of(answer) == 400
    assert b"bad_proxy_header" in answer

    # Unsigned requests: one from each of 30 addresses all pass; 30 at once from one
    # address pass its bucket (10 per hub process) and are refused, whatever the proxy's
    # address (all 60 reached the hubs from 127.0.0.1).
    many = Counter(_health_from(site.lb, f"127.0.1.{i}") for i in range(1, 31))
    assert many == Counter({200: 30})
    one: Counter[int] = Counter()
    lock = threading.Lock()

    def hit() -> None:
        code = _health_from(site.lb, "127.0.2.1")
        with lock:
            one[code] += 1

    threads = [threading.Thread(target=hit) for _ in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert one[429] >= 30 - 2 * 10 - 2, one
    assert one[200] <= 2 * 10 + 2, one

    # Connections: eight streams of eight hospitals from one address: PER_CLIENT on each
    # hub, the rest refused at once (429 too_many_connections), counted by the PROXY
    # header's source; streams spread over both hubs.
    opened: list[_Stream] = []
    try:
        results = []
        for hospital in site.hospitals[:8]:
            stream = _Stream(site.lb, hospital, "127.0.3.1")
            results.append((stream.status, stream.code))
            opened.append(stream)
        assert Counter(results) == Counter(
            {(200, ""): 2 * PER_CLIENT, (429, "too_many_connections"): 8 - 2 * PER_CLIENT}
        )
        assert _streams_open(site.metrics) == [PER_CLIENT, PER_CLIENT]
        # Another client behind the same proxy is not charged for the first one's.
        for hospital in site.hospitals[8:10]:
            stream = _Stream(site.lb, hospital, "127.0.3.2")
            opened.append(stream)
            assert stream.status == 200, stream.code
    finally:
        for stream in opened:
            stream.close()
    assert wait_for(lambda: _streams_open(site.metrics) == [0, 0], 10)

    # Streams per identity across both hubs: STREAMS in all, one on each hub; the next is
    # refused wherever it lands.
    hospital = site.hospitals[10]
    held = [_Stream(site.lb, hospital, f"127.0.4.{i}") for i in (1, 2)]
    try:
        assert [s.status for s in held] == [200, 200]
        assert _streams_open(site.metrics) == [1, 1]
        for i in (3, 4):
            extra = _Stream(site.lb, hospital, f"127.0.4.{i}")
            extra.close()
            assert (extra.status, extra.code) == (429, "too_many_streams")
    finally:
        for stream in held:
            stream.close()

    # Its slots come back when its streams end.
    def reopen() -> bool:
        again = _Stream(site.lb, hospital, "127.0.4.9")
        again.close()
        return again.status == 200

    assert wait_for(reopen, 10, 0.3)


def test_a_hub_killed_behind_the_proxy_loses_no_case(site: Site) -> None:
    receivers = [
        FleetReceiver(site.lb, h, site.devices, site.tmp / "rx", local_address=f"127.0.5.{i}")
        for i, h in enumerate(site.hospitals[11:13], start=1)
    ]
    recipients = site.hospitals[11:13]
    devices = [
        FleetDevice(site.lb, d, recipients, site.tmp / "dev", local_address=f"127.0.6.{i}")
        for i, d in enumerate(site.devices, start=1)
    ]
    try:
        for r in receivers:
            r.start()
        for d in devices:
            d.start()
            d.queue(15)
        assert wait_for(lambda: all(len(r.received()) >= 10 for r in receivers), 60)
        site.hubs[0].kill()  # kill -9, streams and requests in flight
        for d in devices:
            d.queue(15)
        posted = sorted(c for d in devices for c in d.posted)
        assert len(posted) == 60

        def all_there() -> bool:
            return all(sorted(set(r.received())) == posted for r in receivers)

        assert wait_for(all_there, 90, 0.5), [len(set(r.received())) for r in receivers]
        for r in receivers:  # handed over exactly once each
            assert sorted(r.received()) == posted
        assert all(d.pending() == 0 for d in devices)
        statuses = sum((d.transport.snapshot() for d in devices), Counter())
        assert statuses["201"] >= 60, statuses
    finally:
        for d in devices:
            d.stop()
        for r in receivers:
            r.stop()
