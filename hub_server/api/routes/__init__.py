"""One ``APIRouter`` per resource."""

# A package of modules: its face is the modules other packages import.
__all__ = [
    "device_keys",
    "devices",
    "direct_receipts",
    "events",
    "hospitals",
    "hub",
    "identities",
    "operators",
    "patients",
    "revocation",
    "summaries",
    "trust",
]
