"""A minimal in-memory hub speaking the platform's case routes (tests only).

Same wire contract as hub_server for: signed requests (sync.signing, nonce replay),
``POST /v1/cases`` with ``Idempotency-Key`` (same key -> same answer, case id
stored once), ``GET /v1/hospitals/me/events?after=N`` (SSE), ``POST
/v1/cases/{id}/ack``. It exists so the client can be tested before/independently
of hub_server; the end-to-end tests also run against the real hub.

Run standalone (for subprocess tests)::

    python -m tests.sync.fakehub PORT KEYS_JSON
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import threading
from collections import Counter
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from sync.envelope import SealedCase
from sync.signing import SignatureError, check_request, public_key_from_b64


class FakeHub:
    def __init__(self) -> None:
        self.keys: dict[str, Ed25519PublicKey] = {}
        self.nonces: set[tuple[str, str]] = set()
        self.cases: dict[str, bytes] = {}
        self.idem: dict[tuple[str, str], tuple[str, int, dict[str, Any]]] = {}
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.acks: Counter[tuple[str, str]] = Counter()
        self.posts = 0
        self.lock = threading.Lock()
        self.app = Starlette(
            routes=[
                Route("/v1/cases", self.post_case, methods=["POST"]),
                Route("/v1/cases/{case_id}/ack", self.ack, methods=["POST"]),
                Route("/v1/hospitals/me/events", self.hospital_events, methods=["GET"]),
                Route("/v1/stats", self.stats, methods=["GET"]),
            ]
        )

    def add_key(self, key_id: str, public: Ed25519PublicKey) -> None:
        self.keys[key_id] = public

    def add_hospital(self, hospital_id: str, public: Ed25519PublicKey) -> None:
        self.add_key(f"hospital:{hospital_id}", public)
        self.events.setdefault(hospital_id, [])

    async def _auth(self, request: Request) -> tuple[str, bytes]:
        body = await request.body()
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        got = check_request(request.headers, request.method, path, body, self.keys.get)
        with self.lock:
            if (got.key_id, got.nonce) in self.nonces:
                raise SignatureError("replay", "nonce seen")
            self.nonces.add((got.key_id, got.nonce))
        return got.key_id, body

    async def post_case(self, request: Request) -> Response:
        try:
            key_id, body = await self._auth(request)
        except SignatureError as exc:
            return JSONResponse({"code": exc.code}, status_code=401)
        idem = request.headers.get("Idempotency-Key")
        if not idem:
            return JSONResponse({"code": "idempotency_key_required"}, status_code=400)
        data = json.loads(body)
        envelope = base64.b64decode(data["envelope"])
        sealed = SealedCase.from_bytes(envelope)
        if sealed.case_id != data["case_id"] or list(sealed.recipient_ids) != data["recipients"]:
            return JSONResponse({"code": "metadata_mismatch"}, status_code=422)
        digest = str(hash(body))
        with self.lock:
            self.posts += 1
            prior = self.idem.get((key_id, idem))
            if prior is not None:
                if prior[0] != digest:
                    return JSONResponse({"code": "idempotency_mismatch"}, status_code=422)
                return JSONResponse(prior[2], status_code=prior[1])
            if sealed.case_id in self.cases:
                return JSONResponse({"code": "case_exists"}, status_code=409)
            self.cases[sealed.case_id] = envelope
            for rid in sealed.recipient_ids:
                stream = self.events.setdefault(rid, [])
                stream.append(
                    {
                        "seq": len(stream) + 1,
                        "type": "case",
                        "case_id": sealed.case_id,
                        "device_id": sealed.device_id,
                        "envelope": data["envelope"],
                    }
                )
            out = {"case_id": sealed.case_id, "recipients": data["recipients"]}
            self.idem[(key_id, idem)] = (digest, 201, out)
        return JSONResponse(out, status_code=201)

    async def ack(self, request: Request) -> Response:
        try:
            key_id, _ = await self._auth(request)
        except SignatureError as exc:
            return JSONResponse({"code": exc.code}, status_code=401)
        hospital = key_id.split(":", 1)[1]
        with self.lock:
            self.acks[(hospital, request.path_params["case_id"])] += 1
        return JSONResponse({"case_id": request.path_params["case_id"]})

    async def hospital_events(self, request: Request) -> Response:
        try:
            key_id, _ = await self._auth(request)
        except SignatureError as exc:
            return JSONResponse({"code": exc.code}, status_code=401)
        hospital = key_id.split(":", 1)[1]
        after = int(request.query_params.get("after", "0"))
        idle = float(request.query_params.get("idle", "0.3"))

        async def stream() -> Any:
            sent = after
            quiet = 0.0
            while quiet < idle:
                with self.lock:
                    new = self.events.get(hospital, [])[sent:]
                for ev in new:
                    sent = ev["seq"]
                    yield f"id: {ev['seq']}\nevent: case\ndata: {json.dumps(ev)}\n\n"
                    quiet = 0.0
                if not new:
                    yield ": keep-alive\n\n"
                    await asyncio.sleep(0.05)
                    quiet += 0.05

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def stats(self, request: Request) -> Response:
        with self.lock:
            per = {h: [e["case_id"] for e in evs] for h, evs in self.events.items()}
            return JSONResponse({"posts": self.posts, "cases": len(self.cases), "events": per})


def main() -> None:
    import uvicorn

    port = int(sys.argv[1])
    keys = json.loads(open(sys.argv[2]).read())  # noqa: SIM115
    hub = FakeHub()
    for key_id, b64 in keys.items():
        if key_id.startswith("hospital:"):
            hub.add_hospital(key_id.split(":", 1)[1], public_key_from_b64(b64))
        else:
            hub.add_key(key_id, public_key_from_b64(b64))
    uvicorn.run(hub.app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
