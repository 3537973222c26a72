"""A case with an absurd sealing time (a device's wrong clock) is stored, flagged, not lost.

Through the real platform and the real receiving service, on a hospital database on
SQLite and on PostgreSQL (where ``sealed_at`` was once a 32-bit INTEGER and the case
sealed at 2038-01-19T03:14:08Z stopped the stream).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hospital.store import SEALED_AT_EARLIEST, SEALED_AT_FUTURE_LEEWAY, sealed_at_is_suspect
from tests.components import fresh_postgres_database
from tests.hospital._world import platform, wait_for

Y2038 = 2**31  # 2038-01-19T03:14:08Z, one past the 32-bit signed range
Y9999 = int(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp())
EPOCH = 0  # 1970-01-01T00:00:00Z: a clock reset
BEYOND_64_BITS = 2**70  # the envelope's JSON integer has no bound


def test_the_bounds() -> None:
    now = datetime(2026, 12, 6, 5, 0, tzinfo=UTC)
    t = int(now.timestamp())
    assert datetime.fromtimestamp(SEALED_AT_EARLIEST, UTC) == datetime(2020, 1, 1, tzinfo=UTC)
    assert SEALED_AT_FUTURE_LEEWAY == 24 * 3600
    assert not sealed_at_is_suspect(t, now)
    assert not sealed_at_is_suspect(SEALED_AT_EARLIEST, now)
    assert sealed_at_is_suspect(SEALED_AT_EARLIEST - 1, now)
    assert not sealed_at_is_suspect(t + SEALED_AT_FUTURE_LEEWAY, now)
    assert sealed_at_is_suspect(t + SEALED_AT_FUTURE_LEEWAY + 1, now)
    assert not sealed_at_is_suspect(int((now - timedelta(days=400)).timestamp()), now)
    for absurd in (Y2038, Y9999, EPOCH, BEYOND_64_BITS):
        assert sealed_at_is_suspect(absurd, now)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def hospital_db(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Settings of the hospital's database: its default SQLite file, or a PostgreSQL one."""
    if request.param == "sqlite":
        yield {}
        return
    with fresh_postgres_database() as url:
        yield {"db_url": url}


def test_absurd_sealing_times_are_stored_flagged_and_the_stream_goes_on(
    tmp_path: Path, hospital_db: dict[str, str]
) -> None:
    with platform(tmp_path) as p:
        site = p.new_hospital(tmp_path, "テスト中央病院", 35.685, 139.77)
        p.start(site, **hospital_db)
        runtime = site.runtime
        assert runtime is not None
        device = p.new_device()
        absurd = {
            device.send([site.id], created_at=at): at
            for at in (Y2038, Y9999, EPOCH, BEYOND_64_BITS)
        }
        normal = device.send([site.id])
        # The stream is in order: the normal case arrives after the absurd ones.
        wait_for(lambda: runtime.store.case(normal), what="the normal case")
        for case_id, at in absurd.items():
            row = runtime.store.case(case_id)
            assert row is not None, at
            assert row.sealed_at == min(at, 2**63 - 1)
            assert row.sealed_at_suspect is True, at
            assert runtime.store.bundle_of(row)["resourceType"] == "Bundle"
        row = runtime.store.case(normal)
        assert row is not None
        assert row.sealed_at_suspect is False
        assert runtime.store.rejections() == []
        assert {r.case_id for r in runtime.store.cases()} == {normal, *absurd}
