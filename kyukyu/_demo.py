"""``kyukyu demo``: the whole system on one machine, every part real but the card.

A test CA issues virtual My Number cards for some of the synthetic patients; the
platform runs under uvicorn on SQLite; two hospitals run their real receiving
service and dashboard (``hospital.main.HospitalRuntime``, registered like
``kyukyu hospital init`` does, one demo staff account each); the card is tapped on
the virtual reader of the real pcscd (vpcd).

- ``run_interactive``: the paramedic screen (``edge.ui``) in this terminal, or served
  to a browser (``--web``); ``kyukyu demo tap`` puts the next card on the reader.
- ``run_demo`` (``--headless``): the case flow scripted: read and verify the card,
  fetch the summary with the card's PIN signature, seal the case for both
  hospitals; the hospitals answer through their dashboards (signed-in staff: the
  demo itself, or a person / test with ``--wait-for-staff``); the device forgets
  the patient.
"""

from __future__ import annotations

import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

# Prints one line of the demo's narration (Japanese and English).
Narrator = Callable[[str], None]

DEMO_PIN = "1234"
FIRE_DEPARTMENT = "デモ市消防本部"
DEVICE_NAME = "デモ救急1 / Demo Ambulance 1"
SCENE = (35.6812, 139.7671)  # near Tokyo station
STAFF_USER = "demo"
BOT_USER = "demo-script"
TAP_REQUEST = "tap-request"  # a file in the work directory: `kyukyu demo tap` creates it


@dataclass
class DemoHospital:
    name: str
    lat: float
    lon: float
    answer: str  # what the demo's own staff answers in the headless run
    id: str = ""
    url: str = ""
    data_dir: Path = Path()
    password: str = ""
    totp_secret: str = ""
    otpauth_uri: str = ""
    runtime: Any = None
    # The account the headless run's own staff answers with (a person's code is not used up).
    bot_password: str = ""
    bot_totp_secret: str = ""

    def received(self) -> int:
        return len(self.runtime.store.cases())


HOSPITALS = (
    ("デモ中央病院 / Demo Central Hospital", 35.6850, 139.7700, "decline"),
    ("デモ救命救急センター / Demo Emergency Center", 35.6900, 139.7500, "accept"),
)


@dataclass
class DemoWorld:
    workdir: Path
    url: str
    ca_dir: Path
    cards: list[Path]
    device_id: str
    device_key: Ed25519PrivateKey
    hub_public_key: Any
    hospitals: list[DemoHospital]
    patients: int
    stack: ExitStack
    extra: dict[str, Any] = field(default_factory=dict)


@contextmanager
def _step(say: Narrator, timings: dict[str, float], key: str, ja: str, en: str) -> Iterator[None]:
    say(f"▶ {ja} / {en}")
    t0 = time.perf_counter()
    yield
    timings[key] = round((time.perf_counter() - t0) * 1000, 1)
    say(f"  ✓ {timings[key]:.0f} ms")


@contextmanager
def demo_world(
    workdir: Path | None, *, say: Narrator, patients: int, cards: int = 1
) -> Iterator[DemoWorld]:
    """Platform, two hospital services with dashboards, an enrolled device; torn down after."""
    from kyukyu.testing import running_platform

    with ExitStack() as stack:
        if workdir is None:
            workdir = Path(tempfile.mkdtemp(prefix="kyukyu-demo-"))
            stack.callback(shutil.rmtree, workdir, True)
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "device").mkdir(exist_ok=True)
        platform = stack.enter_context(
            running_platform(
                workdir,
                patients=patients,
                cards=cards,
                operator_name="demo-operator",
                sse_keepalive_seconds=0.5,
            )
        )
        hospitals = [DemoHospital(n, lat, lon, a) for n, lat, lon, a in HOSPITALS]
        for i, h in enumerate(hospitals, 1):
            _start_hospital(h, workdir / f"hospital-{i}", platform, stack)
        device_id, device_key = platform.enroll_device(FIRE_DEPARTMENT, DEVICE_NAME)
        say(
            f"  platform {platform.url}, {platform.patients} synthetic patients, "
            f"{len(hospitals)} hospitals, device {device_id}"
        )
        yield DemoWorld(
            workdir=workdir,
            url=platform.url,
            ca_dir=platform.ca_dir,
            cards=platform.cards,
            device_id=device_id,
            device_key=device_key,
            hub_public_key=platform.hub_public_key,
            hospitals=hospitals,
            patients=platform.patients,
            stack=stack,
        )


def _start_hospital(h: DemoHospital, data_dir: Path, platform: Any, stack: ExitStack) -> None:
    """What ``kyukyu hospital init`` + ``user add`` + ``serve`` do, on a loopback port."""
    from hospital.auth import add_user
    from hospital.identity import init_hospital
    from hospital.main import HospitalRuntime
    from hospital.settings import load_hospital_settings
    from kyukyu.testing import serve_in_thread

    token = platform.hospital_token(h.name)
    ident = init_hospital(data_dir, platform_url=platform.url, token=token, lat=h.lat, lon=h.lon)
    h.id = ident.hospital_id
    h.data_dir = data_dir
    runtime = HospitalRuntime(
        load_hospital_settings(
            None, data_dir=data_dir, platform_url=platform.url, purge_interval_seconds=3600
        )
    )
    stack.callback(runtime.close)
    h.password = secrets.token_urlsafe(9)
    h.totp_secret, h.otpauth_uri = add_user(
        runtime.store, STAFF_USER, f"デモ医師 ({h.name.split(' / ')[0]})", h.password
    )
    h.bot_password = secrets.token_urlsafe(9)
    h.bot_totp_secret, _ = add_user(runtime.store, BOT_USER, "デモ台本", h.bot_password)
    h.runtime = runtime
    h.url = stack.enter_context(serve_in_thread(runtime.app))


def print_sign_in(world: DemoWorld, say: Narrator) -> None:
    """How a person signs in to each hospital's dashboard."""
    say("▶ 病院ダッシュボード / hospital dashboards (sign in with these):")
    for h in world.hospitals:
        say(f"  {h.name}")
        say(f"    dashboard: {h.url}/")
        say(f"    user: {STAFF_USER}  password: {h.password}  totp_secret: {h.totp_secret}")
        say(f"    current code: kyukyu demo totp {h.totp_secret}   (or add {h.otpauth_uri})")


def _wait(pred: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.05)
    return None


VITALS = (
    ("systolic", 92),
    ("diastolic", 58),
    ("pulse", 118),
    ("respiration", 24),
    ("spo2", 91),
    ("temperature", 36.4),
    ("jcs", "1"),
)


def _device_flow(world: DemoWorld, stack: ExitStack) -> tuple[Any, Any, Any]:
    """The virtual card on vpcd, and the device's case flow (the one the touchscreen
    drives) over the real reader, outbox and platform client: (flow, card image, outbox)."""
    from edge.card_sim import CardImage, VirtualCard, VpcdFrontEnd
    from edge.flow import CaseFlow, DeviceIdentity, JpkiCardReading
    from edge.jpki.trust import TrustStore
    from edge.reader.pcsc import PcscReaders
    from kyukyu import testing
    from sync.client import PlatformClient
    from sync.outbox import Outbox

    testing.ensure_pcscd(world.workdir / "pcscd.log")
    image = CardImage.load(world.cards[0])
    front = VpcdFrontEnd(VirtualCard(image, path=world.cards[0]), port=testing.VPCD_PORTS[0])
    front.start()
    stack.callback(front.stop)
    readers = stack.enter_context(PcscReaders())
    outbox = stack.enter_context(Outbox(world.workdir / "device" / "outbox.db"))
    device = stack.enter_context(
        PlatformClient(
            world.url,
            key=world.device_key,
            device_id=world.device_id,
            hub_public_key=world.hub_public_key,
        )
    )
    flow = CaseFlow(
        cards=readers,
        card_reading=JpkiCardReading(
            TrustStore.from_directory(world.ca_dir, allow_test_roots=True)
        ),
        platform=device,
        outbox=outbox,
        device=DeviceIdentity(
            world.device_id, world.device_key, "デモ救急1", FIRE_DEPARTMENT, "隊員001"
        ),
        base=SCENE,
    )
    flow.start()
    stack.callback(flow.close)
    return flow, image, outbox


def _read_and_verify(flow: Any, collation_b: str, report: dict[str, Any], say: Narrator) -> None:
    """Consent, the PIN signature and collation number B, the summary from the platform."""
    from edge.flow import Consent, IdentityMethod, Stage

    flow.choose_consent(Consent.CONSENTED)
    flow.choose_identity(IdentityMethod.PIN)
    flow.submit_pin(DEMO_PIN, collation_b=collation_b)
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


def _seal_and_send(flow: Any, report: dict[str, Any], say: Narrator) -> str:
    """Vitals, every hospital on the list chosen, sealed and sent; the case id."""
    flow.to_vitals()
    flow.set_chief_complaint("胸痛")
    for name, value in VITALS:
        flow.set_vital(name, value)
    flow.to_hospitals()
    for row in flow.view().hospitals:
        flow.toggle_hospital(row.id)
    flow.send_selected()
    (case_id,) = flow.sent_case_ids()
    report["case_id"] = case_id
    _wait(lambda: not flow.view().waiting_sealed, 30)
    waiting = flow.view().waiting_sealed
    say(f"  case {case_id}: sealed, delivered; waiting in outbox: {waiting}")
    return str(case_id)


def _staff_see(world: DemoWorld, case_id: str, stack: ExitStack, say: Narrator) -> list[Any]:
    """The demo's own staff sign in to each dashboard and see the case there."""
    from kyukyu.testing import DashboardStaff

    staff = []
    for h in world.hospitals:
        s = stack.enter_context(DashboardStaff(h.url, BOT_USER, h.bot_password, h.bot_totp_secret))
        page = _wait(partial(s.case_page, case_id), 20)
        if page is None or "胸痛" not in page:
            raise RuntimeError(f"the case did not reach {h.url}")
        say(f"  {h.url}/cases/{case_id}")
        staff.append(s)
    return staff


def _answers(
    world: DemoWorld,
    flow: Any,
    case_id: str,
    staff: list[Any],
    wait_for_staff: float | None,
    report: dict[str, Any],
    say: Narrator,
) -> None:
    """The hospitals answer (the demo's staff, or a person); the ambulance sees the
    answers and confirms the first accepting hospital as the destination."""
    hospitals = world.hospitals
    if wait_for_staff is None:
        for h, s in zip(hospitals, staff, strict=True):
            s.answer(case_id, h.answer, None if h.answer == "accept" else "満床")
    else:
        say(
            f"  ダッシュボードで受入可を押してください / accept the case on a dashboard "
            f"(waiting {wait_for_staff:.0f} s)"
        )

    def answered() -> bool:
        rows = [r for r in flow.view().hospitals if r.sent]
        if wait_for_staff is not None:
            return any(r.answer == "accept" for r in rows)
        return all(r.answer for r in rows)

    _wait(answered, 20 if wait_for_staff is None else wait_for_staff)
    names = {h.id: h.name for h in hospitals}
    answers = {r.id: r.answer for r in flow.view().hospitals if r.answer}
    for hid, ans in answers.items():
        shown = "受入可 / accept" if ans == "accept" else "受入不可 / decline"
        say(f"  救急車の画面 / the ambulance sees: {names.get(hid, hid)}: {shown}")
    report["answers"] = {names.get(k, k): v for k, v in answers.items()}
    accepted = [hid for hid, ans in answers.items() if ans == "accept"]
    if accepted:
        flow.confirm_destination(accepted[0])
        # Queued after the case; the hospitals are told once it leaves the outbox.
        _wait(lambda: flow.view().destination_state == "delivered", 20)
        report["destination"] = names[accepted[0]]
        say(f"  搬送先決定 / destination: {names[accepted[0]]}")


def run_demo(
    workdir: Path | None = None,
    *,
    say: Narrator = print,
    patients: int = 200,
    wait_for_staff: float | None = None,
) -> dict[str, Any]:
    """The scripted (headless) run; return a JSON-able report (no patient data in it).

    ``wait_for_staff``: seconds to wait for a person (or a test) to accept the case on a
    dashboard; None: the demo's own staff answer on both dashboards (one declines).
    """
    timings: dict[str, float] = {}
    report: dict[str, Any] = {"timings_ms": timings}

    def step(key: str, ja: str, en: str) -> Any:
        return _step(say, timings, key, ja, en)

    with ExitStack() as stack:
        with step("setup", "準備: テスト認証局・プラットフォーム・病院", "set-up"):
            world = stack.enter_context(demo_world(workdir, say=say, patients=patients))
        print_sign_in(world, say)
        with step("tap", "カードをタッチしてください", "tap the card (virtual reader)"):
            flow, image, outbox = _device_flow(world, stack)
            if not flow.wait_for_card(timeout=20):
                raise RuntimeError("no card on the virtual reader")
            view = flow.view()
            say(f"  {view.token_type}: {'/'.join(view.progress)}")
        with step(
            "read_verify",
            "同意・暗証番号署名・照合番号B・救急用サマリー",
            "consent, PIN proof, collation number B, summary",
        ):
            _read_and_verify(flow, image.collation_b, report, say)
        with step("send", "封緘して2病院へ同時送信", "seal for 2 hospitals and send"):
            case_id = _seal_and_send(flow, report, say)
        with step(
            "dashboards", "病院ダッシュボードに表示", "the case on both hospitals' dashboards"
        ):
            staff = _staff_see(world, case_id, stack, say)
        with step("answers", "病院の応答を待つ", "wait for the hospitals' answers"):
            _answers(world, flow, case_id, staff, wait_for_staff, report, say)
        flow.finish()
        report["hospitals_received"] = {h.name: h.received() for h in world.hospitals}
        report["outbox_pending"] = outbox.pending_count()
        say(
            "▶ 患者情報を端末から消去しました / the device forgot the patient "
            f"(sealed cases waiting: {report['outbox_pending']})"
        )
    return report


def write_device_config(world: DemoWorld, reader: str = "pcsc") -> Path:
    """The device's settings file, key, hub-signed hospital directory and revocation
    snapshot, as ``kyukyu provision enroll`` leaves them: the demo device works offline
    from boot, as a provisioned one does."""
    from edge.provision import refresh_device
    from edge.settings import load_device_settings
    from kyukyu import testing

    config = testing.write_device_settings(
        world.workdir / "device",
        device_key=world.device_key,
        hub_public_key=world.hub_public_key,
        hub_url=world.url,
        device_id=world.device_id,
        roots_dir=world.ca_dir,
        base_lat=SCENE[0],
        base_lon=SCENE[1],
        reader=reader,
        device_name="デモ救急1",
        fire_department=FIRE_DEPARTMENT,
    )
    # What the refresh timer does on a device: the same code path, not a copy of it.
    refresh_device(load_device_settings(config))
    return config


class CardTapper:
    """The virtual card on the virtual reader: ``tap()`` takes the card away and puts the
    next patient's card on (``kyukyu demo tap`` asks for it through a file)."""

    def __init__(self, world: DemoWorld) -> None:
        from kyukyu import testing

        self.world = world
        self.port = testing.VPCD_PORTS[0]
        self.index = -1
        self.front: Any = None
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def tap(self) -> int:
        from edge.card_sim import CardImage, VirtualCard, VpcdFrontEnd

        with self.lock:
            if self.front is not None:
                self.front.stop()
                time.sleep(1.0)  # the reader sees the card leave
            self.index = (self.index + 1) % len(self.world.cards)
            path = self.world.cards[self.index]
            self.front = VpcdFrontEnd(VirtualCard(CardImage.load(path), path=path), port=self.port)
            self.front.start()
            return self.index

    def _watch(self) -> None:
        request = self.world.workdir / TAP_REQUEST
        while not self.stop.wait(0.2):
            if request.exists():
                request.unlink(missing_ok=True)
                self.tap()

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        with self.lock:
            if self.front is not None:
                self.front.stop()


def request_tap(workdir: Path) -> None:
    (workdir / TAP_REQUEST).touch()


def run_interactive(
    workdir: Path | None,
    *,
    say: Narrator = print,
    patients: int = 200,
    web: bool = False,
    host: str = "127.0.0.1",
    port: int | None = None,
    cards: int = 3,
) -> int:
    """The whole system, the paramedic screen for a person (terminal, or ``--web``)."""
    from kyukyu import testing

    keep = workdir
    if workdir is None:
        # The tap command needs a stable place: a temporary one, shown on screen.
        workdir = Path(tempfile.mkdtemp(prefix="kyukyu-demo-"))
    printed: list[str] = []

    def say_and_keep(line: str) -> None:
        printed.append(line)
        say(line)

    try:
        say_and_keep("▶ 準備中 / setting up (platform, 2 hospitals, virtual cards)…")
        with demo_world(workdir, say=say_and_keep, patients=patients, cards=cards) as world:
            testing.ensure_pcscd(world.workdir / "pcscd.log")
            config = write_device_config(world)
            tapper = CardTapper(world)
            world.stack.callback(tapper.close)
            tapper.start()
            print_sign_in(world, say_and_keep)
            tap_cmd = f"kyukyu demo tap --workdir {world.workdir}"
            say_and_keep(
                f"▶ 仮想カード / virtual cards: {len(world.cards)} patients, PIN {DEMO_PIN}"
            )
            say_and_keep(f"  次のカードをタッチ / tap the next card:  {tap_cmd}")
            say_and_keep(f"  the device's settings: {config}")
            # The terminal screen covers these lines: keep them where a person finds them.
            notes = world.workdir / "demo.txt"
            notes.write_text("\n".join(printed) + "\n", encoding="utf-8")
            notes.chmod(0o600)  # passwords and TOTP secrets of the demo accounts
            say(f"  (all of the above: {notes})")
            if web:
                return _serve_web(config, host, port, tapper, say)
            return _run_terminal(config, tapper, say)
    finally:
        if keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


def _serve_web(config: Path, host: str, port: int | None, tapper: CardTapper, say: Narrator) -> int:
    import shlex

    from textual_serve.server import Server

    import edge.ui
    from edge.settings import load_device_settings

    settings = load_device_settings(config)
    port = port if port is not None else settings.web_port
    # The first patient's card is on the reader when the screen opens: a new tap, not the
    # card of a case an earlier demo in this --workdir finished.
    settings.removal_marker_path.unlink(missing_ok=True)
    tapper.tap()
    say(f"▶ 救急隊の端末画面 / the paramedic screen: open http://{host}:{port}/ (Ctrl-C ends)")
    sys.stdout.flush()
    server = Server(
        shlex.join([sys.executable, "-m", "kyukyu", "edge", "--config", str(config)]),
        host=host,
        port=port,
        title="マイナ救急 デモ",
        templates_path=Path(edge.ui.__file__).parent / "web",
    )
    server.serve()
    return 0


def _run_terminal(config: Path, tapper: CardTapper, say: Narrator) -> int:
    from edge.settings import load_device_settings
    from edge.ui import make_app

    settings = load_device_settings(config)
    if sys.stdin.isatty():
        say("  Enter で端末画面を開く / press Enter to open the paramedic screen (Ctrl-Q ends)")
        sys.stdin.readline()
    settings.removal_marker_path.unlink(missing_ok=True)  # as in _serve_web
    app = make_app(settings)
    tapper.tap()
    try:
        app.run()
    finally:
        # Quit before the flow opened (起動中…): there is no flow to close.
        if app.opened_flow is not None:
            app.opened_flow.close()
    return 0
