"""refused_case_reports: hospitals report the cases they refused (code only, no content)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('refused_case_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('hospital_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('event_seq', sa.BigInteger(), nullable=False),
    sa.Column('case_id', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('device_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('reported_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('hospital_id', 'event_seq', name='uq_refused_case_reports_event')
    )
    op.create_index(op.f('ix_refused_case_reports_case_id'), 'refused_case_reports', ['case_id'], unique=False)
    op.create_index(op.f('ix_refused_case_reports_reported_at'), 'refused_case_reports', ['reported_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_refused_case_reports_reported_at'), table_name='refused_case_reports')
    op.drop_index(op.f('ix_refused_case_reports_case_id'), table_name='refused_case_reports')
    op.drop_table('refused_case_reports')
