"""The direct route: how each case came, and answers the platform does not have yet

``cases.route`` (``platform`` | ``direct``: the device delivered it straight to this
hospital while the platform was out; NOT NULL, server default ``platform`` for the rows
already there) and ``cases.answer_unsent`` (the answer was given while the platform was
out and is sent to it once it has the case; NOT NULL, server default false).
See docs/disaster.md.

Revision ID: 0003_direct_route
Revises: 0002_time64_sender
Create Date: 2026-12-06 11:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0003_direct_route"
down_revision = "0002_time64_sender"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch_op:
        batch_op.add_column(
            sa.Column(
                "route",
                sqlmodel.sql.sqltypes.AutoString(length=16),
                nullable=False,
                server_default="platform",
            )
        )
        batch_op.add_column(
            sa.Column("answer_unsent", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch_op:
        batch_op.drop_column("answer_unsent")
        batch_op.drop_column("route")
