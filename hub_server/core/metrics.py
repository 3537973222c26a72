"""Prometheus metrics of one hub process, served on a separate loopback port.

Why a separate port and not a signed route: a Prometheus scraper cannot sign requests
with an operator's Ed25519 key, and an unsigned ``/metrics`` on the public port would tell
anyone the platform's load. ``kyukyu hub serve --metrics-port P`` serves the metrics on
``127.0.0.1:P`` only (scrape it on the host, or through an authenticated tunnel).

With several uvicorn workers the supervising process serves the sum over the workers
(prometheus_client's multiprocess mode: ``PROMETHEUS_MULTIPROC_DIR``, set by
``kyukyu hub serve`` before the workers start).

Labels carry fixed words (a reason, a result, a route template, a status) and, where an
operator must know which one, operational identifiers: a hospital's id (its backlog), a
CRL issuer, a trust root's name, a process id. No case, patient or device identifier is
ever a label or a value.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = [
    "DatabaseCollector",
    "HubMetrics",
    "LiveMultiProcessCollector",
    "ProcessesCollector",
    "TrustRootsCollector",
    "serve_metrics",
    "worker_pids",
]

log = logging.getLogger("hub_server.metrics")

#: Seconds from an event's hand-over (commit, or NOTIFY arrival) to its stream write.
PUSH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
OUTBOX_BUCKETS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000)

#: Why a stream ended (the only label values of ``kyukyu_hub_streams_closed_total``).
CLOSE_REASONS = ("behind", "revoked", "disconnected", "shutdown")


def multiprocess() -> bool:
    env = os.environ
    return bool(env.get("PROMETHEUS_MULTIPROC_DIR") or env.get("prometheus_multiproc_dir"))


def _mode(mode: str) -> dict[str, Any]:
    """A gauge's way of joining the workers' values (multiprocess mode only)."""
    return {"multiprocess_mode": mode} if multiprocess() else {}


class HubMetrics:
    """The metric objects of one hub state (own registry: tests build many states)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        gauge_mode: dict[str, Any] = {"multiprocess_mode": "livesum"} if multiprocess() else {}
        self.streams_open = Gauge(
            "kyukyu_hub_streams_open", "Event streams open now", registry=r, **gauge_mode
        )
        self.streams_closed = Counter(
            "kyukyu_hub_streams_closed",
            "Event streams ended, by reason (behind: the reader fell too far behind)",
            ["reason"],
            registry=r,
        )
        self.cases = Counter(
            "kyukyu_hub_cases", "Cases accepted (201, first time; rate() gives cases/s)", registry=r
        )
        self.cases_refused = Counter(
            "kyukyu_hub_cases_refused",
            "Case submissions refused with 503 + Retry-After by admission control",
            registry=r,
        )
        self.cases_inflight = Gauge(
            "kyukyu_hub_cases_inflight",
            "Case submissions admitted and not yet answered",
            registry=r,
            **gauge_mode,
        )
        self.push_seconds = Histogram(
            "kyukyu_hub_push_seconds",
            "Seconds from an event's hand-over in this process (its commit here, or its "
            "NOTIFY from another worker) to its bytes given to the recipient's socket",
            buckets=PUSH_BUCKETS,
            registry=r,
        )
        self.outbox_depth = Histogram(
            "kyukyu_hub_device_outbox_depth",
            "Unsent cases in a device's outbox as it reports (X-Kyukyu-Outbox-Depth on POST "
            "/v1/cases, counting the case being sent)",
            buckets=OUTBOX_BUCKETS,
            registry=r,
        )
        for reason in CLOSE_REASONS:
            self.streams_closed.labels(reason=reason)
        self.responses = Counter(
            "kyukyu_hub_responses",
            "HTTP responses by method, route template (never a path with its ids) and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.outage = Gauge(
            "kyukyu_hub_outage",
            "1 while this process answers 503 for an outage of this kind (database_unavailable, "
            "storage_full, database_busy), else 0",
            ["kind"],
            registry=r,
            **_mode("livemax"),
        )
        self.db_pool_in_use = Gauge(
            "kyukyu_hub_db_pool_in_use",
            "Database connections checked out of the pool now (pool: main, autocommit)",
            ["pool"],
            registry=r,
            **gauge_mode,
        )
        self.db_pool_waiting = Gauge(
            "kyukyu_hub_db_pool_waiting",
            "Requests waiting for a pooled database connection now (pool: main, autocommit)",
            ["pool"],
            registry=r,
            **gauge_mode,
        )
        self.listener_connected = Gauge(
            "kyukyu_hub_listener_connected",
            "1 if the PostgreSQL LISTEN connection (cross-process push) is up; with several "
            "workers the lowest of them",
            registry=r,
            **_mode("livemin"),
        )


class DatabaseCollector(Collector):
    """What the database says, read at scrape time by the process serving ``/metrics``
    (one short connection): whether it answers, the audit chain's lag, each hospital's
    backlog and the CRLs' age. A database that does not answer gives
    ``kyukyu_hub_database_up 0`` and no other sample, never a failed scrape."""

    def __init__(self, db_url: str, *, clock: Any = None) -> None:
        self._db_url = db_url
        self._engine: Any = None
        self._clock = clock

    def _connect(self) -> Any:
        if self._engine is None:
            from sqlalchemy import create_engine
            from sqlalchemy.pool import NullPool

            pg = self._db_url.startswith("postgresql")
            self._engine = create_engine(
                self._db_url,
                poolclass=NullPool,  # a fresh connection per scrape: no stale one after a restart
                hide_parameters=True,
                connect_args={"connect_timeout": 3} if pg else {},
            )
        return self._engine.connect()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("kyukyu_hub_database_up", "1 if the database answered this scrape")
        rows = GaugeMetricFamily(
            "kyukyu_hub_audit_pending_rows", "Audit rows committed but not yet hash-chained"
        )
        lag = GaugeMetricFamily(
            "kyukyu_hub_audit_lag_seconds", "Age of the oldest audit row not yet hash-chained"
        )
        unacked = GaugeMetricFamily(
            "kyukyu_hub_hospital_unacked_cases",
            "Cases sent to this hospital (an event on its stream) that it has not acknowledged",
            labels=["hospital"],
        )
        oldest = GaugeMetricFamily(
            "kyukyu_hub_hospital_oldest_unacked_seconds",
            "Age of the oldest case this hospital has not acknowledged (0: none)",
            labels=["hospital"],
        )
        crl = GaugeMetricFamily(
            "kyukyu_hub_crl_this_update_timestamp_seconds",
            "thisUpdate of the newest CRL ingested, per issuer (Unix time)",
            labels=["issuer"],
        )
        try:
            conn = self._connect()
            conn.exec_driver_sql("SELECT 1")
        except Exception as exc:  # a scrape never fails because the database is down
            log.info("database not reached for metrics (%s)", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        try:
            with conn:
                count, age, backlog, crls = self._read(conn)
        except Exception as exc:  # the database answered; its readings are missing
            log.warning("database readings for metrics failed (%s)", type(exc).__name__)
            yield up
            return
        rows.add_metric([], count)
        lag.add_metric([], age)
        for hospital, n, seconds in backlog:
            unacked.add_metric([hospital], n)
            oldest.add_metric([hospital], seconds)
        for issuer, at in crls:
            crl.add_metric([issuer], at)
        yield from (up, rows, lag, unacked, oldest, crl)

    def _read(self, conn: Any) -> tuple[float, float, list[tuple[str, float, float]], list[Any]]:
        from sqlalchemy import text

        from hub_server.core.db import utcnow

        now = utcnow()

        def age(at: Any) -> float:
            if at is None:
                return 0.0
            if isinstance(at, str):  # SQLite: a raw query gives the stored text
                from datetime import datetime

                at = datetime.fromisoformat(at)
            if at.tzinfo is None:  # SQLite gives naive UTC
                at = at.replace(tzinfo=now.tzinfo)
            return max(0.0, float((now - at).total_seconds()))

        count, pending_oldest = 0, None
        if conn.dialect.name == "postgresql":  # SQLite chains in the case's transaction
            count, pending_oldest = conn.execute(
                text("SELECT count(*), min(at) FROM audit_pending")
            ).one()
        backlog_rows = conn.execute(
            text(
                "SELECT h.id, count(c.id), min(c.created_at) FROM hospitals h"
                " LEFT JOIN case_recipients r ON r.hospital_id = h.id AND r.acked_at IS NULL"
                " LEFT JOIN cases c ON c.id = r.case_id"
                " WHERE NOT h.revoked GROUP BY h.id"
            )
        ).all()
        crl_rows = conn.execute(
            text(
                "SELECT issuer, max(this_update) FROM revocation_versions"
                " WHERE this_update IS NOT NULL GROUP BY issuer"
            )
        ).all()
        backlog = [(str(h), float(n), age(at)) for h, n, at in backlog_rows]
        crls = [(str(issuer), now.timestamp() - age(at)) for issuer, at in crl_rows]
        return float(count), age(pending_oldest), backlog, crls


class TrustRootsCollector(Collector):
    """The expiry of each root the hub trusts for patient certificates (read at scrape)."""

    def __init__(self, roots_dir: Any, *, allow_test_roots: bool) -> None:
        self._dir = roots_dir
        self._allow_test = allow_test_roots

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "kyukyu_hub_trust_root_not_after_timestamp_seconds",
            "End of validity of each trusted root certificate (Unix time)",
            labels=["root", "purpose"],
        )
        try:
            from edge.jpki.trust import TrustStore

            store = TrustStore.from_directory(self._dir, allow_test_roots=self._allow_test)
            for anchor in store.anchors:
                family.add_metric(
                    [anchor.name, str(anchor.purpose)],
                    anchor.certificate.not_valid_after_utc.timestamp(),
                )
        except Exception as exc:  # a missing directory shows as no sample
            log.info("trust roots not read for metrics (%s)", type(exc).__name__)
        yield family


def _alive(pid: int) -> bool:
    """A running process (not gone, not a zombie waiting to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] != b"Z"


def worker_pids(path: str) -> tuple[list[int], list[int]]:
    """(live, dead) pids of the processes that wrote metric files in ``path``."""
    pids: set[int] = set()
    for name in os.listdir(path):
        stem, _, ext = name.rpartition(".")
        tail = stem.rpartition("_")[2]
        if ext == "db" and tail.isdigit():
            pids.add(int(tail))
    live = sorted(p for p in pids if _alive(p))
    return live, sorted(pids - set(live))


class LiveMultiProcessCollector(Collector):
    """prometheus_client's ``MultiProcessCollector`` after clearing the live gauges of
    workers that died (``mark_process_dead``): a crashed worker's open streams and
    in-flight cases no longer count. Its counters stay (they only ever grow)."""

    def __init__(self, path: str) -> None:
        from prometheus_client import multiprocess as mp

        self._path = path
        self._inner = mp.MultiProcessCollector(None, path)  # type: ignore[no-untyped-call]
        self._cleared: set[int] = set()

    def collect(self) -> Iterator[Any]:
        from prometheus_client import multiprocess as mp

        _, dead = worker_pids(self._path)
        for pid in dead:
            if pid not in self._cleared:
                mp.mark_process_dead(pid, self._path)  # type: ignore[no-untyped-call]
                self._cleared.add(pid)
                log.warning("metrics of dead worker %d cleared", pid, extra={"worker": pid})
        yield from self._inner.collect()  # type: ignore[no-untyped-call]


class ProcessesCollector(Collector):
    """CPU, memory and open files of this process and of every live worker, labelled by
    ``pid`` (prometheus_client's process metrics, read from ``/proc``)."""

    def __init__(self, path: str | None) -> None:
        self._path = path

    def collect(self) -> Iterator[Any]:
        from prometheus_client import ProcessCollector
        from prometheus_client.metrics_core import Metric

        pids = [os.getpid()]
        if self._path is not None:
            pids += [p for p in worker_pids(self._path)[0] if p != os.getpid()]
        merged: dict[str, Metric] = {}
        for pid in pids:
            collector = ProcessCollector(pid=functools.partial(int, pid), registry=None)
            for family in collector.collect():
                out = merged.get(family.name)
                if out is None:
                    out = merged[family.name] = Metric(
                        family.name, family.documentation, family.type
                    )
                for sample in family.samples:
                    out.add_sample(sample.name, {**sample.labels, "pid": str(pid)}, sample.value)
        yield from merged.values()


def serve_metrics(
    port: int,
    *,
    db_url: str,
    registry: CollectorRegistry | None = None,
    host: str = "127.0.0.1",
    trust_roots_dir: Any = None,
    allow_test_roots: bool = False,
) -> tuple[Any, Any]:
    """Serve ``/metrics`` on ``host:port`` (loopback) in a thread; returns (server, thread).

    Without ``registry`` the metrics of every worker process are summed (multiprocess
    mode; dead workers' live gauges cleared); the database's readings are taken from
    ``db_url`` at each scrape, the trust roots' expiry from ``trust_roots_dir``.
    """
    from prometheus_client import start_http_server

    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR") if registry is None else None
    if registry is None:
        registry = CollectorRegistry()
        if path is None:
            raise RuntimeError("PROMETHEUS_MULTIPROC_DIR is not set")
        registry.register(LiveMultiProcessCollector(path))
    registry.register(DatabaseCollector(db_url))
    registry.register(ProcessesCollector(path))
    if trust_roots_dir is not None:
        registry.register(TrustRootsCollector(trust_roots_dir, allow_test_roots=allow_test_roots))
    server, thread = start_http_server(port, addr=host, registry=registry)
    return server, thread


def families(text: str) -> Iterable[Any]:
    """Parse a scrape (prometheus_client's text parser), for tests and tools."""
    from prometheus_client.parser import text_string_to_metric_families

    return text_string_to_metric_families(text)
