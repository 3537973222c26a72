"""Schemathesis against /openapi.json: no 5xx, documented statuses, responses match the schema.

Requests are signed in-process (a small ASGI wrapper picks the role a route expects), so the
fuzzer reaches the handlers instead of stopping at 401. The SSE streams never end and are
excluded. Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from hub_server.core.config import Settings
from hub_server.core.security import HubKey
from hub_server.main import build_state, create_app
from tests.components import fresh_postgres_database
from tests.hub_server._support import Signer, make_operator, new_key, pub, x25519_pub

OPERATOR_ROUTES = re.compile(
    r"^/v1/(operators|audit|hospitals$|revocation/crl|enrollment-tokens|devices/[^/]+/revoke"
    r"|refused-case-reports)"
)
HOSPITAL_ROUTES = re.compile(
    r"^/v1/(cases/[^/]+/(ack|answers)|hospitals/me/(refused-cases|direct-receipts))$"
)


class SigningWrapper:
    """Signs each incoming request as the role its route expects (test only)."""

    def __init__(self, app: Any, signers: dict[str, Signer]) -> None:
        self.app = app
        self.signers = signers

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] == "/openapi.json":
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        path = scope["path"]
        role = (
            "operator"
            if OPERATOR_ROUTES.match(path)
            else "hospital"
            if HOSPITAL_ROUTES.match(path)
            else "device"
        )
        raw = (scope.get("raw_path") or path.encode()).decode("latin-1")
        query = scope.get("query_string", b"").decode("latin-1")
        target = f"{raw}?{query}" if query else raw
        headers = self.signers[role].headers(scope["method"], target, body)
        scope = dict(scope)
        scope["headers"] = [
            *[(k, v) for k, v in scope["headers"] if not k.lower().startswith(b"x-kyukyu-")],
            *[(k.lower().encode(), v.encode()) for k, v in headers.items()],
        ]
        sent = False

        async def replay() -> Any:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


@pytest.fixture(scope="module")
def fuzz_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'hub.db'}"
        return
    request.getfixturevalue("postgres_url")  # fails clearly when PostgreSQL is absent
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(scope="module")
def api_schema(fuzz_db: str, roots_dir: Path) -> Iterator[Any]:
    from hub_server import crud
    from hub_server.core.db import utcnow

    cfg = Settings(
        db_url=fuzz_db,
        environment="test",
        trust_roots_dir=roots_dir,
        allow_test_roots=True,
    )
    state = build_state(cfg, hub_key=HubKey.generate(), medical_source=None)
    app = create_app(cfg, state=state)
    operator = make_operator(state)
    dkey, hkey = new_key(), new_key()
    with state.session() as s:
        token, _ = crud.create_enrollment_token(
            s,
            fire_department="fd",
            created_by="test",
            ttl=__import__("datetime").timedelta(hours=1),
            now=utcnow(),
        )
        device = crud.redeem_enrollment_token(
            s, token=token, public_key=pub(dkey), name="fuzz", now=utcnow()
        )
        hospital = crud.create_hospital(
            s,
            name="h",
            lat=35.0,
            lon=139.0,
            hpke_public_key=x25519_pub(),
            signing_public_key=pub(hkey),
            now=utcnow(),
        )
        s.commit()
        signers = {
            "operator": operator,
            "device": Signer(f"device:{device.id}", dkey),
            "hospital": Signer(f"hospital:{hospital.id}", hkey),
        }
    schema = schemathesis.openapi.from_asgi("/openapi.json", SigningWrapper(app, signers))
    yield schema.exclude(path_regex=r".*/events$")
    state.engine.dispose()
    if state.autocommit is not None:
        state.autocommit.dispose()


@pytest.mark.parametrize("fuzz_db", ["sqlite", "postgres"], indirect=True, scope="module")
def test_api_conforms_to_its_openapi_document(api_schema: Any) -> None:
    # schemathesis' pytest integration does not run under pytest 9: drive hypothesis directly.
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 15
    modes = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
    for operation, mode in ((op, m) for op in operations for m in modes):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: Any) -> None:
            case.call_and_validate(
                checks=[
                    not_a_server_error,
                    status_code_conformance,
                    content_type_conformance,
                    response_schema_conformance,
                ]
            )

        try:
            run()
        except Unsatisfiable:
            continue  # nothing to make invalid (no parameters, or only free-form strings)
        except Exception as exc:
            failures.append(f"{operation.label} ({mode.value}): {str(exc)[:600]}")
    assert not failures, "\n\n".join(failures)
