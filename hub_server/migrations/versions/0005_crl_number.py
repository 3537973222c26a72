"""revocation versions remember the CRL's CRLNumber (older CRLs are refused)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 19:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('revocation_versions', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('crl_number', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table('revocation_versions', schema=None) as batch_op:
        batch_op.drop_column('crl_number')
