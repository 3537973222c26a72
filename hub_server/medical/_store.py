"""The synthetic source's own tables (``med_*``) and the look-up over them.

One row per patient: the opaque patient key (subject CN of the user-auth
certificate) and the compact JSON record. SQLAlchemy Core only: it is
synthetic development data, separate from the platform's own tables and
migrations, so ``create_all`` on its own MetaData is enough.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import (
    Column,
    Engine,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    create_engine,
    delete,
    func,
    select,
)
from sqlalchemy.exc import DBAPIError

from hub_server.medical._bundle import build_summary_bundle
from hub_server.medical._errors import MedicalRecordUnreadable, MedicalSourceUnavailable
from hub_server.medical._record import Record

__all__ = ["MedicalSource", "SqlMedicalSource", "open_source", "patients_table"]

log = logging.getLogger(__name__)

metadata = MetaData()

patients_table = Table(
    "med_patient",
    metadata,
    Column("patient_key", String(64), primary_key=True),
    Column("record", Text, nullable=False),
)


@runtime_checkable
class MedicalSource(Protocol):
    """Where the hub gets a patient's emergency summary (the adapter seam)."""

    def summary(
        self, patient_key: str, *, now: datetime, full: bool = False
    ) -> dict[str, Any] | None:
        """The FHIR R4B document Bundle for ``patient_key``, or None when unknown."""
        ...


def make_engine(db_url: str) -> Engine:
    """An engine for ``db_url`` (SQLite file or ``postgresql+psycopg://``)."""
    return create_engine(
        db_url,
        pool_pre_ping=db_url.startswith("postgresql"),
        hide_parameters=True,  # no SQL parameter (a patient key) in an error's text (logs)
    )


class SqlMedicalSource:
    """The synthetic medical source stored in ``med_*`` tables."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        metadata.create_all(engine)
        self._lookup = select(patients_table.c.record).where(
            patients_table.c.patient_key == bindparam("key", type_=String)
        )

    def record(self, patient_key: str) -> Record | None:
        """The stored record of ``patient_key`` (None when unknown).

        Raises:
            MedicalSourceUnavailable: the database cannot be reached.
            MedicalRecordUnreadable: the stored value is not a record.
        """
        try:
            with self.engine.connect() as conn:
                raw = conn.execute(self._lookup, {"key": patient_key}).scalar_one_or_none()
        except DBAPIError as exc:
            # Only the class name: the driver's message may quote the parameters.
            log.warning("medical source unavailable: %s", type(exc.orig).__name__)
            raise MedicalSourceUnavailable() from None
        if raw is None:
            return None
        try:
            rec = json.loads(raw)
        except ValueError:
            raise MedicalRecordUnreadable() from None
        if not isinstance(rec, dict) or rec.get("v") != 1:
            raise MedicalRecordUnreadable()
        return rec

    def summary(
        self, patient_key: str, *, now: datetime, full: bool = False
    ) -> dict[str, Any] | None:
        """The emergency summary Bundle (``full``: the 5-year view); None if unknown.

        Raises:
            MedicalSourceUnavailable: the database cannot be reached.
            MedicalRecordUnreadable: the stored record cannot be turned into a summary.
        """
        rec = self.record(patient_key)
        if rec is None:
            return None
        try:
            return build_summary_bundle(rec, now=now, full=full)
        except (KeyError, TypeError, ValueError):
            log.warning("medical record unreadable (format v1 expected)")
            raise MedicalRecordUnreadable() from None

    def count(self) -> int:
        """How many patients the source holds."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(patients_table)).scalar_one())

    def patient_keys(self, limit: int | None = None) -> list[str]:
        """Patient keys (for demos and benchmarks), in key order."""
        stmt = select(patients_table.c.patient_key).order_by(patients_table.c.patient_key)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self.engine.connect() as conn:
            return [str(k) for k in conn.execute(stmt).scalars()]

    def replace_all(self, rows: Iterable[Sequence[str]], chunk: int = 5000) -> int:
        """Replaces the whole source with ``(patient_key, json_record)`` rows."""
        n = 0
        with self.engine.begin() as conn:
            if self.engine.dialect.name == "sqlite":
                # Synthetic data that can be re-seeded: no need to fsync 100k rows.
                conn.exec_driver_sql("PRAGMA synchronous=OFF")
            conn.execute(delete(patients_table))
            if self.engine.dialect.name == "postgresql":
                # COPY is several times faster than batched INSERTs for 100k rows.
                raw = conn.connection.driver_connection
                assert raw is not None
                with (
                    raw.cursor() as cur,
                    cur.copy("COPY med_patient (patient_key, record) FROM STDIN") as copy,
                ):
                    for row in rows:
                        copy.write_row(row)
                        n += 1
                return n
            batch: list[dict[str, str]] = []
            for key, rec in rows:
                batch.append({"patient_key": key, "record": rec})
                if len(batch) >= chunk:
                    conn.execute(patients_table.insert(), batch)
                    n += len(batch)
                    batch = []
            if batch:
                conn.execute(patients_table.insert(), batch)
                n += len(batch)
        return n


def open_source(db_url: str) -> SqlMedicalSource:
    """The synthetic source in ``db_url``; creates its ``med_*`` tables if missing."""
    return SqlMedicalSource(make_engine(db_url))
