"""One module per command group; each has ``register(subparsers)``."""

# A package of modules: its face is the modules other packages import.
__all__ = [
    "card",
    "card_sim",
    "demo",
    "doctor",
    "edge",
    "hospital",
    "hub",
    "provision",
    "readers",
]
