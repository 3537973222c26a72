"""64-bit times; a flagged sealing time, the vouched sender, a refusal's device and report

``cases.sealed_at`` (the envelope's unix seconds) and ``staff.last_totp_step`` become
BIGINT: a device whose clock says 2038-01-19T03:14:08Z or later no longer breaks the
insert. New columns, valid for the rows already there: ``cases.sealed_at_suspect``
(NOT NULL, server default false), ``cases.sender_department``,
``rejections.device_id`` and ``rejections.reported_at`` (NULL: unknown / not reported).
SQLite changes a column's type by copying the table (batch mode); rows are kept.

Revision ID: 0002_time64_sender
Revises: 0001_initial
Create Date: 2026-12-06 05:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0002_time64_sender"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch_op:
        batch_op.alter_column(
            "sealed_at", existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=False
        )
        batch_op.add_column(
            sa.Column("sealed_at_suspect", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column(
                "sender_department", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True
            )
        )
    with op.batch_alter_table("rejections") as batch_op:
        batch_op.add_column(
            sa.Column("device_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True)
        )
        batch_op.add_column(
            sa.Column("reported_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
    with op.batch_alter_table("staff") as batch_op:
        batch_op.alter_column(
            "last_totp_step",
            existing_type=sa.Integer(),
            type_=sa.BigInteger(),
            existing_nullable=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("staff") as batch_op:
        batch_op.alter_column(
            "last_totp_step",
            existing_type=sa.BigInteger(),
            type_=sa.Integer(),
            existing_nullable=False,
        )
    with op.batch_alter_table("rejections") as batch_op:
        batch_op.drop_column("reported_at")
        batch_op.drop_column("device_id")
    with op.batch_alter_table("cases") as batch_op:
        batch_op.drop_column("sender_department")
        batch_op.drop_column("sealed_at_suspect")
        batch_op.alter_column(
            "sealed_at", existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=False
        )
