"""The hospital's identity: its key pair, its registration, the platform key it pins.

``data_dir/hospital-key.json`` (mode 0600) holds the private keys: X25519 (v1 cases
are sealed to it), X-Wing (MLKEM768-X25519, v2 cases: kept as its 32-byte seed,
``xwing_seed``; absent in installs made before it, which still load), Ed25519 (signs
the hospital's requests) and the storage key (AES-256-GCM of opened cases at rest).
``data_dir/identity.json`` holds the public part: hospital id and name, the platform
URL and the platform's key, pinned at ``init`` (trust on first use over the pinned
TLS, or checked against ``expected_hub_key`` when the operator hands it over out of
band).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from hospital.errors import (
    AlreadyInitialised,
    InsecurePlatformUrl,
    KeyFileOpenToOthers,
    NotInitialised,
    PlatformUnreachable,
    RegistrationRefused,
)
from hospital.settings import KEY_FILE
from sync import AuthError, HttpStatusError, PlatformError
from sync.platform_url import platform_url_is_secure
from sync.seal import OpeningKeys
from sync.signing import b64d, b64e, public_key_from_b64, public_key_to_b64
from sync.xwing import XWingPrivateKey

__all__ = [
    "HospitalIdentity",
    "HospitalKeys",
    "KeyRotation",
    "init_hospital",
    "load_identity",
    "rotate_hybrid_key",
]

IDENTITY_FILE = "identity.json"


def _raw_private(key: X25519PrivateKey | Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )


@dataclass(frozen=True)
class HospitalKeys:
    hpke: X25519PrivateKey
    signing: Ed25519PrivateKey
    storage: bytes  # 32 bytes, AES-256-GCM for opened cases at rest
    # The hybrid (post-quantum) HPKE key of envelope v2; None in an install made before it.
    xwing: XWingPrivateKey | None = None

    @classmethod
    def generate(cls) -> HospitalKeys:
        return cls(
            X25519PrivateKey.generate(),
            Ed25519PrivateKey.generate(),
            os.urandom(32),
            XWingPrivateKey.generate(),
        )

    def opening_keys(self) -> OpeningKeys:
        """What ``sync.seal.open_case`` opens v1 (X25519) and v2 (X-Wing) cases with."""
        return OpeningKeys(x25519=self.hpke, xwing=self.xwing)

    def xwing_public_b64(self) -> str | None:
        """The X-Wing public key (1,216 bytes) as base64url, None without one."""
        return None if self.xwing is None else b64e(self.xwing.public_key().to_bytes())

    def hpke_public_b64(self) -> str:
        raw = self.hpke.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return b64e(raw)

    def save(self, path: Path) -> None:
        """Write a new key file (0600 from the start; never over an existing one)."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(self._file_bytes())

    def replace_file(self, path: Path) -> None:
        """Rewrite the key file atomically: a 0600 file beside it, synced, renamed over it
        (a crash leaves the old file or the new one, never a mix)."""
        fd, tmp = tempfile.mkstemp(prefix=".hospital-key.", dir=path.parent)  # 0600
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(self._file_bytes())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _file_bytes(self) -> bytes:
        doc = {
            "hpke_private_key": b64e(_raw_private(self.hpke)),
            "signing_private_key": b64e(_raw_private(self.signing)),
            "storage_key": b64e(self.storage),
        }
        if self.xwing is not None:
            doc["xwing_seed"] = b64e(self.xwing.seed_bytes())
        return json.dumps(doc, indent=2).encode()

    @classmethod
    def load(cls, path: Path) -> HospitalKeys:
        if not path.exists():
            raise NotInitialised(str(path))
        mode = path.stat().st_mode & 0o077
        if mode:
            raise KeyFileOpenToOthers(f"{path} is readable by others (chmod 600)")
        try:
            doc = json.loads(path.read_bytes())
            if not isinstance(doc, dict):
                raise TypeError("not a JSON object")
        except (ValueError, TypeError, OSError) as exc:
            # The exception's type only: its message may quote the file.
            raise NotInitialised(f"{path} is not a key file ({type(exc).__name__})") from None
        xwing = None
        if "xwing_seed" in doc:
            try:
                xwing = XWingPrivateKey.from_seed(b64d(doc["xwing_seed"]))
            except (ValueError, TypeError):
                raise NotInitialised(f"{path}: xwing_seed is not a 32-byte seed") from None
        try:
            storage = b64d(doc["storage_key"])
            if len(storage) != 32:
                raise ValueError("storage key length")
            return cls(
                X25519PrivateKey.from_private_bytes(b64d(doc["hpke_private_key"])),
                Ed25519PrivateKey.from_private_bytes(b64d(doc["signing_private_key"])),
                storage,
                xwing,
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise NotInitialised(f"{path} is not a key file ({type(exc).__name__})") from None


@dataclass(frozen=True)
class HospitalIdentity:
    hospital_id: str
    name: str
    platform_url: str
    hub_key_id: str
    hub_public_key: Ed25519PublicKey
    keys: HospitalKeys

    def public_doc(self) -> dict[str, Any]:
        doc = {
            "hospital_id": self.hospital_id,
            "name": self.name,
            "platform_url": self.platform_url,
            "hub_key_id": self.hub_key_id,
            "hub_public_key": public_key_to_b64(self.hub_public_key),
            "hpke_public_key": self.keys.hpke_public_b64(),
            "signing_public_key": public_key_to_b64(self.keys.signing.public_key()),
        }
        xwing = self.keys.xwing_public_b64()
        if xwing is not None:
            doc["xwing_public_key"] = xwing
        return doc


def load_identity(
    data_dir: Path, platform_url: str | None = None, key_file: Path | None = None
) -> HospitalIdentity:
    """The stored identity; ``platform_url`` overrides the stored URL (the key stays pinned).

    ``key_file`` is where the private keys are (default ``data_dir/hospital-key.json``).
    """
    ident = data_dir / IDENTITY_FILE
    if not ident.exists():
        raise NotInitialised(str(ident))
    if platform_url and not platform_url_is_secure(platform_url):
        raise InsecurePlatformUrl()
    doc = json.loads(ident.read_text())
    return HospitalIdentity(
        hospital_id=doc["hospital_id"],
        name=doc["name"],
        platform_url=platform_url or doc["platform_url"],
        hub_key_id=doc["hub_key_id"],
        hub_public_key=public_key_from_b64(doc["hub_public_key"]),
        keys=HospitalKeys.load(key_file or data_dir / KEY_FILE),
    )


def init_hospital(
    data_dir: Path,
    *,
    platform_url: str,
    token: str,
    lat: float,
    lon: float,
    ca_file: Path | None = None,
    expected_hub_key: str | None = None,
) -> HospitalIdentity:
    """Create the key pair, pin the platform's key, register with the operator's token.

    The URL must be ``https://`` (``http://`` only to this machine): the platform's key
    is pinned from its first answer (``sync.platform_url``, the rule devices follow).
    """
    from sync import SignedHttp

    if not platform_url_is_secure(platform_url):
        raise InsecurePlatformUrl()
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    key_path, ident_path = data_dir / KEY_FILE, data_dir / IDENTITY_FILE
    if ident_path.exists():
        raise AlreadyInitialised(str(ident_path))
    # A key file left by an interrupted init (registration failed) is reused, never replaced.
    keys = HospitalKeys.load(key_path) if key_path.exists() else HospitalKeys.generate()
    if not key_path.exists():
        keys.save(key_path)
    http = SignedHttp(platform_url, key=keys.signing, key_id="", ca_file=ca_file)
    try:
        hub = http.request_json("GET", "/v1/hub-key", signed=False)
        if not isinstance(hub, dict) or "public_key" not in hub:
            raise PlatformUnreachable("the platform's key answer is malformed")
        if expected_hub_key is not None and hub["public_key"] != expected_hub_key:
            raise RegistrationRefused("the platform's key is not the expected one")
        hub_public = public_key_from_b64(str(hub["public_key"]))
        body = {
            "token": token,
            "lat": lat,
            "lon": lon,
            "hpke_public_key": keys.hpke_public_b64(),
            "signing_public_key": public_key_to_b64(keys.signing.public_key()),
        }
        xwing = keys.xwing_public_b64()
        if xwing is not None:
            body["xwing_public_key"] = xwing
        out = http.request_json("POST", "/v1/hospitals/enroll", body=body, signed=False)
    except (AuthError, HttpStatusError) as exc:
        raise RegistrationRefused(getattr(exc, "code", None)) from exc
    except PlatformError as exc:
        raise PlatformUnreachable(getattr(exc, "code", None)) from exc
    finally:
        http.close()
    identity = HospitalIdentity(
        hospital_id=str(out["hospital_id"]),
        name=str(out["name"]),
        platform_url=platform_url,
        hub_key_id=str(hub.get("key_id", "")),
        hub_public_key=hub_public,
        keys=keys,
    )
    ident_path.write_text(json.dumps(identity.public_doc(), ensure_ascii=False, indent=2))
    return identity


@dataclass(frozen=True)
class KeyRotation:
    """What ``rotate_hybrid_key`` did: made a hybrid key (or found one), published it."""

    made: bool
    key_kinds: tuple[str, ...]


def rotate_hybrid_key(
    data_dir: Path,
    *,
    platform_url: str | None = None,
    key_file: Path | None = None,
    ca_file: Path | None = None,
) -> KeyRotation:
    """``kyukyu hospital keys rotate``: give an install made before the hybrid key one,
    and publish it through the platform (``PUT /v1/hospitals/me/keys``, hospital-signed,
    audited there); from the next directory on, devices seal v2 to this hospital.

    The key file is rewritten atomically (0600) with the X25519 key kept, so v1 cases
    sealed before (still in flight) keep opening. An install that has its hybrid key
    publishes it again (the platform may have missed it). A running service takes the
    new file by itself (``hospital.keyring``, docs/hospital.md): no restart."""
    from sync.receiver import HospitalClient

    identity = load_identity(data_dir, platform_url, key_file=key_file)
    path = key_file or data_dir / KEY_FILE
    keys, made = identity.keys, False
    if keys.xwing is None:
        keys = replace(keys, xwing=XWingPrivateKey.generate())
        keys.replace_file(path)
        made = True
        identity = replace(identity, keys=keys)
        (data_dir / IDENTITY_FILE).write_text(
            json.dumps(identity.public_doc(), ensure_ascii=False, indent=2)
        )
    client = HospitalClient(
        identity.platform_url,
        hospital_id=identity.hospital_id,
        key=keys.signing,
        ca_file=ca_file,
    )
    try:
        out = client.http.request_json(
            "PUT", "/v1/hospitals/me/keys", body={"xwing_public_key": keys.xwing_public_b64()}
        )
    except (AuthError, HttpStatusError) as exc:
        raise RegistrationRefused(getattr(exc, "code", None)) from exc
    except PlatformError as exc:
        raise PlatformUnreachable(getattr(exc, "code", None)) from exc
    finally:
        client.close()
    kinds = out.get("key_kinds") if isinstance(out, dict) else None
    return KeyRotation(made, tuple(str(k) for k in kinds) if isinstance(kinds, list) else ())
