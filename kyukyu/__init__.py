"""The ``kyukyu`` command line: one entry point for the device, the platform and hospitals."""

# A package of modules: its face is the modules other packages import.
__all__ = [
    "cli",
    "commands",
    "testing",
]
