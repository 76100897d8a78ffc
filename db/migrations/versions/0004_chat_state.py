"""Chat state: the open question the bot asked, and the intent a customer chose

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29

``customers.pending`` holds what the bot is waiting for (an order number, a yes/no
confirmation, a choice between intents, a survey comment) and ``pending_until`` when that
question lapses. ``interactions.chosen_intent`` keeps the intent a customer picked when the
bot asked back, so that the message and its label can be used for retraining.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pending", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("pending_until", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chosen_intent", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.drop_column("chosen_intent")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_column("pending_until")
        batch_op.drop_column("pending")
