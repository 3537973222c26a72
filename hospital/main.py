"""Everything of ``kyukyu hospital serve`` in one object: store, receiver, dashboard app.

``HospitalRuntime(settings)`` loads the identity, opens the database, builds the
receiving service and the FastAPI app; the app's lifespan starts and stops the
receiving service, so one uvicorn runs both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from hospital.auth import Authenticator
from hospital.fhir_export import FhirExporter
from hospital.identity import load_identity
from hospital.service import ReceivingService
from hospital.settings import HospitalSettings
from hospital.store import HospitalStore
from hospital.web import create_app

__all__ = ["HospitalRuntime"]


class HospitalRuntime:
    def __init__(self, settings: HospitalSettings) -> None:
        self.settings = settings
        self.identity = load_identity(
            settings.data_dir, settings.platform_url, settings.resolved_key_file()
        )
        self.store = HospitalStore(settings.resolved_db_url(), self.identity.keys.storage)
        self.exporter: FhirExporter | None = None
        if settings.fhir_export_dir is not None or settings.fhir_endpoint is not None:
            self.exporter = FhirExporter(settings.fhir_export_dir, settings.fhir_endpoint)
        self.service = ReceivingService(
            settings,
            self.identity,
            self.store,
            exporter=self._export if self.exporter is not None else None,
        )
        self.auth = Authenticator(self.store, settings)
        app = create_app(self.service, self.auth)

        @asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            self.service.start()
            try:
                yield
            finally:
                self.service.stop()

        app.router.lifespan_context = lifespan
        self.app = app

    def _export(self, case_id: str, bundle: dict[str, object]) -> None:
        assert self.exporter is not None
        where = self.exporter.export(case_id, dict(bundle))
        self.store.mark_exported(case_id, ", ".join(where))

    def close(self) -> None:
        if self.exporter is not None:
            self.exporter.close()
        self.store.close()
