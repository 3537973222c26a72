"""FHIR export (folder and a FHIR server over HTTP) and retention (`kyukyu hospital purge`)."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fhir.resources.R4B.bundle import Bundle

from kyukyu.testing import serve_in_thread
from tests.hospital._world import cli, platform, signed_in, wait_for


def _fhir_server(
    down: list[bool] | None = None, attempts: list[int] | None = None
) -> tuple[FastAPI, list[dict[str, Any]]]:
    """A minimal FHIR endpoint that records what it is sent (a real HTTP server)."""
    got: list[dict[str, Any]] = []
    app = FastAPI()

    @app.post("/fhir/Bundle", status_code=201)
    async def create(request: Request) -> Any:
        if attempts is not None:
            attempts.append(1)
        if down and down[0]:
            return JSONResponse({"resourceType": "OperationOutcome"}, status_code=503)
        assert request.headers["content-type"].startswith("application/fhir+json")
        got.append(json.loads(await request.body()))
        return {"resourceType": "OperationOutcome"}

    return app, got


def test_export_to_folder_and_endpoint_then_purge(tmp_path: Path) -> None:
    fhir_app, got = _fhir_server()
    with platform(tmp_path) as p, serve_in_thread(fhir_app) as fhir_url:
        a = p.new_hospital(tmp_path, "テスト中央病院", 35.685, 139.77)
        p.add_user(a, "alice")
        out = tmp_path / "fhir-out"
        p.start(a, fhir_export_dir=out, fhir_endpoint=f"{fhir_url}/fhir")
        device = p.new_device()
        case_id = device.send([a.id])
        rt = a.runtime
        assert rt is not None
        wait_for(lambda: rt.store.case(case_id) and rt.store.case(case_id).exported_at,
                 what="export")  # fmt: skip
        files = list(out.glob("*.json"))
        assert [f.stem for f in files] == [case_id]
        assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
        doc = json.loads(files[0].read_text())
        assert got == [doc]
        Bundle.model_validate(doc)  # valid R4(B) document Bundle
        profiles = {
            (e["resource"]["resourceType"], prof)
            for e in doc["entry"]
            for prof in e["resource"].get("meta", {}).get("profile", [])
        }
        assert ("Patient", "http://jpfhir.jp/fhir/core/StructureDefinition/JP_Patient") in profiles
        assert ("Observation", "http://hl7.org/fhir/StructureDefinition/bp") in profiles
        assert ("Observation", "http://hl7.org/fhir/StructureDefinition/heartrate") in profiles
        assert ("Observation", "http://hl7.org/fhir/StructureDefinition/vitalspanel") in profiles
        assert any(a == "Observation" and b.endswith("/bodytemp") for a, b in profiles)

        # Retention: purged now from the command line; the dashboard shows nothing any more.
        doc = cli("hospital", "purge", "--data-dir", str(a.data_dir), "--retention", "0")
        assert doc["purged"] == 1
        assert rt.store.case(case_id) is None
        with signed_in(a, "alice") as c:
            assert case_id not in c.get("/").text
        actions = [r.action for r in rt.store.audit_rows() if r.case_id == case_id]
        assert actions[0] == "case_received"
        assert "case_exported" in actions
        assert actions[-1] == "case_purged"
        # The stream does not hand it over again (the receiver remembers the case id).
        assert rt.store.cases() == []


def test_failed_export_is_retried(tmp_path: Path) -> None:
    down, attempts = [True], []
    fhir_app, got = _fhir_server(down, attempts)
    with platform(tmp_path) as p, serve_in_thread(fhir_app) as fhir_url:
        a = p.new_hospital(tmp_path, "テスト中央病院", 35.685, 139.77)
        p.start(a, fhir_endpoint=f"{fhir_url}/fhir")
        rt = a.runtime
        assert rt is not None
        case_id = p.new_device().send([a.id])
        wait_for(lambda: attempts, what="the first export attempt")
        time.sleep(0.2)  # its failure handled
        row = rt.store.case(case_id)
        assert row is not None
        assert row.exported_at is None
        assert got == []
        rt.service.housekeeping()  # the endpoint is still down: stays pending
        assert rt.store.unexported()
        down[0] = False
        rt.service.housekeeping()
        assert [b["identifier"]["value"] for b in got] == [case_id]
        assert rt.store.unexported() == []


def test_a_retried_export_creates_one_bundle(tmp_path: Path) -> None:
    """The POST is a FHIR conditional create on the Bundle's identifier (If-None-Exist):
    a server that honours it keeps one Bundle however often the export is retried."""
    from urllib.parse import parse_qs

    import httpx

    from hospital.fhir_export import FhirExporter
    from sync.fhir_case import build_case_bundle
    from tests.sync._data import case_record

    stored: dict[str, dict[str, Any]] = {}
    conditions: list[str] = []

    def server(request: httpx.Request) -> httpx.Response:
        condition = request.headers.get("if-none-exist", "")
        conditions.append(condition)
        (wanted,) = parse_qs(condition)["identifier"]
        if wanted in stored:
            return httpx.Response(200, json={"resourceType": "OperationOutcome"})
        stored[wanted] = json.loads(request.content)
        return httpx.Response(201, json={"resourceType": "OperationOutcome"})

    exporter = FhirExporter(endpoint="http://fhir.test/fhir", transport=httpx.MockTransport(server))
    bundle = build_case_bundle(case_record())
    for _ in range(3):
        assert exporter.export("case-0001", bundle) == ["http://fhir.test/fhir/Bundle"]
    exporter.close()
    system, value = bundle["identifier"]["system"], bundle["identifier"]["value"]
    assert list(stored) == [f"{system}|{value}"]
    assert len(conditions) == 3
