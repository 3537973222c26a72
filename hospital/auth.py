"""Staff accounts: one per person, argon2id passwords, TOTP, sessions, lockout, audit.

- Passwords: argon2-cffi's ``PasswordHasher`` (argon2id, its defaults; rehash when
  the parameters change).
- Second factor: TOTP (RFC 6238, pyotp, 30 s steps, ±1 step of clock drift). A
  code is accepted once: the step it matched is stored and a code of that step or
  an earlier one is refused as a replay.
- Attempts count per user name before they are checked (an atomic ``UPDATE``
  for an account, the same rule in memory for a name without one):
  ``login_max_failures`` failures in a row lock the name for
  ``login_lockout_seconds``; a client address gets twice that across names. Names
  with and without an account answer alike; the password and the code are checked
  together and the answer never says which was wrong. Every failure is audited with
  its reason.
- Sessions: a random token in an HttpOnly SameSite=Strict cookie, stored as its
  SHA-256; absolute and idle expiry; a per-session CSRF token required on every
  state-changing request.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import or_, update
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


_TOTP_CODE = re.compile(r"[0-9]{6}", re.ASCII)
# Longer than any password a person types; longer ones are wrong without hashing them
# (argon2 would hash a megabyte), after the same one verification as any other attempt.
_MAX_PASSWORD = 1024
_USERNAME_MAX = 80  # StaffUser.username
_UNKNOWN_NAMES_KEPT = 10_000


def _printable(text: str, limit: int) -> str:
    """For an audit row: control characters (NUL, which PostgreSQL refuses, included) as ?."""
    return "".join(c if c.isprintable() else "?" for c in text[:limit])


def _plausible_username(username: str) -> bool:
    """Could name an account (``user add`` takes what fits its column); else not looked up."""
    return 0 < len(username) <= _USERNAME_MAX and username.isprintable()


def _password_bytes(password: str) -> bytes:
    return password.encode("utf-8", "surrogatepass")


@dataclass
class _NameCount:
    """Failures of a user name that names no account: kept like an account's columns."""

    failures: int = 0
    locked_until: float = 0.0


class Authenticator:
    """Sign-in and sessions. ``clock`` (unix seconds) is the one time source: TOTP steps,
    lockouts, the per-address window, session expiry; tests inject one."""

    def __init__(
        self,
        store: HospitalStore,
        settings: HospitalSettings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self._lock = threading.Lock()
        self._by_client: dict[str, deque[float]] = {}
        self._unknown: OrderedDict[str, _NameCount] = OrderedDict()

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # -- per address --------------------------------------------------------------------

    def _client_reserve(self, client: str) -> float | None:
        """Count this attempt for ``client`` now (check and count under one lock: attempts
        sent at once cannot all pass); None when the address is over its limit."""
        window, now = self.settings.login_lockout_seconds, self.clock()
        with self._lock:
            q = self._by_client.setdefault(client, deque())
            while q and now - q[0] > window:
                q.popleft()
            if len(q) >= self.settings.login_max_failures * 2:
                return None
            q.append(now)
            return now

    def _client_succeeded(self, client: str, mark: float) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._by_client.get(client, deque()).remove(mark)

    # -- per user name ------------------------------------------------------------------

    def _reserve(self, username: str, now: datetime) -> tuple[int | None, bool]:
        """Count this attempt against ``username`` before checking it: (account id or None
        for a name without an account, whether it may be checked at all).

        An account's count is one atomic ``UPDATE … SET failures = failures + 1 … RETURNING``
        that only matches while the account is not locked and has attempts left: of any
        number of attempts sent at once, ``login_max_failures`` are checked, the rest
        refused as locked. A name without an account counts the same way in memory, so
        both answer alike (401 until the limit, then 429)."""
        known: int | None = None
        if _plausible_username(username):
            with self.store.session() as s:
                row = s.exec(
                    update(StaffUser)
                    .where(
                        col(StaffUser.username) == username,
                        col(StaffUser.failures) < self.settings.login_max_failures,
                        or_(
                            col(StaffUser.locked_until).is_(None),
                            col(StaffUser.locked_until) <= now,
                        ),
                    )
                    .values(failures=col(StaffUser.failures) + 1)
                    .returning(col(StaffUser.id))
                ).first()
                if row is not None:
                    s.commit()
                    return int(row[0]), True
                known = s.exec(
                    select(StaffUser.id).where(col(StaffUser.username) == username)
                ).first()
            if known is not None:
                # Not locked yet with no attempts left (those in flight, or ones a crash
                # cut short): locked from now on, so the count cannot stay full forever.
                self._failed(int(known), username, now)
                return int(known), False
        key = hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest()
        t = now.timestamp()
        with self._lock:
            entry = self._unknown.pop(key, None) or _NameCount()
            self._unknown[key] = entry  # most recent last
            while len(self._unknown) > _UNKNOWN_NAMES_KEPT:
                self._unknown.popitem(last=False)
            if entry.locked_until > t:
                return None, False
            if entry.failures >= self.settings.login_max_failures:
                entry.failures = 0
                entry.locked_until = t + self.settings.login_lockout_seconds
                return None, False
            entry.failures += 1
            return None, True

    def _failed(self, user_id: int | None, username: str, now: datetime) -> None:
        """A checked attempt failed (it was counted already): lock when the count is full."""
        until = now + timedelta(seconds=self.settings.login_lockout_seconds)
        if user_id is None:
            key = hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest()
            with self._lock:
                entry = self._unknown.get(key)
                if entry is not None and entry.failures >= self.settings.login_max_failures:
                    entry.failures, entry.locked_until = 0, until.timestamp()
            return
        with self.store.session() as s:
            s.exec(
                update(StaffUser)
                .where(
                    col(StaffUser.id) == user_id,
                    col(StaffUser.failures) >= self.settings.login_max_failures,
                    or_(
                        col(StaffUser.locked_until).is_(None),
                        col(StaffUser.locked_until) <= now,
                    ),
                )
                .values(failures=0, locked_until=until)
            )
            s.commit()

    # -- sign-in ------------------------------------------------------------------------

    def _totp_step(self, secret: str, code: str, now: float) -> int | None:
        code = code.strip().replace(" ", "")
        if not _TOTP_CODE.fullmatch(code):  # ASCII digits only (not １２３４５６, not ١٢٣)
            return None
        totp = pyotp.TOTP(secret)
        base = totp.timecode(datetime.fromtimestamp(now))
        for step in (base, base - 1, base + 1):
            if hmac.compare_digest(totp.generate_otp(step).encode(), code.encode()):
                return step
        return None

    def refuse_form(self, username: str, reason: str, client: str) -> None:
        """A sign-in form that cannot be checked (its CSRF token is wrong or missing):
        counted against the address and audited like any failure."""
        self._client_reserve(client)
        self._audit_failure(username, reason, client)

    def _audit_failure(self, username: str, reason: str, client: str) -> None:
        actor = _printable(username, _USERNAME_MAX) or "?"
        self.store.audit(actor, "login_failed", detail=reason, client=_printable(client, 64))

    def login(
        self, username: str, password: str, code: str, client: str
    ) -> tuple[str, SessionInfo]:
        """Check the password and the code together; return (session token, session).

        Any string is an answer, never an exception other than ``LoginRefused``: a name
        without an account, a disabled one, a wrong password or code, a malformed field
        (full-width digits, control characters, a megabyte) all cost one argon2
        verification and are refused alike (``LoginRefused``; ``LoginLocked`` once the
        name or the address is over its limit)."""
        now = self._now()

        def refuse(reason: str, exc: type[LoginRefused] = LoginRefused) -> LoginRefused:
            self._audit_failure(username, reason, client)
            return exc(reason)

        mark = self._client_reserve(client)
        if mark is None:
            raise refuse("client_rate_limited", LoginLocked)
        user_id, may_check = self._reserve(username, now)
        if not may_check:
            raise refuse("locked", LoginLocked)
        user: StaffUser | None = None
        if user_id is not None:
            with self.store.session() as s:
                user = s.get(StaffUser, user_id)
        # One argon2 verification whatever the name: an unknown name costs the same.
        pw = _password_bytes(password) if len(password) <= _MAX_PASSWORD else b""
        try:
            _HASHER.verify(_DUMMY_HASH if user is None else user.password_hash, pw)
            password_ok = user is not None and len(password) <= _MAX_PASSWORD
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            password_ok = False
        step = None if user is None else self._totp_step(user.totp_secret, code, now.timestamp())
        # Both factors are known before anything is decided: the answer names neither.
        if user is None or user.disabled or not password_ok or step is None:
            self._failed(user_id, username, now)
            if user is None:
                raise refuse("unknown_user")
            if user.disabled:
                raise refuse("disabled")
            raise refuse("bad_password" if not password_ok else "bad_totp")
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        expires = now + timedelta(seconds=self.settings.session_ttl_seconds)
        with self.store.session() as s:
            values: dict[str, object] = {"failures": 0, "locked_until": None,
                                         "last_totp_step": step}  # fmt: skip
            if _HASHER.check_needs_rehash(user.password_hash):
                values["password_hash"] = _HASHER.hash(pw)
            # The step is taken in the same statement that checks it is new: two sign-ins
            # with one code at once, one wins and the other is a replay.
            won = s.exec(
                update(StaffUser)
                .where(col(StaffUser.id) == user_id, col(StaffUser.last_totp_step) < step)
                .values(**values)
                .returning(col(StaffUser.id))
            ).first()
            if won is None:
                s.rollback()
                self._failed(user_id, username, now)
                raise refuse("replayed_totp")
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
        self._client_succeeded(client, mark)
        return token, SessionInfo(user.id or 0, user.username, user.display_name, csrf, expires)

    # -- sessions ---------------------------------------------------------------------

    def session(self, token: str | None) -> SessionInfo | None:
        """The live session of a cookie token, or None (expired, idle, unknown)."""
        if not token:
            return None
        now = self._now()
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
