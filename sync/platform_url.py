"""The one rule for a platform URL, for every role that registers with the platform.

A device (``kyukyu provision enroll``) and a hospital (``kyukyu hospital init``)
pin the platform's key on first contact: over plain HTTP anyone on the path could
hand over a key of their own. So the URL must be ``https://``; plain ``http://``
only to this machine (a host that resolves to loopback addresses only:
127.0.0.0/8, ::1, ``localhost``), for the demo and the tests.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

__all__ = ["is_loopback_host", "platform_url_is_secure"]


def is_loopback_host(host: str) -> bool:
    """True when ``host`` resolves, and only to loopback addresses."""
    if not host:
        return False
    try:
        infos = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def platform_url_is_secure(url: str) -> bool:
    """``https://`` anywhere, ``http://`` only to a loopback host; anything else is not."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:  # a malformed netloc (an unclosed IPv6 bracket, a bad port)
        return False
    if parts.scheme == "https":
        return bool(host)
    return parts.scheme == "http" and is_loopback_host(host)
