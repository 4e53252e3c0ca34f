"""A partial index on the outbox rows still to send (``delivered_at`` and ``failed_at`` both
NULL): every delivery pass reads the head of the queue, which without it meant reading the
table from its first row, delivered ones included. Like the migrations before it, it adopts a
database whose tables ``db.create_all()`` made: it adds the index only where it is missing.

Revision ID: 3c8f1e2a7d64
Revises: 7d2e4c1a9b30
Create Date: 2026-12-07 15:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "3c8f1e2a7d64"
down_revision = "7d2e4c1a9b30"
branch_labels = None
depends_on = None

INDEX = "ix_outbox_events_pending"
WHERE = "delivered_at IS NULL AND failed_at IS NULL"


def upgrade() -> None:
    existing = {index["name"] for index in sa.inspect(op.get_bind()).get_indexes("outbox_events")}
    if INDEX not in existing:
        op.create_index(INDEX, "outbox_events", ["id"], unique=False,
                        sqlite_where=sa.text(WHERE), postgresql_where=sa.text(WHERE))


def downgrade() -> None:
    op.drop_index(INDEX, table_name="outbox_events")
