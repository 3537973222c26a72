"""``kyukyu demo``: the README's main job, end to end through the real components."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.components import Pcscd


def test_demo_runs_the_whole_flow(pcscd: Pcscd, tmp_path: Path) -> None:
    work = tmp_path / "demo"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "kyukyu",
            "demo",
            "--headless",
            "--json",
            "--workdir",
            str(work),
            "--patients",
            "50",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["card"]["trusted"] is True
    assert report["card"]["attributes_integrity"] is True
    assert report["summary"]["status"] == "found"
    assert sorted(report["answers"].values()) == ["accept", "decline"]
    assert all(n == 1 for n in report["hospitals_received"].values())
    assert report["outbox_pending"] == 0
    assert "Traceback" not in proc.stderr

    # The device keeps nothing readable about the patient; the output shows no identity.
    from edge.card_sim import CardImage

    (card_file,) = (work / "cards").glob("*.json")
    holder = CardImage.load(card_file).holder
    for f in (work / "device").iterdir():
        blob = f.read_bytes()
        assert holder.name.encode() not in blob
        assert holder.address.encode() not in blob
    assert holder.name not in proc.stdout + proc.stderr
    assert holder.address not in proc.stdout + proc.stderr
