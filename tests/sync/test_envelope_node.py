"""Envelope v2 checked by code nobody here wrote: Node's ``@hpke/core`` with
``@hpke/hybridkem-x-wing`` (X-Wing, draft-connolly-cfrg-xwing-kem) from the npm
registry, Node's built-in Ed25519 and WebCrypto AES-GCM, installed by this set-up.

Both directions on the same bytes: Node takes envelopes our ``seal_case`` made
(parses the framing and header, verifies the device's signature, HPKE-opens the
hospital's wrapped key with its 32-byte X-Wing seed, decrypts the payload with the
framing as AAD); Node seals a whole v2 envelope (canonical header, wrapped keys,
payload, device signature) that our ``open_case`` opens. The draft's first test
vector, which the package's README carries as its key example, pins the seed
expansion. Missing node or npm is a failure, never a skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from sync import BadSignature, SealedCase
from sync.envelope import V2
from sync.seal import OpeningKeys, SealingKeys, open_case, seal_case
from sync.signed import b64d, b64d_std, b64e, b64e_std
from sync.xwing import XWingPrivateKey

ROOT = Path(__file__).resolve().parents[2]
NPM_PACKAGES = ("@hpke/core@1.9.0", "@hpke/hybridkem-x-wing@0.7.0")

# draft-connolly-cfrg-xwing-kem, appendix "Test vectors", the first one: its seed and
# the first 16 bytes of its 1,216-byte public key.
DRAFT_SEED = "7f9c2ba4e88f827d616045507605853ed73b8093f6efbc88eb1a6eacfa66ef26"
DRAFT_PK_PREFIX = "e2236b35a8c24b39b10aa1323a96a919"

ENVELOPE_MJS = r"""
import { Aes256Gcm, CipherSuite, HkdfSha256 } from "@hpke/core";
import { XWing } from "@hpke/hybridkem-x-wing";
import { createPrivateKey, createPublicKey, sign, verify, webcrypto } from "node:crypto";

const suite = new CipherSuite({ kem: new XWing(), kdf: new HkdfSha256(), aead: new Aes256Gcm() });
const ENC = 1120;
const SUITE_NAME = "MLKEM768-X25519/HKDF-SHA256/AES-256-GCM";
const te = new TextEncoder();
const b64u = (s) => Buffer.from(s, "base64url");

function info(caseId, deviceId, hospitalId) {
  const parts = ["kyukyu-case-v2", caseId, deviceId, hospitalId].map((s) => Buffer.from(s));
  return Buffer.concat(parts.flatMap((p, i) => (i ? [Buffer.from([0]), p] : [p])));
}

async function openEnvelope(raw, seed, hospitalId, devicePublic) {
  const buf = Buffer.from(raw, "base64");
  if (buf.subarray(0, 4).toString("latin1") !== "KKSC") throw new Error("magic");
  if (buf[4] !== 2) throw new Error("version");
  const h = buf.readUInt32BE(5);
  const header = JSON.parse(buf.subarray(9, 9 + h).toString("utf8"));
  const p = buf.readUInt32BE(9 + h);
  const payload = buf.subarray(13 + h, 13 + h + p);
  const signature = buf.subarray(13 + h + p);
  if (signature.length !== 64) throw new Error("length");
  const jwk = { kty: "OKP", crv: "Ed25519", x: devicePublic };
  const device = createPublicKey({ key: jwk, format: "jwk" });
  if (!verify(null, buf.subarray(0, 13 + h + p), device, signature)) throw new Error("signature");
  if (header.v !== 2 || header.hpke !== SUITE_NAME) throw new Error("suite");
  const entry = header.recipients.find((r) => r.id === hospitalId);
  if (!entry) throw new Error("not a recipient");
  const wrapped = b64u(entry.key);
  const sk = await suite.kem.importKey("raw", new Uint8Array(seed), false);
  const params = {
    recipientKey: sk,
    enc: wrapped.subarray(0, ENC),
    info: info(header.case_id, header.device_id, hospitalId),
  };
  const contentKey = await suite.open(params, wrapped.subarray(ENC));
  const key = await webcrypto.subtle.importKey("raw", contentKey, "AES-GCM", false, ["decrypt"]);
  const gcm = { name: "AES-GCM", iv: b64u(header.nonce), additionalData: buf.subarray(0, 9 + h) };
  const plain = await webcrypto.subtle.decrypt({ ...gcm, tagLength: 128 }, key, payload);
  return { case_id: header.case_id, payload: Buffer.from(plain).toString("base64") };
}

async function sealEnvelope(s) {
  const contentKey = webcrypto.getRandomValues(new Uint8Array(32));
  const nonce = webcrypto.getRandomValues(new Uint8Array(12));
  const recipients = [];
  for (const r of s.recipients) {
    const pk = await suite.kem.importKey("raw", new Uint8Array(b64u(r.public_key)), true);
    const sealed = await suite.seal(
      { recipientPublicKey: pk, info: info(s.case_id, s.device_id, r.id) },
      contentKey,
    );
    const wrapped = Buffer.concat([Buffer.from(sealed.enc), Buffer.from(sealed.ct)]);
    recipients.push({ id: r.id, key: wrapped.toString("base64url") });
  }
  // Canonical: keys sorted, no spaces, ASCII (these fields are ASCII).
  const header = Buffer.from(JSON.stringify({
    aead: "AES-256-GCM", case_id: s.case_id, content_type: "application/fhir+json",
    created_at: s.created_at, device_id: s.device_id,
    hpke: SUITE_NAME,
    nonce: Buffer.from(nonce).toString("base64url"), recipients, v: 2,
  }));
  const prefix = Buffer.alloc(9);
  prefix.write("KKSC", 0, "latin1");
  prefix[4] = 2;
  prefix.writeUInt32BE(header.length, 5);
  const aad = Buffer.concat([prefix, header]);
  const key = await webcrypto.subtle.importKey("raw", contentKey, "AES-GCM", false, ["encrypt"]);
  const ct = Buffer.from(await webcrypto.subtle.encrypt(
    { name: "AES-GCM", iv: nonce, additionalData: aad, tagLength: 128 }, key, b64u(s.payload),
  ));
  const plen = Buffer.alloc(4);
  plen.writeUInt32BE(ct.length, 0);
  const body = Buffer.concat([aad, plen, ct]);
  const device = createPrivateKey({
    key: { kty: "OKP", crv: "Ed25519", x: s.device_public, d: s.device_private }, format: "jwk",
  });
  return Buffer.concat([body, sign(null, body, device)]).toString("base64");
}

let input = "";
for await (const chunk of process.stdin) input += chunk;
const job = JSON.parse(input);
const seed = b64u(job.seed);
const pair = await suite.kem.generateKeyPairDerand(new Uint8Array(seed));
const publicRaw = await suite.kem.serializePublicKey(pair.publicKey);
const publicKey = Buffer.from(publicRaw).toString("base64url");
const opened = [];
for (const raw of job.open) {
  try {
    const got = await openEnvelope(raw, seed, job.hospital_id, job.device_public);
    opened.push({ ok: true, ...got });
  } catch (e) {
    opened.push({ ok: false, error: String(e && e.message ? e.message : e) });
  }
}
const sealed = job.seal ? await sealEnvelope(job.seal) : null;
process.stdout.write(JSON.stringify({ public_key: publicKey, opened, sealed }));
"""


@pytest.fixture(scope="session")
def node_hpke(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with ``@hpke/core`` and ``@hpke/hybridkem-x-wing`` from the npm
    registry and the envelope script."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("node and npm are needed (Debian: nodejs, npm): the check cannot run")
    venv = ROOT / ".venv"
    base = venv / "node-hpke" if venv.is_dir() else tmp_path_factory.mktemp("node-hpke")

    def installed(spec: str) -> bool:
        name, _, version = spec.rpartition("@")
        package = base / "node_modules" / name / "package.json"
        return package.is_file() and json.loads(package.read_text())["version"] == version

    if not all(installed(spec) for spec in NPM_PACKAGES):
        base.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [npm, "install", "--prefix", str(base), "--no-audit", "--no-fund", *NPM_PACKAGES],
            capture_output=True,
            text=True,
            timeout=180,
            env=dict(os.environ, npm_config_update_notifier="false"),
        )
        if done.returncode != 0:
            pytest.fail(f"npm install {' '.join(NPM_PACKAGES)} failed: {done.stderr[-2000:]}")
    (base / "envelope.mjs").write_text(ENVELOPE_MJS)
    return base


def run_node(base: Path, job: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        ["node", str(base / "envelope.mjs")],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=base,
    )
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    return out


DEVICE = Ed25519PrivateKey.generate()
HOSPITAL = XWingPrivateKey.generate()
OTHER = XWingPrivateKey.generate()
PAYLOAD = json.dumps(
    {"resourceType": "Bundle", "type": "document", "name": "山田太郎", "pad": "x" * 4000},
    ensure_ascii=False,
).encode()


def raw_public(key: Ed25519PublicKey) -> str:
    return b64e(key.public_bytes_raw())


def lookup(device_id: str) -> Ed25519PublicKey | None:
    return DEVICE.public_key() if device_id == "dev-1" else None


def test_python_seals_node_opens_and_node_seals_python_opens(node_hpke: Path) -> None:
    ours = seal_case(
        PAYLOAD,
        case_id="case-py",
        device_id="dev-1",
        device_key=DEVICE,
        recipients={"h-other": OTHER.public_key(), "h-0": HOSPITAL.public_key()},
    )
    assert SealedCase.from_bytes(ours).version == V2
    tampered = bytearray(ours)
    tampered[-100] ^= 1  # in the payload: Node's signature check refuses it
    result = run_node(
        node_hpke,
        {
            "seed": b64e(HOSPITAL.seed_bytes()),
            "hospital_id": "h-0",
            "device_public": raw_public(DEVICE.public_key()),
            "open": [b64e_std(ours), b64e_std(bytes(tampered))],
            "seal": {
                "case_id": "case-node",
                "device_id": "dev-1",
                "created_at": 1_790_000_000,
                "device_public": raw_public(DEVICE.public_key()),
                "device_private": b64e(DEVICE.private_bytes_raw()),
                "payload": b64e(PAYLOAD),
                "recipients": [
                    {"id": "h-0", "public_key": b64e(HOSPITAL.public_key().to_bytes())},
                    {"id": "h-other", "public_key": b64e(OTHER.public_key().to_bytes())},
                ],
            },
        },
    )
    # The same public key from the same seed, in both implementations.
    assert b64d(result["public_key"]) == HOSPITAL.public_key().to_bytes()
    good, bad = result["opened"]
    assert good["ok"] is True, good
    assert good["case_id"] == "case-py"
    assert b64d_std(good["payload"]) == PAYLOAD
    assert bad == {"ok": False, "error": "signature"}

    theirs = b64d_std(result["sealed"])
    parsed = SealedCase.from_bytes(theirs)  # Node's header is byte-for-byte canonical
    assert (parsed.version, parsed.case_id, parsed.recipient_ids) == (
        V2,
        "case-node",
        ("h-0", "h-other"),
    )
    for hid, key in (("h-0", HOSPITAL), ("h-other", OTHER)):
        opened = open_case(
            theirs,
            hospital_id=hid,
            hospital_key=OpeningKeys(x25519=X25519PrivateKey.generate(), xwing=key),
            device_key_for=lookup,
        )
        assert opened.payload == PAYLOAD
    with pytest.raises(BadSignature):
        open_case(
            theirs[:-1] + bytes([theirs[-1] ^ 1]),
            hospital_id="h-0",
            hospital_key=HOSPITAL,
            device_key_for=lookup,
        )
    # A recipient given both kinds of key gets the v2 wrapping (the device's rule).
    both = SealingKeys(x25519=X25519PrivateKey.generate().public_key(), xwing=HOSPITAL.public_key())
    v2 = seal_case(
        PAYLOAD, case_id="c", device_id="dev-1", device_key=DEVICE, recipients={"h-0": both}
    )
    assert SealedCase.from_bytes(v2).version == V2


def test_the_drafts_first_vector_as_the_package_ships_it(node_hpke: Path) -> None:
    """The package's README key example is the draft's first test vector (seed, pk)."""
    readme = (node_hpke / "node_modules/@hpke/hybridkem-x-wing/README.md").read_text()
    pub = re.search(r'pub:\s*"([A-Za-z0-9_-]+)"', readme)
    priv = re.search(r'priv:\s*"([A-Za-z0-9_-]+)"', readme)
    assert pub, "the package README no longer carries the key example"
    assert priv, "the package README no longer carries the key example"
    seed, public = b64d(priv.group(1)), b64d(pub.group(1))
    assert seed.hex() == DRAFT_SEED
    assert public.hex().startswith(DRAFT_PK_PREFIX)
    assert XWingPrivateKey.from_seed(seed).public_key().to_bytes() == public
