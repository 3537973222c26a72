"""The ``kyukyu`` command line: one entry point for the device, the platform and hospitals."""
