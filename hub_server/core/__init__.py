"""Core of the hub: settings, database, security, events, audit, certificates."""
