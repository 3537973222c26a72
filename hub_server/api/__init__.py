"""HTTP layer of the hub: dependencies and one router per resource."""

# A package of modules: its face is the modules other packages import.
__all__ = [
    "deps",
    "event_streams",
    "routes",
]
