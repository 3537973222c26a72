"""The hub's signed documents checked by code nobody here wrote: Node's built-in Ed25519
and the npm registry's ``canonicalize`` (RFC 8785), installed by this set-up.

The signed hospital directory, revocation snapshot and device key come from the real
hub (uvicorn on loopback) as raw response text; Node parses them, canonicalises the
signed member, compares its bytes with ours and verifies the signature against the
hub key. The test vector of docs/envelope.md goes through both implementations too.
Missing node or npm is a failure, never a skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sync.client import PlatformClient
from sync.receiver import HospitalClient
from sync.signed import b64d, canonical_json, verify_document
from sync.signing import public_key_from_b64, public_key_to_b64
from tests.sync._net import World, serve
from tests.sync._realhub import make_real_hub, populate

ROOT = Path(__file__).resolve().parents[2]
NPM_PACKAGE = "canonicalize@4.0.0"  # ESM, node >= 18

VERIFY_MJS = r"""
import canonicalize from "canonicalize";
import { createPublicKey, verify } from "node:crypto";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const { public_key, documents } = JSON.parse(input);
const key = createPublicKey({
  key: { kty: "OKP", crv: "Ed25519", x: public_key },
  format: "jwk",
});
const out = documents.map(({ member, text }) => {
  const doc = JSON.parse(text);
  const canonical = Buffer.from(canonicalize(doc[member]), "utf8");
  const signature = Buffer.from(doc.signature, "base64url");
  return { canonical_hex: canonical.toString("hex"), ok: verify(null, canonical, key, signature) };
});
process.stdout.write(JSON.stringify(out));
"""


@pytest.fixture(scope="session")
def node_jcs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with ``canonicalize`` from the npm registry and the verifier script."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("node and npm are needed (Debian: nodejs, npm): the check cannot run")
    venv = ROOT / ".venv"
    base = venv / "node-jcs" if venv.is_dir() else tmp_path_factory.mktemp("node-jcs")
    package = base / "node_modules" / "canonicalize" / "package.json"
    wanted = NPM_PACKAGE.rpartition("@")[2]
    if not package.is_file() or json.loads(package.read_text())["version"] != wanted:
        base.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [npm, "install", "--prefix", str(base), "--no-audit", "--no-fund", NPM_PACKAGE],
            capture_output=True,
            text=True,
            timeout=180,
            env=dict(os.environ, npm_config_update_notifier="false"),
        )
        if done.returncode != 0:
            pytest.fail(f"npm install {NPM_PACKAGE} failed: {done.stderr[-2000:]}")
    (base / "verify.mjs").write_text(VERIFY_MJS)
    return base


def node_verify(base: Path, public_key: str, documents: list[tuple[str, str]]) -> list[Any]:
    payload = {
        "public_key": public_key,
        "documents": [{"member": m, "text": t} for m, t in documents],
    }
    done = subprocess.run(
        ["node", str(base / "verify.mjs")],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=base,
    )
    assert done.returncode == 0, done.stderr
    out: list[Any] = json.loads(done.stdout)
    return out


def doc_block(marker: str) -> str:
    text = (ROOT / "docs" / "envelope.md").read_text(encoding="utf-8")
    m = re.search(rf"<!-- vector:{marker} -->\n```[a-z]*\n(.*?)\n```", text, re.S)
    assert m, f"docs/envelope.md has no {marker} block"
    return m.group(1)


def test_docs_vector_in_python_and_node(node_jcs: Path) -> None:
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    key = Ed25519PrivateKey.from_private_bytes(seed)
    pub = public_key_to_b64(key.public_key())
    assert pub == "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    text = doc_block("document")
    expected = bytes.fromhex(doc_block("canonical-hex"))
    doc = json.loads(text)
    assert canonical_json(doc["directory"]) == expected
    assert verify_document(doc, "directory", key.public_key()) == doc["directory"]
    assert key.sign(expected) == b64d(doc["signature"])  # Ed25519 is deterministic
    [got] = node_verify(node_jcs, pub, [("directory", text)])
    assert got == {"canonical_hex": expected.hex(), "ok": True}
    # And a changed body fails in Node too (the check can fail).
    tampered = text.replace("kyukyu-vector-v1", "kyukyu-vector-v2")
    assert node_verify(node_jcs, pub, [("directory", tampered)])[0]["ok"] is False


@pytest.fixture
def hub_docs(tmp_path: Path) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """The real hub's three signed documents, as raw response text."""
    hub = make_real_hub(tmp_path)
    world = World()
    with serve(hub.app) as url:
        populate(hub, url, world, 3)
        op = hub.operator(url)
        op.request_json(  # a name JCS and Python's json would write differently
            "POST",
            "/v1/hospitals",
            body={
                "name": "病院\u2028\U0001f600\x1f",
                "lat": 35.1 + 1e-7,
                "lon": 139.0,
                "hpke_public_key": public_key_to_b64(Ed25519PrivateKey.generate().public_key()),
                "signing_public_key": public_key_to_b64(Ed25519PrivateKey.generate().public_key()),
            },
        )
        op.close()
        device = PlatformClient(url, key=world.device_key, device_id=world.device_id)
        h = world.hospitals[0]
        hospital = HospitalClient(url, hospital_id=h.id, key=h.signing)
        docs = [
            (
                "directory",
                device.http.request(
                    "GET", "/v1/hospitals/directory", params={"lat": 35.6812, "lon": 139.7671}
                ).text,
            ),
            ("snapshot", device.http.request("GET", "/v1/revocation/snapshot").text),
            ("device", hospital.http.request("GET", f"/v1/devices/{world.device_id}/key").text),
        ]
        device.close()
        hospital.close()
        yield hub.state.hub_key.public_b64, docs


def test_hub_documents_verify_in_node(
    node_jcs: Path, hub_docs: tuple[str, list[tuple[str, str]]]
) -> None:
    pub, docs = hub_docs
    results = node_verify(node_jcs, pub, docs)
    key = public_key_from_b64(pub)
    for (member, text), got in zip(docs, results, strict=True):
        body = verify_document(json.loads(text), member, key)
        assert got["ok"] is True, member
        assert got["canonical_hex"] == canonical_json(body).hex(), member
    directory = json.loads(docs[0][1])["directory"]
    assert any("\u2028" in h["name"] for h in directory["hospitals"])
