"""Covering index on orders for the RFM and CLV aggregations

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(
            "ix_orders_customer_ordered_status_total",
            ["customer_id", "ordered_at", "status", "total"],
            unique=False,
        )
        batch_op.drop_index("ix_orders_customer_ordered")


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index("ix_orders_customer_ordered", ["customer_id", "ordered_at"],
                              unique=False)
        batch_op.drop_index("ix_orders_customer_ordered_status_total")
