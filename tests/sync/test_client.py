"""PlatformClient on httpx.MockTransport: signing, shapes, error mapping, hub signatures."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from sync import (
    AuthError,
    Conflict,
    NotFound,
    RateLimited,
    ResponseError,
    ServerError,
    Timeout,
    TransportError,
)
from sync._http import parse_retry_after
from sync.client import PlatformClient
from sync.signed import canonical_json
from sync.signing import b64e, check_request, public_key_to_b64

DEVICE = Ed25519PrivateKey.generate()
HUB = Ed25519PrivateKey.generate()


def client(handler: Callable[[httpx.Request], httpx.Response]) -> PlatformClient:
    return PlatformClient(
        "https://hub.test",
        key=DEVICE,
        device_id="d1",
        hub_public_key=HUB.public_key(),
        transport=httpx.MockTransport(handler),
    )


def check_signed(request: httpx.Request) -> None:
    path = request.url.raw_path.decode()
    check_request(
        request.headers,
        request.method,
        path,
        request.content,
        lambda kid: DEVICE.public_key() if kid == "device:d1" else None,
    )


def test_post_case_is_signed_with_idempotency_key() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        check_signed(request)
        seen.append(request)
        return httpx.Response(201, json={"case_id": "c1", "recipients": ["h1"]})

    out = client(handler).post_case("c1", ["h1"], b"\x00sealed", idempotency_key="k-1")
    assert out["case_id"] == "c1"
    (req,) = seen
    assert req.headers["Idempotency-Key"] == "k-1"
    body = json.loads(req.content)
    assert body == {
        "case_id": "c1",
        "recipients": ["h1"],
        "envelope": base64.b64encode(b"\x00sealed").decode(),
    }


@pytest.mark.parametrize(
    ("status", "exc"),
    [(401, AuthError), (403, AuthError), (404, NotFound), (409, Conflict), (500, ServerError)],
)
def test_status_errors_are_typed(status: int, exc: type[Exception]) -> None:
    c = client(lambda r: httpx.Response(status, json={"code": "x"}))
    with pytest.raises(exc) as info:
        c.post_case("c1", ["h1"], b"x", idempotency_key="k")
    assert info.value.status == status  # type: ignore[attr-defined]


def test_retry_after_is_parsed() -> None:
    c = client(lambda r: httpx.Response(503, headers={"Retry-After": "7"}))
    with pytest.raises(ServerError) as info:
        c.post_case("c1", ["h1"], b"x", idempotency_key="k")
    assert info.value.retry_after == 7
    c = client(lambda r: httpx.Response(429, headers={"Retry-After": "2"}))
    with pytest.raises(RateLimited):
        c.post_case("c1", ["h1"], b"x", idempotency_key="k")
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("garbage") is None


def test_transport_errors_are_mapped() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(TransportError) as info:
        client(refuse).post_case("c1", ["h1"], b"x", idempotency_key="k")
    assert info.value.code == "platform_unreachable"
    with pytest.raises(Timeout):
        client(slow).post_case("c1", ["h1"], b"x", idempotency_key="k")


def test_enroll_is_unsigned_and_sets_identity() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert "X-Kyukyu-Signature" not in request.headers
        body = json.loads(request.content)
        assert body["public_key"] == public_key_to_b64(DEVICE.public_key())
        return httpx.Response(201, json={"device_id": "new1", "fire_department": "f"})

    c = PlatformClient("https://hub.test", key=DEVICE, transport=httpx.MockTransport(handler))
    assert c.enroll("tok", "救急車1") == "new1"
    assert c.http.key_id == "device:new1"


def signed_directory(key: Ed25519PrivateKey) -> dict[str, object]:
    body = {
        "issued_at": "2026-11-22T00:00:00+00:00",
        "lat": 35.0,
        "lon": 139.0,
        "hospitals": [
            {
                "id": "h1",
                "name": "テスト病院",
                "lat": 35.01,
                "lon": 139.0,
                "distance_km": 1.1,
                "hpke_public_key": public_key_to_b64(
                    X25519PrivateKey.generate().public_key()  # type: ignore[arg-type]
                ),
                "signing_public_key": public_key_to_b64(key.public_key()),
            }
        ],
    }
    return {"directory": body, "key_id": "hub:1", "signature": b64e(key.sign(canonical_json(body)))}


def test_directory_signature_is_checked() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        check_signed(request)
        assert request.url.params["lat"] == "35.0"
        return httpx.Response(200, json=signed_directory(HUB))

    (h,) = client(handler).hospital_directory(35.0, 139.0)
    assert h.id == "h1"
    assert h.distance_km == 1.1
    forged = client(lambda r: httpx.Response(200, json=signed_directory(DEVICE)))
    with pytest.raises(ResponseError):
        forged.hospital_directory(35.0, 139.0)

    def tampered(request: httpx.Request) -> httpx.Response:
        doc = signed_directory(HUB)
        doc["directory"]["hospitals"][0]["name"] = "偽病院"  # type: ignore[index]
        return httpx.Response(200, json=doc)

    with pytest.raises(ResponseError):
        client(tampered).hospital_directory(35.0, 139.0)


def test_revocation_snapshot_signature() -> None:
    body = {"format": "serials", "version": 3, "since": 0, "full": True, "issued_at": "x"}
    body |= {"added": ["01"], "removed": []}
    doc = {"snapshot": body, "key_id": "hub:1", "signature": b64e(HUB.sign(canonical_json(body)))}

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params.get("since") == "2"
        return httpx.Response(200, json=doc)

    assert client(handler).revocation_snapshot(since=2)["version"] == 3


def test_revocation_snapshot_rollback_is_refused(tmp_path: Path) -> None:
    from sync import Outbox, SnapshotRollback

    def snapshot(version: int) -> dict[str, object]:
        body = {"format": "kyukyu-revocation-v1", "version": version, "since": 0}
        body |= {"full": True, "issued_at": "x", "added": [], "removed": []}
        return {
            "snapshot": body,
            "key_id": "hub:1",
            "signature": b64e(HUB.sign(canonical_json(body))),
        }

    served = [snapshot(5)]
    outbox = Outbox(tmp_path / "outbox.db")
    c = client(lambda r: httpx.Response(200, json=served[0]))
    c.revocation_floor = outbox.revocation_floor
    assert c.revocation_snapshot()["version"] == 5
    served[0] = snapshot(4)  # an older snapshot, correctly signed: a replay
    with pytest.raises(SnapshotRollback):
        c.revocation_snapshot()
    outbox.close()
    # The floor is durable: a restarted device still refuses it.
    again = Outbox(tmp_path / "outbox.db")
    c.revocation_floor = again.revocation_floor
    assert again.revocation_floor.revocation_version() == 5
    with pytest.raises(SnapshotRollback):
        c.revocation_snapshot()
    served[0] = snapshot(5)
    assert c.revocation_snapshot()["version"] == 5  # the same one again is fine
    served[0] = snapshot(6)
    assert c.revocation_snapshot()["version"] == 6
    assert again.revocation_floor.revocation_version() == 6
    again.close()


def test_challenge_summary_destination() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        check_signed(request)
        calls.append(f"{request.method} {request.url.path}")
        if request.url.path == "/v1/challenges":
            return httpx.Response(201, json={"challenge_id": "ch", "nonce": "n", "expires_at": "t"})
        if request.url.path == "/v1/summaries":
            return httpx.Response(200, json={"resourceType": "Bundle"})
        return httpx.Response(200, json={})

    c = client(handler)
    assert c.create_challenge()["challenge_id"] == "ch"
    assert c.lookup_summary({"certificate": "x"})["resourceType"] == "Bundle"
    c.set_destination("c1", "h1")
    assert calls[-1] == "POST /v1/cases/c1/destination"


def test_device_event_stream() -> None:
    stream = (
        ": hello\n\nretry: 2000\nevent: ping\ndata:\n\n"
        'id: 1\nevent: answer\ndata: {"seq": 1, "case_id": "c1", "hospital_id": "h1",'
        ' "answer": "accept"}\n\n'
        'id: 2\nevent: answer\ndata: {"case_id": "c1",\r\ndata: "hospital_id": "h2",\r'
        'data: "seq": 2}\r\n\r\n: ping\n\n'
    )

    def handler(request: httpx.Request) -> httpx.Response:
        check_signed(request)
        assert request.url.params["after"] == "0"
        return httpx.Response(200, text=stream, headers={"Content-Type": "text/event-stream"})

    events = list(client(handler).device_events(after=0))
    assert [e.seq for e in events] == [1, 2]
    assert events[0].data["answer"] == "accept"
    assert events[1].data["hospital_id"] == "h2"
    with pytest.raises(AuthError):
        list(client(lambda r: httpx.Response(401)).device_events())


@pytest.mark.parametrize(
    "bad",
    [
        'id: 3\nevent: answer\ndata: {"case_id": "c1"}\n\n',  # no seq inside
        'id: 3\nevent: answer\ndata: {"seq": 4}\n\n',  # id and seq disagree
        'id: 3\nevent: answer\ndata: {"seq": 3, "x": "\u2028\n\n',  # cut in two
        'event: answer\ndata: {"seq": 3}\n\n',  # no id
        "id: 3\nevent: answer\ndata: [3]\n\n",  # not an object
    ],
)
def test_device_event_that_does_not_parse_is_an_error(bad: str) -> None:
    from sync import MalformedEvent

    good = 'id: 2\nevent: answer\ndata: {"seq": 2, "answer": "accept"}\n\n'

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=good + bad, headers={"Content-Type": "text/event-stream"})

    events = client(handler).device_events(after=1)
    assert next(events).seq == 2
    with pytest.raises(MalformedEvent):
        next(events)
