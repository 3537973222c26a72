"""Raw RSA signing the way the card does it: the host sends a DigestInfo, the card pads."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = ["pkcs1_sign_raw"]


def pkcs1_sign_raw(key: rsa.RSAPrivateKey, digest_info: bytes) -> bytes | None:
    """EMSA-PKCS1-v1_5 padding (type 1) around ``digest_info``, then RSASP1.

    The card does not parse the DigestInfo (OpenSC and our reader both build it).
    Returns None when the data does not fit (k - 11 bytes at most).
    """
    k = (key.key_size + 7) // 8
    if len(digest_info) > k - 11:
        return None
    em = b"\x00\x01" + b"\xff" * (k - 3 - len(digest_info)) + b"\x00" + digest_info
    priv = key.private_numbers()
    m = int.from_bytes(em, "big")
    # CRT: four times faster than pow(m, d, n).
    s1 = pow(m, priv.dmp1, priv.p)
    s2 = pow(m, priv.dmq1, priv.q)
    h = (priv.iqmp * (s1 - s2)) % priv.p
    s = s2 + h * priv.q
    return s.to_bytes(k, "big")
