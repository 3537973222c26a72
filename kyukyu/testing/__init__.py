"""Test and demo infrastructure: not the product, the bench it is tried on.

Used by ``kyukyu demo``, the test suite (``tests/components.py``) and the benchmarks;
no library imports it.

- ``cli_env`` (``ROOT``, ``CONFIG_VARIABLES``): a ``python -m kyukyu`` child's
  environment, none of the caller's ``KYUKYU_*`` settings; ``free_port``: a free
  loopback port for a server in another process
- ``serve_in_thread``: an ASGI app under a real uvicorn on a free loopback port;
  ``wait_until_serving``: until a server in another process answers
- ``ensure_pcscd`` (``VPCD_HOST``, ``VPCD_PORTS``, ``PcscdUnavailable``, ``vpcd_ready``):
  pcscd with the vpcd virtual reader
- ``seed_with_cards`` (``CardSeedReport``, ``SeededCard``): the synthetic medical source
  with virtual My Number cards for some of its patients
- ``write_device_settings``: a device's settings file and key, as enrollment leaves them
- ``running_platform`` (``Platform``, ``Operator``, ``add_operator``,
  ``register_hospital``, ``enroll_device``): the platform built
  one way for the demo, the tests and the benchmarks (hub, seeded cards, an operator)
- ``pg_cluster`` (``PgCluster``): a PostgreSQL cluster of its own (``initdb``, ``pg_ctl``)
  on a free port, to stop and start in fault tests
- ``HubProcess``, ``make_fleet``, ``FleetDevice``, ``FleetReceiver`` (``CountingTransport``,
  ``operator_http``, ``wait_for``): hub processes, devices posting sealed cases and
  hospitals receiving them, on real processes, counted (the load-balancer test, the
  fault runs)
- ``DisasterWorld`` (``DisasterHospital``, ``DisasterDevice``): the platform to kill -9,
  hospital services with their direct endpoint, devices with the direct route
  (docs/disaster.md)
- ``DashboardStaff`` (``totp_now``, ``STAFF_PASSWORD``): a hospital's staff member as a
  script, signed in to the dashboard over HTTP
"""

from __future__ import annotations

from kyukyu.testing._cards import CardSeedReport, SeededCard, seed_with_cards
from kyukyu.testing._device import write_device_settings
from kyukyu.testing._disaster import (
    DisasterDevice,
    DisasterHospital,
    DisasterWorld,
    self_signed_certificate,
)
from kyukyu.testing._fleet import (
    CountingTransport,
    EnrolledDevice,
    FleetDevice,
    FleetReceiver,
    HubProcess,
    RegisteredHospital,
    make_fleet,
    operator_http,
    wait_for,
)
from kyukyu.testing._pcscd import (
    VPCD_HOST,
    VPCD_PORTS,
    PcscdUnavailable,
    ensure_pcscd,
    vpcd_ready,
)
from kyukyu.testing._pg import PgCluster, pg_cluster
from kyukyu.testing._process import CONFIG_VARIABLES, ROOT, cli_env, free_port
from kyukyu.testing._serve import serve_in_thread, wait_until_serving
from kyukyu.testing._staff import STAFF_PASSWORD, DashboardStaff, totp_now
from kyukyu.testing._world import (
    Operator,
    Platform,
    add_operator,
    enroll_device,
    register_hospital,
    running_platform,
)

__all__ = [
    "CONFIG_VARIABLES",
    "ROOT",
    "STAFF_PASSWORD",
    "VPCD_HOST",
    "VPCD_PORTS",
    "CardSeedReport",
    "CountingTransport",
    "DashboardStaff",
    "DisasterDevice",
    "DisasterHospital",
    "DisasterWorld",
    "EnrolledDevice",
    "FleetDevice",
    "FleetReceiver",
    "HubProcess",
    "Operator",
    "PcscdUnavailable",
    "PgCluster",
    "Platform",
    "RegisteredHospital",
    "SeededCard",
    "add_operator",
    "cli_env",
    "enroll_device",
    "ensure_pcscd",
    "free_port",
    "make_fleet",
    "operator_http",
    "pg_cluster",
    "register_hospital",
    "running_platform",
    "seed_with_cards",
    "self_signed_certificate",
    "serve_in_thread",
    "totp_now",
    "vpcd_ready",
    "wait_for",
    "wait_until_serving",
    "write_device_settings",
]
