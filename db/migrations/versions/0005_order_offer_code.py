"""Offer code on orders, for redemptions of personalized offers; the planned offer message

Revision ID: 0005
Revises: 0004 (chat state)
Create Date: 2026-11-29

``orders.offer_code`` holds the code a customer used at checkout (upper case, as in
``offers.code``); ``bot.services.offers.record_redemptions_from_orders`` matches it to the
offer deliveries of the same customer. Indexed: that job looks up the coded orders only.
``offer_deliveries.message`` keeps the message as planned, so that whichever process sends
(the bot's sender loop) sends exactly what was planned, after a restart too.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("offer_code", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_orders_offer_code"), ["offer_code"], unique=False)
    with op.batch_alter_table("offer_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("message", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("offer_deliveries", schema=None) as batch_op:
        batch_op.drop_column("message")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_offer_code"))
        batch_op.drop_column("offer_code")
