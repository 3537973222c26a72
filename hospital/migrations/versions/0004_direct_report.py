"""Reporting directly received cases to the platform

``cases.direct_envelope`` (the sealed envelope exactly as the device delivered it by the
direct route, base64; kept until the platform has the case, then NULL) and
``cases.direct_report`` (how that ended: ``reported`` (the platform took it from this
hospital), ``platform`` (its own event came first), ``refused:<code>``; NULL: nothing
to report, or not yet). Both nullable: the rows already there have nothing to report.
See docs/disaster.md.

Revision ID: 0004_direct_report
Revises: 0003_direct_route
Create Date: 2026-12-06 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0004_direct_report"
down_revision = "0003_direct_route"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch_op:
        batch_op.add_column(sa.Column("direct_envelope", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("direct_report", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch_op:
        batch_op.drop_column("direct_report")
        batch_op.drop_column("direct_envelope")
