"""The platform server: enrollment, summary look-up, sealed case routing and push, audit.

Build the app with ``hub_server.main.create_app(Settings(...))`` (nothing happens at
import time); run it with ``kyukyu hub serve``. See docs/hub.md.
"""
