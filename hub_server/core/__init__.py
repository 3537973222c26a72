"""Core of the hub: settings, database, security, events, audit, certificates."""

# A package of modules: its face is the modules other packages import.
__all__ = [
    "audit",
    "capacity",
    "certs",
    "config",
    "db",
    "errors",
    "events",
    "metrics",
    "security",
    "server",
    "state",
]
