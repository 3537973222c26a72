"""Poison cases: quarantined, never fatal; the sender stored is the platform's word.

A validly sealed case from an enrolled device can still carry anything: ``[]``, bytes
that are not JSON, a JSON string, a FHIR resource that is not a Bundle, a sealing time
beyond 64 bits. Each is refused (``rejections``: code and posting device, never
content), not acknowledged, reported to the platform once, and the next good case
arrives; a restart does not take it again. Everything here goes through the real
platform (uvicorn) and the real receiving service.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import random
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hospital.casefile import read_case
from hospital.main import HospitalRuntime
from kyukyu.cli import main as kyukyu_main
from sync import Conflict, HttpStatusError, NotFound
from sync.receiver import HospitalClient
from sync.seal import seal_case
from tests.components import fresh_postgres_database
from tests.hospital._world import (
    SCENE,
    Device,
    HospitalSite,
    Platform,
    make_bundle,
    operator_key_doc,
    platform,
    wait_for,
)

SECRET = "毒入りの秘密の主訴"  # in the poison payloads: never in a log


class Poster:
    """Seals any payload bytes for one hospital, as an enrolled device, and posts it."""

    def __init__(self, device: Device, site: HospitalSite) -> None:
        self.device, self.site = device, site
        directory = {h.id: h for h in device.client.hospital_directory(*SCENE)}
        self.hospital_key = directory[site.id].hpke_public_key

    def send(
        self, payload: bytes | Callable[[str, str], bytes], *, created_at: int | None = None
    ) -> str:
        case_id = str(uuid.uuid4())
        data = payload(case_id, self.device.id) if callable(payload) else payload
        envelope = seal_case(
            data,
            case_id=case_id,
            device_id=self.device.id,
            device_key=self.device.key,
            recipients={self.site.id: self.hospital_key},
            created_at=created_at,
        )
        self.device.client.post_case(
            case_id, [self.site.id], envelope, idempotency_key=str(uuid.uuid4())
        )
        return case_id

    def good(self, **record: Any) -> str:
        return self.send(lambda cid, did: _dumps(make_bundle(cid, did, **record)))


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def _surrogate(cid: str, device_id: str) -> bytes:
    text = json.dumps(make_bundle(cid, device_id, chief_complaint="@@"), ensure_ascii=True)
    return text.replace("@@", "\\ud800").encode()  # valid JSON, not valid Unicode


# name -> (payload of (case id, device id), the code it is refused with)
POISON: dict[str, tuple[Callable[[str, str], bytes], str]] = {
    "empty list": (lambda c, d: b"[]", "case_not_bundle"),
    "not json": (lambda c, d: b"\xff\xfe not json " + SECRET.encode(), "case_not_json"),
    "json string": (lambda c, d: _dumps(SECRET), "case_not_bundle"),
    "json number": (lambda c, d: b"1e999", "case_not_bundle"),
    "not a bundle": (
        lambda c, d: _dumps({"resourceType": "Patient", "name": SECRET}),
        "case_not_bundle",
    ),
    "not a document": (
        lambda c, d: _dumps({"resourceType": "Bundle", "type": "collection", "entry": [SECRET]}),
        "case_invalid",
    ),
    "no composition first": (
        lambda c, d: _dumps(
            {"resourceType": "Bundle", "type": "document", "entry": [{"resource": {}}]}
        ),
        "case_invalid",
    ),
    "deep": (
        lambda c, d: b'{"resourceType":"Bundle","type":"document","entry":' + b"[" * 5000,
        "case_not_json",
    ),
    "lone surrogate": (_surrogate, "case_invalid"),
}


@contextlib.contextmanager
def receiving(site: HospitalSite, **settings_kw: Any) -> Iterator[HospitalRuntime]:
    """The real receiving service of ``site`` (no dashboard server: the stream only)."""
    runtime = HospitalRuntime(site.settings(**settings_kw))
    runtime.service.start()
    try:
        yield runtime
    finally:
        runtime.service.stop()
        runtime.close()


def _operator_reports(p: Platform) -> list[dict[str, Any]]:
    reports: list[dict[str, Any]] = p.operator.request_json(
        "GET", "/v1/refused-case-reports", params={"limit": 1000}
    )["reports"]
    return reports


def test_poison_cases_are_refused_and_the_stream_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with platform(tmp_path) as p:
        site = p.new_hospital(tmp_path, "テスト中央病院", 35.685, 139.77)
        device = p.new_device()
        poster = Poster(device, site)
        expected: dict[str, str] = {}
        with receiving(site) as rt:
            for payload, code in POISON.values():
                expected[poster.send(payload)] = code
            # A value the database cannot hold (a sealing time beyond 64 bits): one row.
            beyond = poster.send(lambda c, d: _dumps(make_bundle(c, d)), created_at=2**64)
            good = poster.good()
            wait_for(lambda: rt.store.case(good), what="the good case after the poison")
            assert rt.service.running
            rows = {r.case_id: r for r in rt.store.rejections()}
            codes = {cid: r.code for cid, r in rows.items() if cid != beyond}
            assert codes == expected, codes
            # Stored flagged (64-bit clamp) or quarantined: never fatal, never both.
            assert (rt.store.case(beyond) is None) == (beyond in rows)
            if beyond in rows:
                assert rows[beyond].code == "case_store_failed"
            assert {r.device_id for r in rows.values()} == {device.id}
            assert [r.case_id for r in rt.store.cases()] == [
                c for c in (good, beyond) if rt.store.case(c) is not None
            ]
            # Reported to the platform once each; the platform's own record of the case.
            wait_for(
                lambda: all(r.reported_at is not None for r in rt.store.rejections()),
                what="the refusals reported",
            )
            reports = {r["case_id"]: r for r in _operator_reports(p)}
            assert {cid: r["code"] for cid, r in reports.items()} == {
                cid: r.code for cid, r in rows.items()
            }
            assert {r["device_id"] for r in reports.values()} == {device.id}
            assert {r["hospital_id"] for r in reports.values()} == {site.id}
            # Not acknowledged: for the crew the hospital has not received it.
            for cid in expected:
                status = device.client.http.request_json("GET", f"/v1/cases/{cid}")
                assert [r["acked"] for r in status["recipients"]] == [False]
            status = device.client.http.request_json("GET", f"/v1/cases/{good}")
            assert [r["acked"] for r in status["recipients"]] == [True]
            refused_before = len(rt.store.rejections())

            # The platform checks a hospital's report: its own event, the right device.
            client = rt.service.client
            event_id = rt.store.rejections()[0].event_id
            again = client.report_refused(event_id, device.id, "case_not_bundle")
            assert again["case_id"] == rt.store.rejections()[0].case_id  # kept, not doubled
            with pytest.raises(NotFound):
                client.report_refused(10_000, device.id, "case_invalid")
            with pytest.raises(Conflict):
                client.report_refused(event_id, "another-device", "case_invalid")
            for bad in ("", "Case", "a" * 61, "case invalid", "x:y:z", "ケース"):
                with pytest.raises(HttpStatusError) as err:
                    client.report_refused(event_id, device.id, bad)
                assert err.value.status == 422
            with pytest.raises(HttpStatusError) as err:
                client.report_refused(2**60, device.id, "case_invalid")
            assert err.value.status == 422
            with pytest.raises(HttpStatusError) as err:  # a device may not report
                device.client.http.request(
                    "POST",
                    "/v1/hospitals/me/refused-cases",
                    body={"event_id": event_id, "device_id": device.id, "code": "case_invalid"},
                )
            assert err.value.status == 403
        assert len(_operator_reports(p)) == len(rows)
        audit = p.operator.request_json("GET", "/v1/audit", params={"limit": 1000})["entries"]
        assert sum(e["action"] == "case_refused_reported" for e in audit) == len(rows)

        # A restart does not take any of them again; the next case arrives.
        with receiving(site) as rt:
            after = poster.good()
            wait_for(lambda: rt.store.case(after), what="a case after the restart")
            assert len(rt.store.rejections()) == refused_before

        # The operator's command line lists them (JSON lines, no content).
        key_file = tmp_path / "operator-key.json"
        key_file.write_text(json.dumps(operator_key_doc(p)))
        out = io.StringIO()
        with redirect_stdout(out):
            rc = kyukyu_main(
                ["hub", "refused-cases", "--platform", p.url, "--operator-key", str(key_file)]
            )
        assert rc == 0
        listed = [json.loads(line) for line in out.getvalue().splitlines()]
        assert {r["case_id"] for r in listed} == set(rows)
    assert SECRET not in caplog.text
    assert SECRET.encode("unicode_escape").decode() not in caplog.text


@contextlib.contextmanager
def _refusing_port() -> Iterator[int]:
    """A loopback port held bound but not listening: every connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def test_refusals_are_reported_once_and_kept_while_the_platform_is_unreachable(
    tmp_path: Path,
) -> None:
    with platform(tmp_path) as p:
        site = p.new_hospital(tmp_path, "テスト中央病院", 35.685, 139.77)
        device = p.new_device()
        poster = Poster(device, site)
        rt = HospitalRuntime(site.settings())
        stop = threading.Event()
        # The stream alone (no report thread): the refusal waits for ``report_refusals``.
        stream = threading.Thread(target=rt.service.receiver.run, args=(stop,), daemon=True)
        stream.start()
        try:
            bad, good = poster.send(b"[]"), poster.good()
            wait_for(lambda: rt.store.case(good), what="the good case")
            assert [r.reported_at for r in rt.store.rejections()] == [None]
            live = rt.service.client
            # The platform unreachable (nobody listens there): kept, nothing raised.
            with _refusing_port() as port:
                rt.service.client = HospitalClient(
                    f"http://127.0.0.1:{port}",
                    hospital_id=site.id,
                    key=rt.identity.keys.signing,
                )
                assert rt.service.report_refusals() == 0
                assert [r.reported_at for r in rt.store.rejections()] == [None]
                rt.service.client.close()
                rt.service.client = live
            assert rt.service.report_refusals() == 1
            assert rt.service.report_refusals() == 0  # once
            assert [r["case_id"] for r in _operator_reports(p)] == [bad]
            assert rt.store.rejections()[0].reported_at is not None
        finally:
            stop.set()
            rt.service.stop()
            stream.join(10)
            rt.close()


def test_the_sender_stored_is_the_one_the_platform_vouches_for(tmp_path: Path) -> None:
    with platform(tmp_path) as p:
        site = p.new_hospital(tmp_path, "テスト中央病院", 35.685, 139.77)
        device = p.new_device(fire_department="山奥村消防本部")
        poster = Poster(device, site)

        def claims_tokyo(case_id: str, device_id: str) -> bytes:
            bundle = make_bundle(case_id, device_id)
            for entry in bundle["entry"]:
                res = entry["resource"]
                if res["resourceType"] == "Device":
                    res["owner"] = {"display": "東京消防庁"}
                    res["deviceName"] = [{"name": "丸の内救急1", "type": "user-friendly-name"}]
            return _dumps(bundle)

        with receiving(site) as rt:
            cid = poster.send(claims_tokyo)
            row = wait_for(lambda: rt.store.case(cid), what="the case")
            assert row.sender_department == "山奥村消防本部"
            assert row.device_id == device.id
            view = read_case(cid, rt.store.bundle_of(row))
            assert view.fire_department == "東京消防庁"  # the claim, kept as the case says


def _extreme_values() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.integers(min_value=-(2**300), max_value=2**300),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from(
            [
                "9999-12-31T23:59:59+14:00",
                "0001-01-01T00:00:00-12:00",
                "2038-01-19T03:14:08Z",
                "not a time",
                "",
                None,
                True,
                [],
                {},
            ]
        ),
        st.text(max_size=30),
    )


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _mutate(bundle: dict[str, Any], data: st.DataObject) -> None:
    """Replace values inside the Observations, the Encounter and the Patient."""
    for entry in bundle["entry"]:
        res = entry["resource"]
        if res["resourceType"] not in ("Observation", "Encounter", "Patient"):
            continue
        for key in ("valueQuantity", "effectiveDateTime", "period", "birthDate", "component"):
            if key in res and data.draw(st.booleans()):
                value = data.draw(_extreme_values())
                if key == "valueQuantity" and isinstance(res[key], dict):
                    res[key]["value"] = value
                else:
                    res[key] = value


def test_fuzzed_payloads_never_stop_the_stream(tmp_path: Path) -> None:
    """Any JSON, any bytes, mutated Bundles: each stored or refused, the next good case
    always arrives; a document Bundle with odd values is stored, never refused."""
    with platform(tmp_path) as p:
        site = p.new_hospital(tmp_path, "テスト中央病院", 35.685, 139.77)
        device = p.new_device()
        poster = Poster(device, site)
        with receiving(site) as rt:

            @settings(
                max_examples=8,
                deadline=None,
                derandomize=True,
                suppress_health_check=[HealthCheck.too_slow],
            )
            @given(data=st.data())
            def check(data: st.DataObject) -> None:
                kind = data.draw(st.sampled_from(["json", "bytes", "bundle"]))
                if kind == "bundle":

                    def payload(cid: str, did: str) -> bytes:
                        bundle = make_bundle(cid, did)
                        _mutate(bundle, data)
                        return json.dumps(bundle, ensure_ascii=False).encode()

                    cid = poster.send(payload)
                elif kind == "json":
                    cid = poster.send(json.dumps(data.draw(_JSON)).encode())
                else:
                    cid = poster.send(data.draw(st.binary(max_size=64)))
                good = poster.good()
                wait_for(lambda: rt.store.case(good), what="the good case after a fuzzed one")
                stored = rt.store.case(cid) is not None
                refused = cid in {r.case_id for r in rt.store.rejections()}
                assert stored != refused
                if kind == "bundle":
                    assert stored

            check()
            assert rt.service.running


def _poison_payload(rng: random.Random) -> bytes | Callable[[str, str], bytes]:
    payload, _ = POISON[rng.choice(sorted(POISON))]
    return payload


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_hundred_poison_cases_among_good_ones(tmp_path: Path, db: str) -> None:
    """100 poison cases at random among 100 good ones (benchmarks/poison_cases.py: 1,000)."""
    rng = random.Random(20)
    with contextlib.ExitStack() as stack:
        p = stack.enter_context(platform(tmp_path))
        url = stack.enter_context(fresh_postgres_database()) if db == "postgres" else None
        site = p.new_hospital(tmp_path, "テスト中央病院", 35.685, 139.77)
        device = p.new_device()
        poster = Poster(device, site)
        rt = stack.enter_context(receiving(site, **({"db_url": url} if url else {})))
        kinds = ["poison"] * 100 + ["good"] * 100
        rng.shuffle(kinds)
        poison, good = set(), set()
        for kind in kinds:
            if kind == "good":
                good.add(poster.good())
            else:
                poison.add(poster.send(_poison_payload(rng)))
        wait_for(
            lambda: len(rt.store.rejections()) + len(rt.store.cases(limit=1000)) >= len(kinds),
            timeout=60,
            what="every case handled",
        )
        assert {r.case_id for r in rt.store.cases(limit=1000)} == good
        assert {r.case_id for r in rt.store.rejections()} == poison
        assert rt.service.running
