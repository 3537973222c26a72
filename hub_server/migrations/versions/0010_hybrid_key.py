"""hybrid_key: a hospital's X-Wing (MLKEM768-X25519) public key for envelope v2, beside
its X25519 key (docs/envelope.md); NULL for hospitals that have not published one

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # 1,216 bytes as base64url: 1,622 characters (Text: no length limit to migrate again).
    with op.batch_alter_table("hospitals") as batch_op:
        batch_op.add_column(sa.Column("xwing_public_key", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("hospitals") as batch_op:
        batch_op.drop_column("xwing_public_key")
