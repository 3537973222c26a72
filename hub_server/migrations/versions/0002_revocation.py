"""revocation snapshots: ingested CRL versions and revoked serials with deltas

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 20:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('revocation_versions',
    sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('ingested_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('this_update', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('issuer', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('revoked_count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('version')
    )
    op.create_table('revoked_serials',
    sa.Column('issuer', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('serial', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('added_version', sa.Integer(), nullable=False),
    sa.Column('removed_version', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('issuer', 'serial')
    )
    with op.batch_alter_table('revoked_serials', schema=None) as batch_op:
        batch_op.create_index('ix_revoked_serials_versions', ['added_version', 'removed_version'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('revoked_serials', schema=None) as batch_op:
        batch_op.drop_index('ix_revoked_serials_versions')

    op.drop_table('revoked_serials')
    op.drop_table('revocation_versions')
