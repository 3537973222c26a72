"""Process limits for many concurrent streams.

Every open stream is a socket, i.e. a file descriptor; 10,000 streams need more than the
usual soft limit of 1,024. ``raise_open_file_limit`` lifts the soft ``RLIMIT_NOFILE`` to
the hard limit (an unprivileged process may do that; raising the hard limit itself is
the administrator's job: ``LimitNOFILE=`` in the systemd unit, or limits.conf).
``kyukyu hub serve`` calls it at start; uvicorn's worker processes inherit the limit.

``tune_gc``: a hub holding 10,000 streams has millions of long-lived objects, and each
of Python's full (generation 2) collections walks them all, stopping the event loop
for about a second (measured: 0.75-1.4 s with 10,000 streams, every few seconds under
load, mostly collecting nothing). Short-lived request objects reached generation 2
because the youngest generation was collected every 700 allocations, while a request
was still using them. With 5,000 most are gone by then, and full collections become
rare (at most one per 20 million net allocations, 5,000 x 10 x 400, as with the earlier
20,000/10/100); reference counting frees most objects anyway. The youngest threshold is
not higher because a generation-1 collection walks up to ten times it in objects: with
20,000 those stopped the loop for 100-400 ms at 700 cases/s (wall time, every core
busy), with 5,000 for 30-150 ms, at the same CPU per case.
"""

from __future__ import annotations

__all__ = ["GC_THRESHOLDS", "raise_open_file_limit", "tune_gc"]

#: (generation 0, 1, 2) thresholds of the hub's processes; Python's are (700, 10, 10).
GC_THRESHOLDS = (5_000, 10, 400)


def tune_gc() -> None:
    """Collect garbage less often (see the module's text); every hub process calls it."""
    import gc

    gc.set_threshold(*GC_THRESHOLDS)


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
