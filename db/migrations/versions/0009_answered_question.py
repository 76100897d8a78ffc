"""Inbound messages remember the bot's question they answered; edits find their message

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30

``interactions.answered_question`` is the kind of open question (order number, review,
yes or no...) a customer's message answered. Such a message often reads as out of scope to
the NLU ("found it: 5551"); with this column the handoff trigger no longer counts it as a
message the bot did not understand. The index on Telegram's chat and message id finds the
message an edit changes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("answered_question", sa.String(length=32), nullable=True))
        batch_op.create_index(
            "ix_interactions_chat_message", ["telegram_chat_id", "telegram_message_id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.drop_index("ix_interactions_chat_message")
        batch_op.drop_column("answered_question")
