"""``kyukyu demo``: the whole system on one machine, every part real but the card.

A test CA issues a virtual My Number card for one of the synthetic patients; the
platform runs under uvicorn on SQLite; two hospitals stream cases; the card is
tapped on the virtual reader of the real pcscd (vpcd) and read and verified; the
summary is fetched with the card's PIN signature over the platform's challenge; the
case is sealed for both hospitals, queued and sent; one hospital declines, the
other accepts; the device forgets the patient.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

# Prints one line of the demo's narration (Japanese and English).
Narrator = Callable[[str], None]

DEMO_PIN = "1234"
FIRE_DEPARTMENT = "デモ市消防本部"
SCENE = (35.6812, 139.7671)  # near Tokyo station


@dataclass
class DemoHospital:
    name: str
    lat: float
    lon: float
    answer: str
    hpke: X25519PrivateKey = field(default_factory=X25519PrivateKey.generate)
    signing: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    id: str = ""
    received: list[str] = field(default_factory=list)


HOSPITALS = (
    ("デモ中央病院 / Demo Central Hospital", 35.6850, 139.7700, "decline"),
    ("デモ救命救急センター / Demo Emergency Center", 35.6900, 139.7500, "accept"),
)


@contextmanager
def _step(say: Narrator, timings: dict[str, float], key: str, ja: str, en: str) -> Iterator[None]:
    say(f"▶ {ja} / {en}")
    t0 = time.perf_counter()
    yield
    timings[key] = round((time.perf_counter() - t0) * 1000, 1)
    say(f"  ✓ {timings[key]:.0f} ms")


def run_demo(
    workdir: Path | None = None, *, say: Narrator = print, patients: int = 200
) -> dict[str, Any]:
    """Run the demo; return a JSON-able report (no patient data in it)."""
    from edge.card_sim import CardImage, TestCA, VirtualCard, VpcdFrontEnd
    from edge.flow import (
        CaseFlow,
        Consent,
        DeviceIdentity,
        IdentityMethod,
        JpkiCardReading,
        Stage,
    )
    from edge.jpki.trust import TrustStore
    from edge.reader.pcsc import PcscReaders
    from hub_server import crud
    from hub_server.core.config import Settings
    from hub_server.core.db import utcnow
    from hub_server.main import build_state, create_app
    from hub_server.medical import open_source
    from kyukyu import testing
    from kyukyu.testing import seed_with_cards, serve_in_thread
    from sync import SignedHttp
    from sync.client import PlatformClient
    from sync.outbox import Outbox
    from sync.receiver import HospitalClient, ReceivedCase, Receiver, ReceiverState
    from sync.signing import public_key_to_b64

    timings: dict[str, float] = {}
    report: dict[str, Any] = {"timings_ms": timings}
    with ExitStack() as stack:
        if workdir is None:
            workdir = Path(tempfile.mkdtemp(prefix="kyukyu-demo-"))
            stack.callback(shutil.rmtree, workdir, True)
        workdir.mkdir(parents=True, exist_ok=True)
        device_dir = workdir / "device"
        device_dir.mkdir(exist_ok=True)

        with _step(say, timings, "setup", "準備: テスト認証局・プラットフォーム・病院", "set-up"):
            ca_dir = workdir / "ca"
            TestCA.create(ca_dir)
            settings = Settings(
                db_url=f"sqlite:///{workdir / 'hub.db'}",
                environment="dev",
                trust_roots_dir=ca_dir,
                allow_test_roots=True,
                sse_keepalive_seconds=0.5,
            )
            state = build_state(settings)
            seeded = seed_with_cards(
                settings.db_url,
                patients=patients,
                cards=1,
                cards_dir=workdir / "cards",
                ca_dir=ca_dir,
            )
            state.medical_source = open_source(settings.db_url)
            operator_key = Ed25519PrivateKey.generate()
            with state.session() as session:
                op = crud.create_operator(
                    session,
                    name="demo-operator",
                    role="operator",
                    public_key=public_key_to_b64(operator_key.public_key()),
                    now=utcnow(),
                )
                session.commit()
                operator_id = op.id
            url = stack.enter_context(serve_in_thread(create_app(settings, state=state)))
            operator = SignedHttp(url, key=operator_key, key_id=f"operator:{operator_id}")
            stack.callback(operator.close)
            hospitals = [DemoHospital(n, lat, lon, a) for n, lat, lon, a in HOSPITALS]
            for h in hospitals:
                out = operator.request_json(
                    "POST",
                    "/v1/hospitals",
                    body={
                        "name": h.name,
                        "lat": h.lat,
                        "lon": h.lon,
                        "hpke_public_key": public_key_to_b64(h.hpke.public_key()),  # type: ignore[arg-type]
                        "signing_public_key": public_key_to_b64(h.signing.public_key()),
                    },
                )
                h.id = out["hospital_id"]
            token = operator.request_json(
                "POST", "/v1/enrollment-tokens", body={"fire_department": FIRE_DEPARTMENT}
            )["token"]
            device_key = Ed25519PrivateKey.generate()
            device = PlatformClient(url, key=device_key, hub_public_key=state.hub_key.public_key)
            stack.callback(device.close)
            device_id = device.enroll(token, "デモ救急1 / Demo Ambulance 1")
            say(
                f"  platform {url}, {seeded.patients} synthetic patients, "
                f"{len(hospitals)} hospitals, device {device_id}"
            )

        stop = threading.Event()
        for h in hospitals:
            _start_hospital(
                h,
                url,
                stop,
                stack,
                workdir,
                state.hub_key.public_key,
                HospitalClient,
                Receiver,
                ReceiverState,
                ReceivedCase,
                say,
            )

        with _step(
            say, timings, "tap", "カードをタッチしてください", "tap the card (virtual reader)"
        ):
            testing.ensure_pcscd(workdir / "pcscd.log")
            image = CardImage.load(seeded.cards[0].path)
            card = VirtualCard(image, path=seeded.cards[0].path)
            front = VpcdFrontEnd(card, port=testing.VPCD_PORTS[0])
            front.start()
            stack.callback(front.stop)
            readers = PcscReaders()
            stack.callback(readers.close)
            outbox = Outbox(device_dir / "outbox.db")
            stack.callback(outbox.close)
            # The device's case flow (the same one the touchscreen drives), scripted here.
            flow = CaseFlow(
                cards=readers,
                card_reading=JpkiCardReading(
                    TrustStore.from_directory(ca_dir, allow_test_roots=True)
                ),
                platform=device,
                outbox=outbox,
                device=DeviceIdentity(
                    device_id, device_key, "デモ救急1", FIRE_DEPARTMENT, "隊員001"
                ),
                base=SCENE,
            )
            flow.start()
            stack.callback(flow.close)
            if not flow.wait_for_card(timeout=20):
                raise RuntimeError("no card on the virtual reader")
            view = flow.view()
            say(f"  {view.token_type}: {'/'.join(view.progress)}")

        with _step(
            say,
            timings,
            "read_verify",
            "同意・暗証番号署名・照合番号B・救急用サマリー",
            "consent, PIN proof, collation number B, summary",
        ):
            flow.choose_consent(Consent.CONSENTED)
            flow.choose_identity(IdentityMethod.PIN)
            flow.submit_pin(DEMO_PIN, collation_b=image.collation_b)
            view = flow.view()
            if view.stage is not Stage.SUMMARY:
                raise RuntimeError(f"the flow stopped at {view.stage}: {view.notice}")
            report["card"] = {
                "token_type": view.token_type,
                "trusted": bool(view.certificate_ok),
                "attributes_integrity": view.patient_label is not None,
                "assurance": view.assurance,
            }
            sections = {s.title.ja: len(s.lines) for s in view.summary}
            report["summary"] = {"status": view.summary_status, "sections": sections}
            say("  " + ", ".join(f"{k}: {v}" for k, v in sections.items()))

        with _step(
            say, timings, "send", "封緘して2病院へ同時送信", "seal for 2 hospitals and send"
        ):
            flow.to_vitals()
            flow.set_chief_complaint("胸痛")
            for name, value in (
                ("systolic", 92),
                ("diastolic", 58),
                ("pulse", 118),
                ("respiration", 24),
                ("spo2", 91),
                ("temperature", 36.4),
                ("jcs", "1"),
            ):
                flow.set_vital(name, value)
            flow.to_hospitals()
            for row in flow.view().hospitals:
                flow.toggle_hospital(row.id)
            flow.send_selected()
            (case_id,) = flow.sent_case_ids()
            report["case_id"] = case_id
            deadline = time.monotonic() + 30
            while flow.view().waiting_sealed and time.monotonic() < deadline:
                time.sleep(0.02)
            say(f"  queued sealed, delivered; waiting in outbox: {flow.view().waiting_sealed}")

        with _step(say, timings, "answers", "病院の応答を待つ", "wait for the hospitals' answers"):
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                rows = flow.view().hospitals
                if all(r.answer for r in rows if r.sent):
                    break
                time.sleep(0.02)
            names = {h.id: h.name for h in hospitals}
            answers = {r.id: r.answer for r in flow.view().hospitals if r.answer}
            for hid, ans in answers.items():
                shown = "受入可 / accept" if ans == "accept" else "受入不可 / decline"
                say(f"  {names.get(hid, hid)}: {shown}")
            report["answers"] = {names.get(k, k): v for k, v in answers.items()}
            accepted = [hid for hid, ans in answers.items() if ans == "accept"]
            if accepted:
                flow.confirm_destination(accepted[0])
                say(f"  搬送先決定 / destination: {names[accepted[0]]}")

        flow.finish()
        report["hospitals_received"] = {h.name: len(h.received) for h in hospitals}
        report["outbox_pending"] = outbox.pending_count()
        say(
            "▶ 患者情報を端末から消去しました / the device forgot the patient "
            f"(sealed cases waiting: {report['outbox_pending']})"
        )
    return report


def _section_counts(bundle: dict[str, Any] | None) -> dict[str, int]:
    if not bundle:
        return {}
    comp = bundle.get("entry", [{}])[0].get("resource", {})
    out: dict[str, int] = {}
    for section in comp.get("section", []):
        out[str(section.get("title", "?"))] = len(section.get("entry", []))
    return out


def _start_hospital(
    h: DemoHospital,
    url: str,
    stop: threading.Event,
    stack: ExitStack,
    workdir: Path,
    hub_public_key: Ed25519PublicKey,
    hospital_client: Any,
    receiver_cls: Any,
    state_cls: Any,
    case_cls: Any,
    say: Narrator,
) -> None:
    client = hospital_client(url, hospital_id=h.id, key=h.signing)
    stack.callback(client.close)

    def on_case(case: Any) -> None:
        h.received.append(case.case_id)
        client.answer(case.case_id, h.answer, None if h.answer == "accept" else "満床 / no bed")

    from sync.device_keys import HubDeviceKeys

    rx = receiver_cls(
        client,
        hospital_key=h.hpke,
        # The device's key as the platform vouches for it (signed, checked against the pin).
        device_key_for=HubDeviceKeys(client, hub_public_key),
        state=state_cls(workdir / f"hospital-{h.id}.db"),
        on_case=on_case,
    )
    thread = threading.Thread(target=rx.run, args=(stop,), daemon=True)
    thread.start()
    # LIFO: stop the receiver, wait for it, then close its client.
    stack.callback(thread.join, 5)
    stack.callback(stop.set)
