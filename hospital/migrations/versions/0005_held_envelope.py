"""Cases refused for want of a key kind, kept to be opened once the key is read

``rejections.envelope`` (the sealed envelope as the platform sent it, kept only for a
case refused as ``envelope_wrong_key_kind``: a v2 case before the service read the
X-Wing key a rotation added; opened and taken in once it has; NULL otherwise). Nullable:
the rows already there hold nothing to open again. See docs/hospital.md.

Revision ID: 0005_held_envelope
Revises: 0004_direct_report
Create Date: 2026-12-06 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_held_envelope"
down_revision = "0004_direct_report"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rejections") as batch_op:
        batch_op.add_column(sa.Column("envelope", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rejections") as batch_op:
        batch_op.drop_column("envelope")
