"""the hospital's tables as the last release before migrations made them (create_all)

A database made by that release (or an earlier one, which lacked ``closures``) has
some or all of these tables and no ``alembic_version``: only the missing tables are
created, so such a database goes on to the next revisions with every row it holds.

Revision ID: 0001_initial
Revises:
Create Date: 2026-12-06 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

_AUTO = sqlmodel.sql.sqltypes.AutoString
_UTC = sqlmodel.sql.sqltypes.UTCDateTime


def _lacks(table: str) -> bool:
    return not sa.inspect(op.get_bind()).has_table(table)


def upgrade() -> None:
    if _lacks("audit"):
        op.create_table(
            "audit",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("at", _UTC(), nullable=False),
            sa.Column("actor", _AUTO(length=80), nullable=False),
            sa.Column("action", _AUTO(length=40), nullable=False),
            sa.Column("case_id", _AUTO(length=128), nullable=True),
            sa.Column("detail", _AUTO(length=400), nullable=False),
            sa.Column("client", _AUTO(length=64), nullable=True),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index(op.f("ix_audit_at"), "audit", ["at"], unique=False)
        op.create_index(op.f("ix_audit_case_id"), "audit", ["case_id"], unique=False)
    if _lacks("cases"):
        op.create_table(
            "cases",
            sa.Column("case_id", _AUTO(length=128), nullable=False),
            sa.Column("event_id", sa.Integer(), nullable=False),
            sa.Column("device_id", _AUTO(length=128), nullable=False),
            sa.Column("sealed_at", sa.Integer(), nullable=False),
            sa.Column("received_at", _UTC(), nullable=False),
            sa.Column("blob", sa.LargeBinary(), nullable=False),
            sa.Column("answer", _AUTO(length=16), nullable=True),
            sa.Column("answer_reason", _AUTO(length=40), nullable=True),
            sa.Column("answered_by", _AUTO(length=80), nullable=True),
            sa.Column("answered_at", _UTC(), nullable=True),
            sa.Column("destination", _AUTO(length=16), nullable=True),
            sa.Column("exported_at", _UTC(), nullable=True),
            sa.PrimaryKeyConstraint("case_id"),
        )
        op.create_index(op.f("ix_cases_received_at"), "cases", ["received_at"], unique=False)
    if _lacks("closures"):
        op.create_table(
            "closures",
            sa.Column("case_id", _AUTO(length=128), nullable=False),
            sa.Column("event_id", sa.Integer(), nullable=False),
            sa.Column("closed_at", _UTC(), nullable=False),
            sa.Column("blob", sa.LargeBinary(), nullable=False),
            sa.PrimaryKeyConstraint("case_id"),
        )
    if _lacks("rejections"):
        op.create_table(
            "rejections",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("at", _UTC(), nullable=False),
            sa.Column("event_id", sa.Integer(), nullable=False),
            sa.Column("case_id", _AUTO(length=128), nullable=True),
            sa.Column("code", _AUTO(length=60), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
    if _lacks("sessions"):
        op.create_table(
            "sessions",
            sa.Column("token_hash", _AUTO(length=64), nullable=False),
            sa.Column("user_id", sa.Integer(), nullable=False),
            sa.Column("csrf", _AUTO(length=64), nullable=False),
            sa.Column("created_at", _UTC(), nullable=False),
            sa.Column("last_seen", _UTC(), nullable=False),
            sa.Column("expires_at", _UTC(), nullable=False),
            sa.PrimaryKeyConstraint("token_hash"),
        )
        op.create_index(op.f("ix_sessions_user_id"), "sessions", ["user_id"], unique=False)
    if _lacks("staff"):
        op.create_table(
            "staff",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("username", _AUTO(length=80), nullable=False),
            sa.Column("display_name", _AUTO(length=120), nullable=False),
            sa.Column("password_hash", _AUTO(length=200), nullable=False),
            sa.Column("totp_secret", _AUTO(length=64), nullable=False),
            sa.Column("last_totp_step", sa.Integer(), nullable=False),
            sa.Column("failures", sa.Integer(), nullable=False),
            sa.Column("locked_until", _UTC(), nullable=True),
            sa.Column("disabled", sa.Boolean(), nullable=False),
            sa.Column("created_at", _UTC(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("username"),
        )


def downgrade() -> None:
    op.drop_table("staff")
    op.drop_index(op.f("ix_sessions_user_id"), table_name="sessions")
    op.drop_table("sessions")
    op.drop_table("rejections")
    op.drop_table("closures")
    op.drop_index(op.f("ix_cases_received_at"), table_name="cases")
    op.drop_table("cases")
    op.drop_index(op.f("ix_audit_case_id"), table_name="audit")
    op.drop_index(op.f("ix_audit_at"), table_name="audit")
    op.drop_table("audit")
