"""The hospital's hybrid (X-Wing) key: ``kyukyu hospital init`` makes it beside the
X25519 key, kept as its 32-byte seed in the 0600 key file; an install made before it
still loads and opens v1; the loaded identity opens v1 and v2."""

from __future__ import annotations

import io
import json
import stat
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hospital.errors import KeyFileOpenToOthers, NotInitialised
from hospital.identity import HospitalKeys, load_identity
from kyukyu.cli import main as kyukyu_main
from sync import SealedCase, WrongKeyKind
from sync.envelope import V1, V2
from sync.seal import SealingKeys, open_case, seal_case
from sync.signing import b64d, b64e
from sync.xwing import PUBLIC_KEY_LEN, SEED_LEN, XWingPrivateKey
from tests.hospital._world import platform

DEVICE = Ed25519PrivateKey.generate()


def lookup(device_id: str) -> Ed25519PublicKey | None:
    return DEVICE.public_key() if device_id == "dev-1" else None


def _run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = kyukyu_main(list(args))
    return rc, out.getvalue(), err.getvalue()


def _sealed(keys: HospitalKeys, hospital_id: str) -> tuple[bytes, bytes]:
    """The same case sealed v1 and v2 to the hospital's two keys."""
    assert keys.xwing is not None
    recipient = SealingKeys(x25519=keys.hpke.public_key(), xwing=keys.xwing.public_key())
    v1, v2 = (
        seal_case(
            b'{"resourceType":"Bundle"}',
            case_id=f"case-v{version}",
            device_id="dev-1",
            device_key=DEVICE,
            recipients={hospital_id: recipient},
            version=version,
        )
        for version in (V1, V2)
    )
    return v1, v2


def test_init_makes_both_keys_and_an_old_install_still_loads(tmp_path: Path) -> None:
    with platform(tmp_path) as p:
        token = p.operator.request_json(
            "POST", "/v1/hospital-enrollment-tokens", body={"name": "耐量子病院"}
        )["token"]
        data = tmp_path / "h"
        rc, out, err = _run(
            "hospital", "init", "--data-dir", str(data), "--token", token,
            "--platform", p.url, "--lat", "35.7", "--lon", "139.7",
        )  # fmt: skip
        assert rc == 0, err
    doc = json.loads(out)
    key_file = data / "hospital-key.json"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    private = json.loads(key_file.read_text())
    seed = b64d(private["xwing_seed"])
    assert len(seed) == SEED_LEN
    # The seed is the private key; only its public half is in identity.json.
    assert private["xwing_seed"] not in (data / "identity.json").read_text()
    public = XWingPrivateKey.from_seed(seed).public_key().to_bytes()
    assert len(public) == PUBLIC_KEY_LEN
    assert b64d(doc["xwing_public_key"]) == public
    assert json.loads((data / "identity.json").read_text())["xwing_public_key"] == b64e(public)

    ident = load_identity(data)
    assert ident.keys.xwing is not None
    assert ident.keys.xwing.seed_bytes() == seed
    v1, v2 = _sealed(ident.keys, ident.hospital_id)
    assert SealedCase.from_bytes(v2).version == V2
    for envelope in (v1, v2):
        opened = open_case(
            envelope,
            hospital_id=ident.hospital_id,
            hospital_key=ident.keys.opening_keys(),
            device_key_for=lookup,
        )
        assert opened.bundle() == {"resourceType": "Bundle"}

    # An install made before the hybrid key: the same file without ``xwing_seed``.
    del private["xwing_seed"]
    key_file.unlink()
    key_file.write_text(json.dumps(private))
    key_file.chmod(0o640)  # others may read it: refused, told apart by its class
    with pytest.raises(KeyFileOpenToOthers) as refused:
        load_identity(data)
    assert refused.value.code == "hospital_not_initialised"
    key_file.chmod(0o600)
    old = load_identity(data)
    assert old.keys.xwing is None
    assert old.keys.xwing_public_b64() is None
    assert "xwing_public_key" not in old.public_doc()
    opened = open_case(
        v1,
        hospital_id=old.hospital_id,
        hospital_key=old.keys.opening_keys(),
        device_key_for=lookup,
    )
    assert opened.case_id == "case-v1"
    with pytest.raises(WrongKeyKind):
        open_case(
            v2,
            hospital_id=old.hospital_id,
            hospital_key=old.keys.opening_keys(),
            device_key_for=lookup,
        )

    # A seed that is not 32 bytes: a typed refusal, not a crash.
    private["xwing_seed"] = b64e(bytes(31))
    key_file.write_text(json.dumps(private))
    with pytest.raises(NotInitialised):
        load_identity(data)


def test_keys_save_and_load_round_trip(tmp_path: Path) -> None:
    keys = HospitalKeys.generate()
    assert keys.xwing is not None
    path = tmp_path / "hospital-key.json"
    keys.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = HospitalKeys.load(path)
    assert again.xwing is not None
    assert again.xwing.seed_bytes() == keys.xwing.seed_bytes()
    assert again.xwing_public_b64() == keys.xwing_public_b64()
    assert keys.xwing.seed_bytes().hex() not in repr(keys)


def test_the_running_service_opens_v2_cases_from_the_platform(tmp_path: Path) -> None:
    """The receiving service itself (its stream from the platform) opens a v2 case with
    the hybrid key its init made, beside a v1 case: both stored, none refused."""
    import uuid

    from hospital.main import HospitalRuntime
    from tests.hospital._world import make_bundle, wait_for

    with platform(tmp_path) as p:
        site = p.new_hospital(tmp_path, "耐量子受信病院", 35.7, 139.7)
        device = p.new_device()
        keys = load_identity(site.data_dir).keys
        assert keys.xwing is not None
        recipient = SealingKeys(x25519=keys.hpke.public_key(), xwing=keys.xwing.public_key())
        runtime = HospitalRuntime(site.settings())
        runtime.service.start()
        try:
            sent = {}
            for version in (V2, V1):
                case_id = str(uuid.uuid4())
                bundle = make_bundle(case_id, device.id)
                envelope = seal_case(
                    json.dumps(bundle, ensure_ascii=False).encode(),
                    case_id=case_id,
                    device_id=device.id,
                    device_key=device.key,
                    recipients={site.id: recipient},
                    version=version,
                )
                assert SealedCase.from_bytes(envelope).version == version
                device.client.post_case(
                    case_id, [site.id], envelope, idempotency_key=str(uuid.uuid4())
                )
                sent[version] = case_id
            for case_id in sent.values():
                wait_for(lambda c=case_id: runtime.store.case(c), what=f"case {case_id}")
            assert runtime.store.rejections() == []
        finally:
            runtime.service.stop()
            runtime.close()
