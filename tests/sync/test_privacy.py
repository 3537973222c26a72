"""After a full case flow the device's data directory and the logs hold no personal data."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from pathlib import Path

import pytest

from sync.client import PlatformClient
from sync.fhir_case import build_case_bundle
from sync.outbox import Outbox
from sync.receiver import HospitalClient
from sync.seal import open_case, seal_json
from sync.sender import Sender, follow_answers
from tests.sync._data import SECRET_STRINGS, case_record
from tests.sync._net import World, serve
from tests.sync._realhub import make_real_hub, populate


def needles() -> list[bytes]:
    """Each secret as UTF-8, UTF-16 and JSON-escaped, plus the birth date."""
    out = [b"1951-03-04"]
    for s in SECRET_STRINGS:
        out += [s.encode(), s.encode("utf-16-le"), json.dumps(s).strip('"').encode()]
        out += [part.encode() for part in s.split() if len(part) >= 3]
    return out


def test_no_personal_data_left_on_device(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    hub = make_real_hub(tmp_path / "hub")
    world = World()
    data_dir = tmp_path / "device-data"
    with serve(hub.app) as url:
        populate(hub, url, world, 2)
        device = PlatformClient(url, key=world.device_key, device_id=world.device_id)
        outbox = Outbox(data_dir / "outbox.db")
        bundle = build_case_bundle(case_record("privacy-1"))
        sealed = seal_json(
            bundle,
            case_id="privacy-1",
            device_id=world.device_id,
            device_key=world.device_key,
            recipients=world.recipients(),
        )
        del bundle
        outbox.enqueue(sealed)
        # Scan while the case waits (WAL and -shm present), then after delivery.
        waiting = {p.name: p.read_bytes() for p in data_dir.iterdir()}
        assert any(name.endswith("-wal") for name in waiting)
        with Sender(outbox, device) as sender:
            assert sender.drain(timeout=30).remaining == 0
        # A hospital answers; the device records only accept/decline.
        h = world.hospitals[0]
        hc = HospitalClient(url, hospital_id=h.id, key=h.signing)
        ev = next(iter(hc.events(0)))
        opened = open_case(
            base64.b64decode(json.loads(ev.data)["envelope"]),
            hospital_id=h.id,
            hospital_key=h.hpke,
            device_key_for=world.device_lookup,
        )
        for secret in SECRET_STRINGS:  # the secrets did travel (so the search means something)
            assert secret.encode() in opened.payload
        hc.ack("privacy-1")
        hc.answer("privacy-1", "accept")
        hc.close()
        stop = threading.Event()
        follower = threading.Thread(
            target=follow_answers, args=(device, outbox.answers), kwargs={"stop": stop}, daemon=True
        )
        follower.start()
        for _ in range(500):
            st = outbox.status("privacy-1")
            if st is not None and st.answers.get(h.id) == "accept":
                break
            time.sleep(0.01)
        stop.set()
        follower.join(10)
        assert not follower.is_alive()
        assert outbox.answers.answers_after == 2  # the ack (received), then the answer
        status = outbox.status("privacy-1")
        assert status is not None
        assert status.answers == {h.id: "accept"}
        device.close()
        after = {p.name: p.read_bytes() for p in data_dir.iterdir()}
        outbox.close()
        closed = {p.name: p.read_bytes() for p in data_dir.iterdir()}
    for label, files in (("waiting", waiting), ("delivered", after), ("closed", closed)):
        for name, blob in files.items():
            for needle in needles():
                assert needle not in blob, f"{label}: {name} contains personal data"
    log_text = caplog.text.encode() + b"".join(
        repr(r.args).encode() + str(r.msg).encode() for r in caplog.records
    )
    for needle in needles():
        assert needle not in log_text, "a log line contains personal data"
