"""An index on orders (status, created_at): the worker looks for pending orders past
PENDING_ORDER_TTL on every pass. Like the migrations before it, it adopts a database whose
tables ``db.create_all()`` made: it adds the index only where it is missing.

Revision ID: 7d2e4c1a9b30
Revises: 5b9aa35c4267
Create Date: 2026-11-27 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "7d2e4c1a9b30"
down_revision = "5b9aa35c4267"
branch_labels = None
depends_on = None

INDEX = "ix_orders_status_created_at"


def upgrade() -> None:
    if INDEX not in {index["name"] for index in sa.inspect(op.get_bind()).get_indexes("orders")}:
        op.create_index(INDEX, "orders", ["status", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="orders")
