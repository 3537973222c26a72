"""Process limits for many concurrent streams.

Every open stream is a socket, i.e. a file descriptor; 10,000 streams need more than the
usual soft limit of 1,024. ``raise_open_file_limit`` lifts the soft ``RLIMIT_NOFILE`` to
the hard limit (an unprivileged process may do that; raising the hard limit itself is
the administrator's job: ``LimitNOFILE=`` in the systemd unit, or limits.conf).
``kyukyu hub serve`` calls it at start; uvicorn's worker processes inherit the limit.
"""

from __future__ import annotations

__all__ = ["raise_open_file_limit"]


def raise_open_file_limit() -> tuple[int, int]:
    """Set the soft open-files limit to the hard one; returns (before, after)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):  # e.g. above the kernel's nr_open
            return soft, soft
        return soft, target
    return soft, soft
