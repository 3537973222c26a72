"""Prometheus metrics of one hub process, served on a separate loopback port.

Why a separate port and not a signed route: a Prometheus scraper cannot sign requests
with an operator's Ed25519 key, and an unsigned ``/metrics`` on the public port would tell
anyone the platform's load. ``kyukyu hub serve --metrics-port P`` serves the metrics on
``127.0.0.1:P`` only (scrape it on the host, or through an authenticated tunnel).

With several uvicorn workers the supervising process serves the sum over the workers
(prometheus_client's multiprocess mode: ``PROMETHEUS_MULTIPROC_DIR``, set by
``kyukyu hub serve`` before the workers start).

Labels carry fixed words only (a reason, a result): no case, patient, device or hospital
identifier is ever a label or a value.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["AuditLagCollector", "HubMetrics", "serve_metrics"]

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


class AuditLagCollector(Collector):
    """Audit chain lag, read from the database at scrape time: rows not yet chained
    (``audit_pending``, PostgreSQL) and the age of the oldest of them."""

    def __init__(self, db_url: str) -> None:
        self._db_url = db_url
        self._engine: Any = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        rows = GaugeMetricFamily(
            "kyukyu_hub_audit_pending_rows", "Audit rows committed but not yet hash-chained"
        )
        lag = GaugeMetricFamily(
            "kyukyu_hub_audit_lag_seconds", "Age of the oldest audit row not yet hash-chained"
        )
        count, age = self._read()
        if count is not None:
            rows.add_metric([], count)
            lag.add_metric([], age)
        yield rows
        yield lag

    def _read(self) -> tuple[float | None, float]:
        try:
            from sqlalchemy import create_engine, text

            if self._engine is None:
                self._engine = create_engine(self._db_url, pool_size=1, max_overflow=0)
            with self._engine.connect() as conn:
                if conn.dialect.name != "postgresql":
                    return 0.0, 0.0  # SQLite chains in the case's transaction
                count, oldest = conn.execute(
                    text("SELECT count(*), min(at) FROM audit_pending")
                ).one()
            age = 0.0
            if oldest is not None:
                from hub_server.core.db import utcnow

                age = max(0.0, (utcnow() - oldest).total_seconds())
            return float(count), age
        except Exception as exc:  # a scrape never fails because the database is busy
            log.warning("audit lag not read (%s)", type(exc).__name__)
            return None, 0.0


def serve_metrics(
    port: int, *, db_url: str, registry: CollectorRegistry | None = None, host: str = "127.0.0.1"
) -> tuple[Any, Any]:
    """Serve ``/metrics`` on ``host:port`` (loopback) in a thread; returns (server, thread).

    Without ``registry`` the metrics of every worker process are summed (multiprocess
    mode); the audit lag is read from ``db_url``.
    """
    from prometheus_client import start_http_server

    if registry is None:
        from prometheus_client import multiprocess as mp

        registry = CollectorRegistry()
        mp.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    registry.register(AuditLagCollector(db_url))
    server, thread = start_http_server(port, addr=host, registry=registry)
    return server, thread


def families(text: str) -> Iterable[Any]:
    """Parse a scrape (prometheus_client's text parser), for tests and tools."""
    from prometheus_client.parser import text_string_to_metric_families

    return text_string_to_metric_families(text)
