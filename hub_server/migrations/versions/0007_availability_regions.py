"""availability_regions: regions (with neighbours), the region of devices and hospitals
(and of the tokens that enroll them), hospitals' 応需状況 and its version counter

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

_REGION_OF = ('devices', 'hospitals', 'enrollment_tokens', 'hospital_enrollment_tokens')


def upgrade() -> None:
    op.create_table('regions',
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('neighbours', sa.Text(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('code')
    )
    op.create_table('hospital_availability',
    sa.Column('hospital_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('region', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('items', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['hospital_id'], ['hospitals.id'], ),
    sa.PrimaryKeyConstraint('hospital_id')
    )
    op.create_index(op.f('ix_hospital_availability_region'), 'hospital_availability', ['region'], unique=False)
    op.create_index(op.f('ix_hospital_availability_version'), 'hospital_availability', ['version'], unique=False)
    op.create_table('availability_head',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.execute("INSERT INTO availability_head (id, version) VALUES (1, 0)")
    for table in _REGION_OF:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('region', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))


def downgrade() -> None:
    for table in _REGION_OF:
        with op.batch_alter_table(table) as batch:
            batch.drop_column('region')
    op.drop_table('availability_head')
    op.drop_index(op.f('ix_hospital_availability_version'), table_name='hospital_availability')
    op.drop_index(op.f('ix_hospital_availability_region'), table_name='hospital_availability')
    op.drop_table('hospital_availability')
    op.drop_table('regions')
