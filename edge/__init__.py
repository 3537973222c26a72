"""The ambulance device: card reading (reader, jpki), the case flow, the UI."""

# A package of modules: its face is the modules other packages import.
__all__ = [
    "card_sim",
    "doctor",
    "flow",
    "jpki",
    "provision",
    "reader",
    "settings",
    "trust_bundle",
    "ui",
]
