"""incidents: mass-casualty incidents, the hospitals alerted and their capacities per
START category, the triage tags and their assignments (docs/mass-casualty.md)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-09 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('incidents',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('region', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('place', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('estimated_count', sa.Integer(), nullable=False),
    sa.Column('team', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('device_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('declared_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('closed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('closed_by', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_incidents_region'), 'incidents', ['region'], unique=False)
    op.create_table('incident_hospitals',
    sa.Column('incident_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('hospital_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('red', sa.Integer(), nullable=True),
    sa.Column('yellow', sa.Integer(), nullable=True),
    sa.Column('green', sa.Integer(), nullable=True),
    sa.Column('answered_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['hospital_id'], ['hospitals.id'], ),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], ),
    sa.PrimaryKeyConstraint('incident_id', 'hospital_id')
    )
    op.create_table('incident_patients',
    sa.Column('incident_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('tag', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('category', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('device_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('registered_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('hospital_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('case_id', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
    sa.Column('assigned_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('acceptance', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], ),
    sa.PrimaryKeyConstraint('incident_id', 'tag')
    )
    op.create_index(op.f('ix_incident_patients_hospital_id'), 'incident_patients', ['hospital_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_incident_patients_hospital_id'), table_name='incident_patients')
    op.drop_table('incident_patients')
    op.drop_table('incident_hospitals')
    op.drop_index(op.f('ix_incidents_region'), table_name='incidents')
    op.drop_table('incidents')
