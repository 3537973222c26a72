"""An index on ``cases.device_id``

The direct route's answer feed (``HospitalStore.direct_answers``) asks, every few
seconds per device, for the answers to one device's cases: joined on the cases by
``device_id``. See docs/hospital.md.

Revision ID: 0006_case_device_index
Revises: 0005_held_envelope
Create Date: 2026-12-06 15:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0006_case_device_index"
down_revision = "0005_held_envelope"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_cases_device_id"), "cases", ["device_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_cases_device_id"), table_name="cases")
