"""``kyukyu provision enroll`` / ``retire`` against a real hub under uvicorn."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from edge.jpki.revocation import RevocationSnapshot
from edge.provision import DeviceLayout, load_device_key
from edge.settings import load_device_settings
from sync import AuthError
from sync.client import PlatformClient, verify_hub_signature
from sync.outbox import Outbox
from sync.seal import seal_case
from sync.signing import public_key_from_b64
from tests.provision._hub import LiveHub, live_hub
from tests.provision.conftest import KYUKYU_BIN, run_cli, run_json


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveHub]:
    with live_hub(tmp_path_factory.mktemp("hub")) as h:
        yield h


@pytest.fixture
def root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A staging root with `provision install` done."""
    r = tmp_path / "root"
    r.mkdir()
    rc, _ = run_json(capsys, "provision", "install", "--root", str(r), "--kyukyu-bin", KYUKYU_BIN)
    assert rc == 0
    return r


def _uid(root: Path, name: str) -> tuple[int, int]:
    for line in (root / "etc/passwd").read_text().splitlines():
        parts = line.split(":")
        if parts[0] == name:
            return int(parts[2]), int(parts[3])
    raise AssertionError(name)


def _enroll(
    capsys: pytest.CaptureFixture[str], root: Path, hub: LiveHub, *extra: str
) -> tuple[int, dict[str, object]]:
    return run_json(
        capsys,
        "provision",
        "enroll",
        "--root",
        str(root),
        "--hub",
        hub.url,
        f"--token={hub.token()}",  # tokens may start with "-"
        "--name",
        "救急車1号",
        *extra,
    )


def _device(root: Path, hub: LiveHub) -> PlatformClient:
    s = load_device_settings(root / "etc/kyukyu/edge.env")
    key = load_device_key(DeviceLayout(root).host(s.key_file))
    return PlatformClient(s.hub_url or "", key=key, device_id=s.device_id)


def test_enroll_creates_key_pins_hub_and_fetches_documents(
    root: Path, hub: LiveHub, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out = _enroll(capsys, root, hub, f"--expect-hub-key={hub.hub_key_b64}")
    assert rc == 0, out
    assert out["hospitals"] == 2
    uid, gid = _uid(root, "kyukyu-edge")
    key = root / "etc/kyukyu/credentials/edge-device-key.pem"
    st = key.stat()
    assert (st.st_mode & 0o777, st.st_uid, st.st_gid) == (0o600, uid, gid)

    s = load_device_settings(root / "etc/kyukyu/edge.env")
    assert s.enrolled
    assert s.device_id == out["device_id"]
    assert s.hub_url == hub.url
    assert s.hub_public_key == hub.hub_key_b64
    assert s.key_file == Path("/etc/kyukyu/credentials/edge-device-key.pem")
    assert s.enrolled_at
    cfg = (root / "etc/kyukyu/edge.env").stat()
    assert (cfg.st_mode & 0o777, cfg.st_gid) == (0o640, gid)

    pinned = public_key_from_b64(s.hub_public_key)
    state = root / "var/lib/kyukyu-edge"
    for name in ("directory.json", "revocation.kkrv"):
        f = state / name
        assert (f.stat().st_mode & 0o777, f.stat().st_uid) == (0o600, uid)
    assert verify_hub_signature(
        json.loads((state / "directory.json").read_text()), "directory", pinned
    )
    # The snapshot is what the edge flow loads (settings.revocation_path), hub-signed.
    snap = RevocationSnapshot.from_bytes(
        (state / "revocation.kkrv").read_bytes(),
        verify_signature=lambda payload, sig: pinned.verify(sig, payload),
    )
    assert snap.sequence == out["revocation_version"]
    assert DeviceLayout(root).host(s.revocation_path) == state / "revocation.kkrv"
    # The platform knows the key on disk: a signed call as the device works.
    with _device(root, hub) as dev:
        me = dev.http.request_json("GET", "/v1/devices/me")
    assert me["id"] == s.device_id
    assert me["revoked"] is False

    # Enrolling twice is refused (retire first); the existing identity is untouched.
    before = key.read_bytes()
    rc, again = _enroll(capsys, root, hub)
    assert rc == 1
    assert "already enrolled" in again["error"]["detail"]  # type: ignore[index]
    assert key.read_bytes() == before


def test_wrong_hub_key_or_used_token_enrolls_nothing(
    root: Path, hub: LiveHub, capsys: pytest.CaptureFixture[str]
) -> None:
    other = "A" * 43
    rc, out = _enroll(capsys, root, hub, f"--expect-hub-key={other}")
    assert rc == 1
    assert "signing key" in out["error"]["detail"]  # type: ignore[index]
    assert not (root / "etc/kyukyu/credentials/edge-device-key.pem").exists()
    token = hub.token()
    argv = ["provision", "enroll", "--root", str(root), "--hub", hub.url, f"--token={token}"]
    assert run_json(capsys, *argv)[0] == 0
    rc, out = run_json(capsys, *argv, "--force")
    assert rc == 1, "a one-time token works once"
    assert "platform" in out["error"]["detail"]  # type: ignore[index]


def test_https_needs_a_pinned_ca_and_http_only_on_loopback(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for url, words in (
        ("https://hub.example", "--ca"),
        ("http://hub.example", "https://"),
    ):
        rc, out = run_json(
            capsys, "provision", "enroll", "--root", str(root), "--hub", url, "--token", "t"
        )
        assert rc == 1
        assert words in out["error"]["detail"]  # type: ignore[index]


def _queue_case(root: Path) -> None:
    s = load_device_settings(root / "etc/kyukyu/edge.env")
    layout = DeviceLayout(root)
    sealed = seal_case(
        b"{}",
        case_id=str(uuid.uuid4()),
        device_id=s.device_id or "",
        device_key=load_device_key(layout.host(s.key_file)),
        recipients={"h0": X25519PrivateKey.generate().public_key()},
    )
    with Outbox(layout.host(s.outbox_path)) as outbox:
        outbox.enqueue(sealed)


def test_retire_refuses_unsent_cases_then_revokes_and_wipes(
    root: Path, hub: LiveHub, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _enroll(capsys, root, hub)[0] == 0
    device, device_again = _device(root, hub), _device(root, hub)
    _queue_case(root)
    state = root / "var/lib/kyukyu-edge"
    assert (state / "outbox.sqlite3").exists()

    retire = ["provision", "retire", "--root", str(root), "--staff-key", str(hub.staff_key_file)]
    rc, out = run_json(capsys, *retire)
    assert rc == 1
    assert "1 sealed case(s) not sent" in out["error"]["detail"]  # type: ignore[index]
    assert (root / "etc/kyukyu/credentials/edge-device-key.pem").exists()
    with device:  # still enrolled
        assert device.http.request_json("GET", "/v1/devices/me")["revoked"] is False

    # Enrolling again over it would orphan the sealed case: refused too.
    rc, out = run_json(
        capsys,
        "provision",
        "enroll",
        "--root",
        str(root),
        "--hub",
        hub.url,
        f"--token={hub.token()}",
        "--force",
    )
    assert rc == 1
    assert "not sent yet" in out["error"]["detail"]  # type: ignore[index]

    rc, out = run_json(capsys, *retire, "--force")
    assert rc == 0, out
    assert out["revoked_on_platform"] is True
    assert out["unsent_discarded"] == 1
    assert not (root / "etc/kyukyu/credentials/edge-device-key.pem").exists()
    assert list(state.iterdir()) == []
    s = load_device_settings(root / "etc/kyukyu/edge.env")
    assert not s.enrolled
    assert s.device_id is None
    with device_again, pytest.raises(AuthError) as err:  # the platform refuses the old identity
        device_again.http.request_json("GET", "/v1/devices/me")
    assert err.value.status == 403
    # The device can be enrolled afresh afterwards.
    assert _enroll(capsys, root, hub)[0] == 0


def test_retire_when_the_platform_cannot_revoke(
    root: Path, hub: LiveHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _enroll(capsys, root, hub)[0] == 0
    retire = ["provision", "retire", "--root", str(root)]
    rc, out = run_json(capsys, *retire)  # no staff key: the device cannot revoke itself
    assert rc == 1
    assert "did not revoke" in out["error"]["detail"]  # type: ignore[index]
    assert (root / "etc/kyukyu/credentials/edge-device-key.pem").exists()
    rc, text, _ = run_cli(capsys, *retire, "--force")
    assert rc == 0
    assert "NOT revoked on the platform" in text
    assert not (root / "etc/kyukyu/credentials/edge-device-key.pem").exists()


def test_enroll_over_tls_pins_the_platform_ca(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from kyukyu.testing import serve_in_thread
    from tests.provision._hub import live_hub
    from tests.sync.test_tls import make_ca, pem, server_cert

    ca_key, ca = make_ca("Kyukyu Platform Test CA")
    _, other = make_ca("Some Other CA")
    key, cert = server_cert(ca_key, ca)
    (tmp_path / "ca.pem").write_bytes(pem(ca))
    (tmp_path / "other.pem").write_bytes(pem(other))
    (tmp_path / "server.pem").write_bytes(pem(cert))
    (tmp_path / "server.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with (
        live_hub(tmp_path / "plain", hospitals=1) as hub,
        serve_in_thread(
            hub.real.app,
            ssl_certfile=str(tmp_path / "server.pem"),
            ssl_keyfile=str(tmp_path / "server.key"),
        ) as url,
    ):
        assert url.startswith("https://")
        argv = ["provision", "enroll", "--root", str(root), "--hub", url]
        rc, out = run_json(
            capsys, *argv, f"--token={hub.token()}", "--ca", str(tmp_path / "other.pem")
        )
        assert rc == 1, "a platform certificate from another CA is refused"
        assert not (root / "etc/kyukyu/credentials/edge-device-key.pem").exists()
        rc, out = run_json(
            capsys, *argv, f"--token={hub.token()}", "--ca", str(tmp_path / "ca.pem")
        )
        assert rc == 0, out
        pinned = root / "etc/kyukyu/platform-ca.pem"
        assert pinned.read_bytes() == pem(ca)
        s = load_device_settings(root / "etc/kyukyu/edge.env")
        assert s.hub_ca_file == Path("/etc/kyukyu/platform-ca.pem")
        rc, text, _ = run_cli(capsys, "doctor", "--root", str(root), "--no-card-test")
        assert "OK   platform" in text
        assert "OK   enrollment" in text


def test_refresh_fetches_again_and_refuses_a_rollback(
    root: Path, hub: LiveHub, capsys: pytest.CaptureFixture[str]
) -> None:
    from sync.signed import b64d

    assert _enroll(capsys, root, hub)[0] == 0
    state = root / "var/lib/kyukyu-edge"
    (state / "revocation.kkrv").unlink()
    (state / "directory.json").unlink()
    rc, out = run_json(capsys, "provision", "refresh", "--root", str(root))
    assert rc == 0, out
    assert out["hospitals"] == 2
    assert out["previous_version"] is None
    uid, _ = _uid(root, "kyukyu-edge")
    for name in ("revocation.kkrv", "directory.json"):
        st = (state / name).stat()
        assert (st.st_mode & 0o777, st.st_uid) == (0o600, uid)
    # A snapshot newer than the platform's on the device (hub-signed): the platform's
    # answer is then a rollback and is refused; the device keeps what it had.
    newer = RevocationSnapshot.from_serials([7], sequence=int(out["revocation_version"]) + 5)
    signed = newer.with_signature(b64d(hub.real.state.hub_key.sign(newer.signed_payload())))
    (state / "revocation.kkrv").write_bytes(signed.to_bytes())
    rc, out = run_json(capsys, "provision", "refresh", "--root", str(root))
    assert rc == 1
    assert "older than the device's" in out["error"]["detail"]  # type: ignore[index]
    assert (state / "revocation.kkrv").read_bytes() == signed.to_bytes()
