"""The device reports its outbox depth (``X-Kyukyu-Outbox-Depth`` on POST /v1/cases) and
the real hub's /metrics shows it (kyukyu_hub_device_outbox_depth), scraped over HTTP from
the hub's metrics server and parsed with prometheus_client's text parser."""

from __future__ import annotations

from pathlib import Path

import httpx

from hub_server.core.metrics import families, serve_metrics
from sync import seal_case
from sync.client import PlatformClient
from sync.outbox import Outbox
from sync.sender import Sender
from tests.sync._net import World, serve
from tests.sync._realhub import make_real_hub, populate


def _depth(metrics_url: str) -> dict[str, float]:
    text = httpx.get(metrics_url, timeout=10).text
    for family in families(text):
        if family.name == "kyukyu_hub_device_outbox_depth":
            return {s.name: s.value for s in family.samples if not s.labels}
    raise AssertionError("kyukyu_hub_device_outbox_depth is not on /metrics")


def test_sender_reports_the_outbox_depth_to_the_hub_metrics(tmp_path: Path) -> None:
    hub = make_real_hub(tmp_path / "hub")
    db_url = f"sqlite:///{tmp_path / 'hub' / 'hub.db'}"
    server, thread = serve_metrics(0, db_url=db_url, registry=hub.state.metrics.registry)
    metrics_url = f"http://127.0.0.1:{server.server_port}/metrics"
    world = World()
    try:
        with serve(hub.app) as url:
            populate(hub, url, world, 1)
            assert _depth(metrics_url)["kyukyu_hub_device_outbox_depth_count"] == 0
            outbox = Outbox(tmp_path / "device" / "outbox.db")
            for i in range(3):
                outbox.enqueue(
                    seal_case(
                        b"x" * 100,
                        case_id=f"depth-{i}",
                        device_id=world.device_id,
                        device_key=world.device_key,
                        recipients=world.recipients(),
                    )
                )
            with (
                PlatformClient(url, key=world.device_key, device_id=world.device_id) as client,
                Sender(outbox, client, concurrency=1, batch=2) as sender,
            ):
                assert sender.drain(timeout=30).remaining == 0
            outbox.close()
            got = _depth(metrics_url)
            # Two rounds: two cases seen with 3 unsent, then the last one with 1.
            assert got["kyukyu_hub_device_outbox_depth_count"] == 3
            assert got["kyukyu_hub_device_outbox_depth_sum"] == 3 + 3 + 1
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
