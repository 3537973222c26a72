"""From the device's POST to the case rendered in the hospital's browser: p50 / p99.

The platform is the real hub under uvicorn (SQLite); the hospital is a real
``kyukyu hospital serve`` process (its own SQLite); the dashboard is open in
Debian's Chromium (headless, Playwright), signed in with password and TOTP. Each
case is sealed first; the clock starts right before ``POST /v1/cases`` and stops
when a MutationObserver in the page sees the case's card (``Date.now()``, the same
machine's clock). Cases are sent one after the other. Prints one JSON line.

``--stored N`` first stores N cases in the hospital's database (the real store, the
same sealed-at-rest Bundles a received case has) before the service starts, so the
list the browser shows holds them (it shows the newest 100): the cost of one more
case must not grow with the day's cases.

Every case is the complete record (``full_record``: two sets with every value, six
times, treatments, heard history, crew, ETA and the summary), the largest a crew sends.

    .venv/bin/python benchmarks/hospital_push.py [--cases 50] [--stored 500]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hospital.main import HospitalRuntime  # noqa: E402
from hospital.settings import HospitalSettings  # noqa: E402
from sync.fhir_case import build_case_bundle  # noqa: E402
from sync.seal import seal_json  # noqa: E402
from tests.hospital._world import PASSWORD, SCENE, full_record, platform, totp_now  # noqa: E402

OBSERVER = """
() => {
  window.__seen = {};
  const mark = () => {
    const now = Date.now();
    for (const el of document.querySelectorAll('[data-case-id]')) {
      const id = el.getAttribute('data-case-id');
      if (!(id in window.__seen)) window.__seen[id] = now;
    }
  };
  new MutationObserver(mark).observe(document.getElementById('cases'),
                                     {childList: true, subtree: true});
  mark();
}
"""


def full_case(case_id: str, device_id: str) -> dict[str, Any]:
    """The complete record, as a device seals it."""
    return build_case_bundle(full_record(case_id, device_id, datetime.now(UTC)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _store_cases(settings: HospitalSettings, device_id: str, n: int) -> None:
    """``n`` cases in the hospital's store, received before the benchmark starts."""
    runtime = HospitalRuntime(settings)
    try:
        now = int(time.time())
        for i in range(n):
            case_id = str(uuid.uuid4())
            runtime.store.add_case(
                case_id=case_id,
                event_id=1_000_000 + i,
                device_id=device_id,
                sealed_at=now,
                bundle=full_case(case_id, device_id),
                sender_department="テスト市消防本部",
            )
    finally:
        runtime.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=50)
    ap.add_argument("--gap", type=float, default=0.05, help="seconds between cases")
    ap.add_argument("--stored", type=int, default=0, help="cases stored before the first")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="kyukyu-hospital-bench-") as tmp:
        tmp_path = Path(tmp)
        with platform(tmp_path) as p:
            site = p.new_hospital(tmp_path, "ベンチ病院", 35.685, 139.77)
            secret = p.add_user(site, "bench")
            device = p.new_device()
            if args.stored:
                _store_cases(site.settings(), device.id, args.stored)
            port = _free_port()
            log = (tmp_path / "hospital.log").open("w")
            proc = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "kyukyu"),
                    "hospital",
                    "serve",
                    "--data-dir",
                    str(site.data_dir),
                    "--port",
                    str(port),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            url = f"http://127.0.0.1:{port}"
            try:
                deadline = time.monotonic() + 30
                while True:
                    try:
                        if httpx.get(url + "/login", timeout=1).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise SystemExit("hospital serve did not start: see " + log.name)
                    time.sleep(0.1)
                directory = {h.id: h for h in device.client.hospital_directory(*SCENE)}
                key = directory[site.id].hpke_public_key
                with sync_playwright() as pw:
                    browser = pw.chromium.launch(
                        executable_path="/usr/bin/chromium",
                        headless=True,
                        args=[
                            "--no-sandbox",
                            "--disable-gpu",
                            "--disable-background-networking",
                            "--disable-component-update",
                            "--disable-sync",
                        ],
                    )
                    page = browser.new_page(viewport={"width": 1600, "height": 1000})
                    page.goto(url + "/login")
                    page.fill("#username", "bench")
                    page.fill("#password", PASSWORD)
                    page.fill("#totp", totp_now(secret))
                    page.click("#sign-in")
                    page.wait_for_selector("#live-state[data-state='live']")
                    page.evaluate(OBSERVER)
                    latencies: list[float] = []
                    for _ in range(args.cases):
                        case_id = str(uuid.uuid4())
                        sealed = seal_json(
                            full_case(case_id, device.id),
                            case_id=case_id,
                            device_id=device.id,
                            device_key=device.key,
                            recipients={site.id: key},
                        )
                        t0 = time.time() * 1000
                        device.client.post_case(
                            case_id, [site.id], sealed, idempotency_key=str(uuid.uuid4())
                        )
                        seen = page.wait_for_function(
                            f"() => window.__seen[{json.dumps(case_id)}]", timeout=30_000
                        ).json_value()
                        latencies.append(float(seen) - t0)
                        time.sleep(args.gap)
                    browser.close()
            finally:
                proc.terminate()
                proc.wait(10)
                log.close()
    latencies.sort()
    p99_index = min(len(latencies) - 1, max(0, round(0.99 * len(latencies)) - 1))
    out = {
        "benchmark": "hospital_push",
        "cases": len(latencies),
        "stored": args.stored,
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(latencies[p99_index], 1),
        "max_ms": round(latencies[-1], 1),
        "mean_ms": round(statistics.fmean(latencies), 1),
        "target_p99_ms": 1000,
        "hub_db": "sqlite",
        "hospital_db": "sqlite",
        "browser": "chromium-headless",
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
