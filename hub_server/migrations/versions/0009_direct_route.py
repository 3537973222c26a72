"""direct_route: a hospital's direct-delivery address and pinned TLS certificate, and the
region's opt-in to the direct route (docs/disaster.md)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 11:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hospitals") as batch_op:
        batch_op.add_column(
            sa.Column("direct_url", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True)
        )
        batch_op.add_column(sa.Column("direct_tls_cert", sa.Text(), nullable=True))
    with op.batch_alter_table("regions") as batch_op:
        batch_op.add_column(
            sa.Column("direct_route", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("regions") as batch_op:
        batch_op.drop_column("direct_route")
    with op.batch_alter_table("hospitals") as batch_op:
        batch_op.drop_column("direct_tls_cert")
        batch_op.drop_column("direct_url")
