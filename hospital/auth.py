"""Staff accounts: one per person, argon2id passwords, TOTP, sessions, lockout, audit.

- Passwords: argon2-cffi's ``PasswordHasher`` (argon2id, its defaults; rehash when
  the parameters change).
- Second factor: TOTP (RFC 6238, pyotp, 30 s steps, ±1 step of clock drift). A
  code is accepted once: the step it matched is stored and a code of that step or
  an earlier one is refused as a replay.
- Failures (any factor) count per account: ``login_max_failures`` in a row lock
  the account for ``login_lockout_seconds``; a client address gets the same limit
  across accounts (guessing user names). Every failure is audited with its reason.
- Sessions: a random token in an HttpOnly SameSite=Strict cookie, stored as its
  SHA-256; absolute and idle expiry; a per-session CSRF token required on every
  state-changing request.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlmodel import Session, col, delete, select

from hospital.errors import HospitalError, UserExists
from hospital.settings import HospitalSettings
from hospital.store import HospitalStore, StaffSession, StaffUser, _aware, utcnow

__all__ = [
    "Authenticator",
    "LoginRefused",
    "SessionInfo",
    "add_user",
    "list_users",
    "reset_totp",
    "set_disabled",
]

_HASHER = PasswordHasher()
# Verified against when the user name is unknown: the same work, no timing oracle.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))
ISSUER = "kyukyu hospital"


class LoginRefused(HospitalError):
    code = "login_refused"
    message_ja = "ユーザー名・パスワード・確認コードのいずれかが正しくありません。"
    message_en = "Sign-in refused."


class LoginLocked(LoginRefused):
    code = "login_locked"
    message_ja = "失敗が続いたため一時的にロックされています。しばらくしてから再度お試しください。"
    message_en = "Too many failed sign-ins: locked for a while."


@dataclass(frozen=True)
class SessionInfo:
    user_id: int
    username: str
    display_name: str
    csrf: str
    expires_at: datetime


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_user(
    store: HospitalStore, username: str, display_name: str, password: str
) -> tuple[str, str]:
    """Create a staff account; return (TOTP secret, otpauth:// URI) to enrol an authenticator."""
    if len(password) < 10:
        raise HospitalError("password shorter than 10 characters")
    secret = pyotp.random_base32()
    with store.session() as s:
        if s.exec(select(StaffUser).where(StaffUser.username == username)).first():
            raise UserExists(username)
        s.add(
            StaffUser(
                username=username,
                display_name=display_name,
                password_hash=_HASHER.hash(password),
                totp_secret=secret,
                created_at=utcnow(),
            )
        )
        store.audit("admin", "user_added", detail=username, session=s)
        s.commit()
    uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)
    return secret, uri


def list_users(store: HospitalStore) -> list[dict[str, object]]:
    with store.session() as s:
        rows = s.exec(select(StaffUser).order_by(col(StaffUser.username))).all()
    now = utcnow()
    return [
        {
            "username": u.username,
            "display_name": u.display_name,
            "disabled": u.disabled,
            "locked": bool((locked := _aware(u.locked_until)) and locked > now),
            "created_at": (_aware(u.created_at) or u.created_at).isoformat(),
        }
        for u in rows
    ]


def _user(s: Session, username: str) -> StaffUser:
    user = s.exec(select(StaffUser).where(StaffUser.username == username)).first()
    if user is None:
        raise HospitalError(f"no staff account {username!r}")
    return user


def set_disabled(store: HospitalStore, username: str, disabled: bool) -> None:
    """Disable (sessions end at once) or enable an account; enabling also lifts a lockout."""
    with store.session() as s:
        user = _user(s, username)
        user.disabled = disabled
        user.failures, user.locked_until = 0, None
        s.add(user)
        if disabled:
            s.exec(delete(StaffSession).where(col(StaffSession.user_id) == user.id))
        store.audit("admin", "user_disabled" if disabled else "user_enabled", detail=username,
                    session=s)  # fmt: skip
        s.commit()


def reset_totp(store: HospitalStore, username: str) -> tuple[str, str]:
    """A new TOTP secret (a lost phone); the account's sessions end."""
    secret = pyotp.random_base32()
    with store.session() as s:
        user = _user(s, username)
        user.totp_secret, user.last_totp_step = secret, 0
        s.add(user)
        s.exec(delete(StaffSession).where(col(StaffSession.user_id) == user.id))
        store.audit("admin", "totp_reset", detail=username, session=s)
        s.commit()
    return secret, pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


class Authenticator:
    def __init__(self, store: HospitalStore, settings: HospitalSettings) -> None:
        self.store = store
        self.settings = settings
        self._lock = threading.Lock()
        self._by_client: dict[str, deque[float]] = {}

    # -- sign-in --------------------------------------------------------------------

    def _client_limited(self, client: str) -> bool:
        window = self.settings.login_lockout_seconds
        now = time.monotonic()
        with self._lock:
            q = self._by_client.setdefault(client, deque())
            while q and now - q[0] > window:
                q.popleft()
            return len(q) >= self.settings.login_max_failures * 2

    def _client_failed(self, client: str) -> None:
        with self._lock:
            self._by_client.setdefault(client, deque()).append(time.monotonic())

    def _totp_step(self, secret: str, code: str, now: float) -> int | None:
        code = code.strip().replace(" ", "")
        if not (code.isdigit() and len(code) == 6):
            return None
        totp = pyotp.TOTP(secret)
        base = totp.timecode(datetime.fromtimestamp(now))
        for step in (base, base - 1, base + 1):
            if hmac.compare_digest(totp.generate_otp(step), code):
                return step
        return None

    def login(
        self, username: str, password: str, code: str, client: str
    ) -> tuple[str, SessionInfo]:
        """Check all three; return (session token for the cookie, session)."""
        now = utcnow()

        def refuse(reason: str, exc: type[LoginRefused] = LoginRefused) -> LoginRefused:
            self._client_failed(client)
            self.store.audit(username or "?", "login_failed", detail=reason, client=client)
            return exc(reason)

        if self._client_limited(client):
            raise refuse("client_rate_limited", LoginLocked)
        with self.store.session() as s:
            user = s.exec(select(StaffUser).where(StaffUser.username == username)).first()
            if user is None or user.disabled:
                with contextlib.suppress(VerificationError):
                    _HASHER.verify(_DUMMY_HASH, password)
                raise refuse("unknown_user" if user is None else "disabled")
            locked = _aware(user.locked_until)
            if locked is not None and locked > now:
                raise refuse("locked", LoginLocked)

            def fail(reason: str) -> LoginRefused:
                user.failures += 1
                if user.failures >= self.settings.login_max_failures:
                    user.locked_until = now + timedelta(seconds=self.settings.login_lockout_seconds)
                    user.failures = 0
                s.add(user)
                s.commit()
                return refuse(reason)

            try:
                _HASHER.verify(user.password_hash, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                raise fail("bad_password") from None
            step = self._totp_step(user.totp_secret, code, time.time())
            if step is None:
                raise fail("bad_totp")
            if step <= user.last_totp_step:
                raise fail("replayed_totp")
            user.last_totp_step = step
            user.failures = 0
            user.locked_until = None
            if _HASHER.check_needs_rehash(user.password_hash):
                user.password_hash = _HASHER.hash(password)
            token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
            expires = now + timedelta(seconds=self.settings.session_ttl_seconds)
            s.add(user)
            s.add(
                StaffSession(
                    token_hash=_sha(token),
                    user_id=user.id or 0,
                    csrf=csrf,
                    created_at=now,
                    last_seen=now,
                    expires_at=expires,
                )
            )
            self.store.audit(user.username, "login", client=client, session=s)
            s.commit()
            info = SessionInfo(user.id or 0, user.username, user.display_name, csrf, expires)
        return token, info

    # -- sessions ---------------------------------------------------------------------

    def session(self, token: str | None) -> SessionInfo | None:
        """The live session of a cookie token, or None (expired, idle, unknown)."""
        if not token:
            return None
        now = utcnow()
        with self.store.session() as s:
            row = s.get(StaffSession, _sha(token))
            if row is None:
                return None
            expires, last = _aware(row.expires_at), _aware(row.last_seen)
            if expires is None or last is None:
                return None
            idle = timedelta(seconds=self.settings.session_idle_seconds)
            if expires <= now or now - last > idle:
                s.delete(row)
                s.commit()
                return None
            user = s.get(StaffUser, row.user_id)
            if user is None or user.disabled:
                return None
            if now - last > timedelta(seconds=30):  # not a write per request
                row.last_seen = now
                s.add(row)
                s.commit()
            return SessionInfo(user.id or 0, user.username, user.display_name, row.csrf, expires)

    def logout(self, token: str | None) -> None:
        if not token:
            return
        with self.store.session() as s:
            s.exec(delete(StaffSession).where(col(StaffSession.token_hash) == _sha(token)))
            s.commit()

    @staticmethod
    def csrf_ok(info: SessionInfo, submitted: str | None) -> bool:
        return bool(submitted) and hmac.compare_digest(info.csrf, str(submitted))
