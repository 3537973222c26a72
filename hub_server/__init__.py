"""The platform server: enrollment, summary look-up, sealed case routing and push, audit.

Build the app with ``hub_server.main.create_app(Settings(...))`` (nothing happens at
import time); run it with ``kyukyu hub serve``. See docs/hub.md.
"""

# A package of modules: its face is the modules other packages import.
__all__ = [
    "api",
    "core",
    "crud",
    "main",
    "medical",
    "models",
    "schemas",
    "services",
]
