"""Where a staff member comes from: the configured allowlist, or an admin in the chat

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29

``staff_members.source`` is ``config`` for members listed in ``CRMBOT_STAFF_IDS`` /
``CRMBOT_ADMIN_IDS`` (synced at every start) and ``chat`` for members an admin added with
``/staff add`` (left alone by the sync).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("staff_members", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("source", sa.String(length=16), nullable=False, server_default="config")
        )


def downgrade() -> None:
    with op.batch_alter_table("staff_members", schema=None) as batch_op:
        batch_op.drop_column("source")
