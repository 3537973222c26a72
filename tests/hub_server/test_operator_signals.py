"""What an operator sees: the alert rules (promtool), a full disk answered 503 and logged
once, the outage kinds of real database errors, log lines without SQL parameters or key
bytes, and the live gauges of a dead worker cleared. The PostgreSQL outage on real
processes is ``test_outage.py``."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy import exc as sa_exc

from door.logs import JsonFormatter, RepeatFilter
from hub_server.core.config import Settings
from hub_server.core.outage import (
    DATABASE_BUSY,
    DATABASE_UNAVAILABLE,
    STORAGE_FULL,
    classify,
)
from tests.hub_server._promtool import promtool
from tests.hub_server._support import hub_in_process

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "hardware" / "prometheus"


def test_alert_rules_are_valid_and_fire_on_the_hubs_series() -> None:
    r = promtool("check", "rules", str(RULES / "kyukyu-hub.rules.yml"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout
    # The unit tests of the rules: database down, a hospital 60 s behind, the 5xx rate.
    r = promtool("test", "rules", str(RULES / "kyukyu-hub.rules.test.yml"))
    assert r.returncode == 0, r.stdout + r.stderr


def _full_sqlite(tmp_path: Path) -> BaseException:
    engine = create_engine(f"sqlite:///{tmp_path / 'full.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (b BLOB)"))
    try:
        with engine.begin() as conn:
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
            conn.exec_driver_sql(f"PRAGMA max_page_count = {pages}")
            conn.execute(text("INSERT INTO t VALUES (:b)"), {"b": os.urandom(100_000)})
    except sa_exc.OperationalError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError("the insert did not fail")


def test_outage_kinds_of_real_database_errors(tmp_path: Path) -> None:
    assert classify(_full_sqlite(tmp_path)) == STORAGE_FULL
    # A pool with no connection left within its timeout.
    engine = create_engine(
        f"sqlite:///{tmp_path / 'pool.db'}", pool_size=1, max_overflow=0, pool_timeout=0.05
    )
    with engine.connect(), pytest.raises(sa_exc.TimeoutError) as busy:
        engine.connect()
    engine.dispose()
    assert classify(busy.value) == DATABASE_BUSY
    # Nobody listening where the database should be.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pg = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/x")
    with pytest.raises(sa_exc.OperationalError) as down:
        pg.connect()
    assert classify(down.value) == DATABASE_UNAVAILABLE
    # A bug is not an outage.
    assert classify(ValueError("x")) is None
    assert classify(sa_exc.IntegrityError("INSERT", {}, Exception("dup"))) is None


@pytest.mark.anyio
async def test_full_disk_is_503_with_retry_after_logged_once_and_ends_with_a_write(
    tmp_path: Path, roots_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(
        db_url=f"sqlite:///{tmp_path / 'hub.db'}",
        environment="test",
        trust_roots_dir=roots_dir,
        allow_test_roots=True,
        pool_size=3,
    )
    full = {"on": False}
    async with hub_in_process(settings) as hub:

        @event.listens_for(hub.state.engine, "checkout")
        def _limit(dbapi_conn: object, _record: object, _proxy: object) -> None:
            cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
            pages = cur.execute("PRAGMA page_count").fetchone()[0]
            cur.execute(f"PRAGMA max_page_count = {pages if full['on'] else 1073741823}")
            cur.close()

        device = await hub.enroll_device()
        hid, _ = await hub.register_hospital()
        assert (await hub.post_case(device, [hid])).status_code == 201
        caplog.set_level(logging.INFO)
        full["on"] = True
        for _ in range(3):
            r = await hub.post_case(device, [hid], envelope=os.urandom(150_000))
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == STORAGE_FULL
            assert r.headers["retry-after"] == "5"
        full["on"] = False
        assert (await hub.post_case(device, [hid], envelope=os.urandom(150_000))).status_code == 201
    outage = [r for r in caplog.records if r.name == "hub_server.outage"]
    assert [getattr(r, "state", None) for r in outage] == ["started", "ended"]
    assert getattr(outage[0], "outage", None) == STORAGE_FULL
    access = [r for r in caplog.records if r.name == "hub_server.access"]
    assert [getattr(r, "status", None) for r in access][-4:] == [503, 503, 503, 201]
    assert {getattr(r, "route", None) for r in access} >= {"/v1/cases"}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_database_error_logs_without_parameters_details_or_key_bytes() -> None:
    secret_nonce = "Zm9vYmFyQmF6UXV4MTIzNDU2Nzg5MGFiY2RlZg"
    orig = Exception(
        'duplicate key value violates unique constraint "nonces_pkey"\n'
        f"DETAIL:  Key (key_id, nonce)=(device:abc, {secret_nonce}) already exists."
    )
    err = sa_exc.IntegrityError("INSERT INTO nonces VALUES (%(k)s, %(n)s)", {"n": "x"}, orig)
    record = logging.LogRecord("hub_server.errors", logging.ERROR, __file__, 1, "failed", (), None)
    try:
        raise err
    except sa_exc.IntegrityError:
        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    data = json.loads(line)
    assert data["exc_type"] == "IntegrityError"
    assert "nonces_pkey" in data["traceback"]  # what failed stays readable
    assert secret_nonce not in line
    assert "device:abc" not in line
    assert "'n': 'x'" not in line
    # Repeats: once a minute, then with the count of those left out.
    repeats = RepeatFilter(window=60.0)
    passed = [repeats.filter(logging.makeLogRecord(dict(record.__dict__))) for _ in range(5)]
    assert passed == [True, False, False, False, False]


_WORKER = """
import os, sys
from prometheus_client import CollectorRegistry, Gauge, Counter
r = CollectorRegistry()
Gauge("kyukyu_hub_streams_open", "x", registry=r, multiprocess_mode="livesum").set(2)
Counter("kyukyu_hub_cases", "x", registry=r).inc(5)
if sys.argv[1] == "stay":
    print("ready", flush=True)
    sys.stdin.read()
"""


def test_live_gauges_of_a_dead_worker_are_cleared_counters_stay(tmp_path: Path) -> None:
    from hub_server.core.metrics import LiveMultiProcessCollector

    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", _WORKER, "die"], env=env, check=True, timeout=60)
    alive = subprocess.Popen(
        [sys.executable, "-c", _WORKER, "stay"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert alive.stdout is not None
        assert alive.stdout.readline().strip() == "ready"
        values = {
            s.name: s.value
            for family in LiveMultiProcessCollector(str(tmp_path)).collect()
            for s in family.samples
        }
    finally:
        alive.communicate("", timeout=60)
    assert values["kyukyu_hub_streams_open"] == 2  # the live worker's only
    assert values["kyukyu_hub_cases_total"] == 10  # both workers' counts
