"""Staff sign-in that holds under concurrency and tells nothing, against a real hospital
under uvicorn (SQLite and PostgreSQL), over real HTTP on loopback.

- Wrong sign-ins sent at once: exactly ``login_max_failures`` are checked and the
  account ends locked; the right password and code are refused until the lock passes
  (the authenticator's clock is injected: no sleeping).
- A user name without an account answers exactly like one with an account.
- A malformed field (a non-ASCII CSRF token, full-width digits, control characters, a
  huge value, missing fields) is a counted, audited 400 or 401; with the right password a
  malformed code answers like a wrong password.
- Fuzz: whatever ``POST /login`` receives, never a 5xx (nor a 422).

Client addresses: Linux answers on all of 127.0.0.0/8, so a client bound to 127.0.0.2
is another address to the hospital (its per-address limit is separate).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pyotp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hospital.auth import add_user
from hospital.main import HospitalRuntime
from hospital.store import StaffUser
from tests.hospital._world import PASSWORD, platform

TOKEN = "login-form-token"  # the pre-session CSRF token: cookie and field must match
DBS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


class Clock:
    """The authenticator's time (unix seconds), moved by the test."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclass
class Site:
    url: str
    runtime: HospitalRuntime
    clock: Clock
    secret: str  # eve's TOTP secret

    def code(self) -> str:
        return pyotp.TOTP(self.secret).at(self.clock.now)

    def post(
        self,
        fields: dict[str, Any],
        *,
        source: str = "127.0.0.1",
        cookie: str | None = TOKEN,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        files: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """One POST /login from a fresh client bound to ``source`` (no cookies kept)."""
        transport = httpx.HTTPTransport(local_address=source)
        with httpx.Client(base_url=self.url, transport=transport, timeout=30) as c:
            h = dict(headers or {})
            if cookie is not None:
                h["Cookie"] = f"kk_login={cookie}"
            if content is not None:
                return c.post("/login", content=content, headers=h)
            return c.post("/login", data=fields, files=files, headers=h)

    def form(self, username: str, password: str, totp: str) -> dict[str, Any]:
        return {"username": username, "password": password, "totp": totp, "csrf": TOKEN}

    def failures(self, action: str = "login_failed") -> list[str]:
        return [row.detail for row in self.runtime.store.audit_rows(action)]

    def account(self) -> StaffUser:
        with self.runtime.store.session() as s:
            user = s.get(StaffUser, 1)
        assert user is not None
        return user


@contextmanager
def hospital(tmp_path: Path, db: str, **hospital_settings: Any) -> Iterator[Site]:
    from tests.components import fresh_postgres_database

    with ExitStack() as dbs, platform(tmp_path) as p:
        db_url = dbs.enter_context(fresh_postgres_database()) if db == "postgres" else None
        site = p.new_hospital(tmp_path, "テスト中央病院", 35.685, 139.77)
        p.start(site, db_url=db_url, **hospital_settings)
        rt = site.runtime
        assert rt is not None
        clock = Clock()
        rt.auth.clock = clock
        secret, _ = add_user(rt.store, "eve", "イブ 医師", PASSWORD)
        yield Site(site.url, rt, clock, secret)


def _message(r: httpx.Response) -> str:
    """The page's error line (the rest differs only by its fresh CSRF token)."""
    start = r.text.index('id="login-error">')
    return r.text[start : r.text.index("</p>", start)]


@pytest.mark.parametrize("db", DBS)
def test_wrong_sign_ins_sent_at_once_lock_the_account(tmp_path: Path, db: str) -> None:
    n = 24
    with hospital(tmp_path, db) as site:  # login_max_failures 5, address limit 10
        statuses: list[int] = [0] * n
        go = threading.Barrier(n)

        def attempt(i: int) -> None:
            form = site.form("eve", f"wrong password {i}", site.code())
            go.wait(10)
            statuses[i] = site.post(form).status_code

        threads = [threading.Thread(target=attempt, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        # Five checked (the limit), the rest refused as locked (name or address) unchecked.
        assert sorted(statuses) == [401] * 5 + [429] * (n - 5), statuses
        reasons = site.failures()
        assert len(reasons) == n
        assert reasons.count("bad_password") == 5, reasons
        assert site.account().locked_until is not None
        # The right password and code, from another address: the account is locked.
        r = site.post(site.form("eve", PASSWORD, site.code()), source="127.0.0.2")
        assert r.status_code == 429
        assert "kk_session" not in r.cookies
        assert site.failures()[-1] == "locked"
        # The lock passes (the clock moves on; nothing sleeps): signed in.
        site.clock.now += site.runtime.settings.login_lockout_seconds + 1
        r = site.post(site.form("eve", PASSWORD, site.code()), source="127.0.0.2")
        assert r.status_code == 303, r.text
        assert "kk_session" in r.cookies
        assert site.account().failures == 0
        assert site.account().locked_until is None


def test_a_name_without_an_account_answers_like_one_with_it(tmp_path: Path) -> None:
    with hospital(tmp_path, "sqlite") as site:
        answers = {}
        for name, source in (("eve", "127.0.0.3"), ("nobody", "127.0.0.4")):
            rs = [
                site.post(site.form(name, "wrong password!", "123456"), source=source)
                for _ in range(6)
            ]
            answers[name] = [(r.status_code, _message(r)) for r in rs]
        assert [s for s, _ in answers["eve"]] == [401] * 5 + [429]
        assert answers["eve"] == answers["nobody"]
        # The name without an account is locked as long: the clock moves past both locks.
        site.clock.now += site.runtime.settings.login_lockout_seconds + 1
        for name, source in (("eve", "127.0.0.3"), ("nobody", "127.0.0.4")):
            r = site.post(site.form(name, "wrong password!", "123456"), source=source)
            assert r.status_code == 401, name
        reasons = site.failures()
        assert reasons.count("unknown_user") == 6
        assert reasons.count("bad_password") == 6


@pytest.mark.parametrize("db", DBS)
def test_malformed_fields_are_counted_audited_refusals(tmp_path: Path, db: str) -> None:
    with hospital(tmp_path, db, login_max_failures=100) as site:
        # A CSRF token that is not ASCII, and none at all: 400, audited.
        r = site.post({**site.form("eve", PASSWORD, site.code()), "csrf": "é"})
        assert r.status_code == 400
        r = site.post({"username": "eve"}, cookie=None)
        assert r.status_code == 400
        assert site.failures() == ["bad_csrf", "bad_csrf"]
        assert site.account().failures == 0  # no password was checked
        # Full-width digits: with the right password exactly as with a wrong one.
        right = site.post(site.form("eve", PASSWORD, "１２３４５６"))
        wrong = site.post(site.form("eve", "wrong password!", "１２３４５６"))
        assert (right.status_code, _message(right)) == (wrong.status_code, _message(wrong))
        assert right.status_code == 401
        # Arabic-Indic digits, a space-padded code, control characters, a huge password,
        # missing fields, a file where text belongs, a body that is not a form.
        site.post(site.form("eve", PASSWORD, "١٢٣٤٥٦"))
        site.post(site.form("eve\x00", PASSWORD, "12 34 56"))
        site.post(site.form("e" * 10_000, PASSWORD, "123456"))
        site.post(site.form("eve", "p" * 200_000, "123456"))
        site.post({"csrf": TOKEN})
        site.post({"csrf": TOKEN, "username": "eve"}, files={"password": ("p", PASSWORD.encode())})
        assert site.failures()[2:] == [
            "bad_totp",
            "bad_password",
            "bad_totp",
            "unknown_user",
            "unknown_user",
            "bad_password",
            "unknown_user",
            "bad_password",
        ]
        # Each counted against the account it names (eve: 5 of them).
        assert site.account().failures == 5
        r = site.post({}, content=b"\xff\xfe{not a form", headers={"Content-Type": "text/plain"})
        assert r.status_code == 400
        r = site.post(
            {},
            content=b"--x\r\nbroken",
            headers={"Content-Type": "multipart/form-data; boundary=x"},
        )
        assert r.status_code == 400
        assert site.failures()[-2:] == ["bad_csrf", "bad_csrf"]


_value = st.one_of(st.text(max_size=300), st.binary(max_size=300))


@pytest.mark.postgres
def test_sign_in_fuzz_never_fails_on_the_server(tmp_path: Path) -> None:
    """Arbitrary text or bytes in each field (or the field left out), as a form or as
    multipart, on PostgreSQL (which refuses NUL in text): 400, 401 or 429, never 5xx."""
    with (
        hospital(tmp_path, "postgres", login_max_failures=10_000) as site,
        httpx.Client(base_url=site.url, timeout=30) as c,
    ):

        @settings(
            max_examples=40,
            deadline=None,
            derandomize=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(
            username=st.none() | st.just("eve") | _value,
            password=st.none() | st.just(PASSWORD) | _value,
            totp=st.none() | _value,
            csrf=st.none() | st.just(TOKEN) | _value,
            multipart=st.booleans(),
        )
        def post(
            username: str | bytes | None,
            password: str | bytes | None,
            totp: str | bytes | None,
            csrf: str | bytes | None,
            multipart: bool,
        ) -> None:
            given_fields = {"username": username, "password": password, "totp": totp}
            given_fields["csrf"] = csrf
            fields = {k: v for k, v in given_fields.items() if v is not None}
            c.cookies.clear()
            headers = {"Cookie": f"kk_login={TOKEN}"}
            if multipart:
                files = {k: (None, v) for k, v in fields.items()}
                r = c.post("/login", files=files or {"x": (None, b"")}, headers=headers)
            else:
                body = urlencode(list(fields.items())).encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
                r = c.post("/login", content=body, headers=headers)
            assert r.status_code in (400, 401, 429), (r.status_code, r.text[:200])

        post()
