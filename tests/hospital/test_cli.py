"""`kyukyu hospital init / serve` as an operator runs them: files, pinning, refusals, process."""

from __future__ import annotations

import io
import json
import os
import socket
import ssl
import stat
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import httpx
import pytest

from kyukyu.cli import main as kyukyu_main
from kyukyu.testing import self_signed_certificate
from sync.signing import public_key_to_b64
from tests.hospital._world import platform


def _run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = kyukyu_main(list(args))
    return rc, out.getvalue(), err.getvalue()


def test_init_files_pinning_and_refusals_then_serve(tmp_path: Path) -> None:
    with platform(tmp_path) as p:
        token = p.operator.request_json(
            "POST", "/v1/hospital-enrollment-tokens", body={"name": "CLI病院"}
        )["token"]
        data = tmp_path / "h"
        args = ["--platform", p.url, "--lat", "35.7", "--lon", "139.7"]
        rc, out, _ = _run("hospital", "init", "--data-dir", str(data), "--token", token, *args)
        assert rc == 0
        doc = json.loads(out)
        assert doc["name"] == "CLI病院"
        assert doc["hub_public_key"] == public_key_to_b64(p.hub.state.hub_key.public_key)
        key_file = data / "hospital-key.json"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        private = json.loads(key_file.read_text())
        assert private["hpke_private_key"] not in (data / "identity.json").read_text()
        # The platform lists the hospital with the key it generated.
        directory = p.devices or [p.new_device()]
        listed = {h.id: h for h in directory[0].client.hospital_directory(35.7, 139.7)}
        assert doc["hospital_id"] in listed

        # Again in the same directory: refused. A used token: refused (exit 1, typed code).
        rc, _, err = _run("hospital", "init", "--data-dir", str(data), "--token", token, *args)
        assert rc == 1
        assert "hospital_already_initialised" in err
        rc, _, err = _run(
            "hospital", "init", "--data-dir", str(tmp_path / "h2"), "--token", token, *args
        )
        assert rc == 1
        assert "hospital_registration_refused" in err
        # A platform whose key is not the one the operator handed over: refused.
        token2 = p.operator.request_json(
            "POST", "/v1/hospital-enrollment-tokens", body={"name": "CLI病院2"}
        )["token"]
        rc, _, err = _run(
            "hospital", "init", "--data-dir", str(tmp_path / "h3"), "--token", token2,
            "--hub-key", "A" * 43, *args,
        )  # fmt: skip
        assert rc == 1
        assert "hospital_registration_refused" in err

        serve_dir = data
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cert, key = self_signed_certificate(tmp_path / "tls")
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "kyukyu"), "hospital", "serve",
             "--data-dir", str(serve_dir), "--port", str(port),
             "--tls-cert", str(cert), "--tls-key", str(key),
             "--log-file", str(tmp_path / "hospital.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(os.environ),
        )  # fmt: skip
        try:
            url = f"https://127.0.0.1:{port}"
            tls = ssl.create_default_context(cafile=str(cert))
            deadline = time.monotonic() + 30
            while True:
                try:
                    r = httpx.get(url + "/login", timeout=1, verify=tls)
                    if r.status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline
                time.sleep(0.1)
            assert "サインイン" in r.text
            # Over HTTPS the cookies are Secure by themselves.
            assert "secure" in r.headers["set-cookie"].lower()
            assert httpx.get(url + "/", timeout=5, verify=tls).status_code == 401
            assert httpx.get(url + "/live", timeout=5, verify=tls).status_code == 401
        finally:
            proc.terminate()
            proc.wait(15)
        # The platform's log format (door.logs): every line on stderr and in --log-file is
        # one JSON object; the start line names the hospital by id.
        stderr = proc.stderr.read().decode() if proc.stderr else ""
        lines = (tmp_path / "hospital.log").read_text().splitlines()
        assert lines
        assert stderr.splitlines() == lines
        records = [json.loads(line) for line in lines]
        assert {"time", "level", "logger", "pid", "message"} <= set(records[0])
        assert any(r.get("hospital_id") == doc["hospital_id"] for r in records), records
        # A key file others may read is not used.
        os.chmod(key_file, 0o644)
        rc, _, err = _run("hospital", "purge", "--data-dir", str(data))
        assert rc == 1
        assert "hospital_not_initialised" in err


def test_init_refuses_plain_http_to_another_machine(tmp_path: Path) -> None:
    """The rule `kyukyu provision enroll` follows (sync.platform_url): https://, or http://
    to this machine only. Refused before any key is made or any byte is sent."""
    for url in ("http://192.0.2.1:9", "http://[2001:db8::1]:9", "ftp://127.0.0.1:9", "http://"):
        data = tmp_path / "refused"
        rc, _, err = _run(
            "hospital", "init", "--data-dir", str(data), "--platform", url, "--token", "t",
            "--lat", "35.7", "--lon", "139.7",
        )  # fmt: skip
        assert rc == 1, url
        assert "insecure_platform_url" in err, (url, err)
        assert not data.exists(), url
    with platform(tmp_path) as p:
        token = p.operator.request_json(
            "POST", "/v1/hospital-enrollment-tokens", body={"name": "ローカル病院"}
        )["token"]
        local = p.url.replace("127.0.0.1", "localhost")
        rc, out, err = _run(
            "hospital", "init", "--data-dir", str(tmp_path / "ok"), "--platform", local,
            "--token", token, "--lat", "35.7", "--lon", "139.7",
        )  # fmt: skip
        assert rc == 0, err
        assert json.loads(out)["platform_url"] == local
    # `serve` with a URL overriding the stored one follows the same rule.
    from hospital.errors import InsecurePlatformUrl
    from hospital.main import HospitalRuntime
    from hospital.settings import HospitalSettings

    with pytest.raises(InsecurePlatformUrl):
        HospitalRuntime(
            HospitalSettings(data_dir=tmp_path / "ok", platform_url="http://192.0.2.1:9")
        )


def test_user_admin_and_audit(tmp_path: Path) -> None:
    from tests.hospital._world import PASSWORD, sign_in, signed_in, totp_now

    with platform(tmp_path) as p:
        a = p.new_hospital(tmp_path, "テスト中央病院", 35.685, 139.77)
        p.add_user(a, "carol")
        p.add_user(a, "dave")
        p.start(a)
        d = ["--data-dir", str(a.data_dir)]
        rc, out, _ = _run("hospital", "user", "list", *d)
        assert rc == 0
        assert [json.loads(line)["username"] for line in out.splitlines()] == ["carol", "dave"]
        rc, _, err = _run("hospital", "user", "add", "carol", "--password", "x" * 12, *d)
        assert rc == 1
        assert "user_exists" in err

        with signed_in(a, "carol") as c:
            assert c.get("/").status_code == 200
            assert _run("hospital", "user", "disable", "carol", *d)[0] == 0
            assert c.get("/").status_code in (303, 401)  # the session ended with it
        _, r = sign_in(a.url, "carol", PASSWORD, totp_now(a.users["carol"], 1))
        assert r.status_code == 401
        assert _run("hospital", "user", "enable", "carol", *d)[0] == 0

        old = a.users["dave"]
        rc, out, _ = _run("hospital", "user", "reset-totp", "dave", *d)
        assert rc == 0
        new = json.loads(out)["totp_secret"]
        assert new != old
        _, r = sign_in(a.url, "dave", PASSWORD, totp_now(old))
        assert r.status_code == 401
        _, r = sign_in(a.url, "dave", PASSWORD, totp_now(new))
        assert r.status_code == 303

        rc, out, _ = _run("hospital", "audit", "--action", "login_failed", *d)
        assert rc == 0
        failed = [json.loads(line) for line in out.splitlines()]
        assert [(f["actor"], f["detail"]) for f in failed] == [
            ("carol", "disabled"),
            ("dave", "bad_totp"),
        ]
        rc, out, _ = _run("hospital", "audit", *d)
        actions = [json.loads(line)["action"] for line in out.splitlines()]
        for action in ("user_added", "login", "user_disabled", "user_enabled", "totp_reset"):
            assert action in actions
