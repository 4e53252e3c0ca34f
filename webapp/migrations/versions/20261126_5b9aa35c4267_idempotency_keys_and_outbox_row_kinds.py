"""Idempotency keys of order placement, and the kind of an outbox row (an event, or the
termination of a user's connections at sign-out). Like the initial migration, it adopts a
database whose tables ``db.create_all()`` made: it adds only what is missing.

Revision ID: 5b9aa35c4267
Revises: 9ff7333ffc6e
Create Date: 2026-11-26 02:03:41.857709
"""

import sqlalchemy as sa
from alembic import op

from webapp.schema import create_table_if_missing

revision = "5b9aa35c4267"
down_revision = "9ff7333ffc6e"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_table_if_missing(
        "idempotency_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response_body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_idempotency_keys_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint("user_id", "key", name="uq_idempotency_keys_user_key"),
        indexes={"ix_idempotency_keys_created_at": ("created_at", False)},
    )
    if "kind" not in {c["name"] for c in sa.inspect(op.get_bind()).get_columns("outbox_events")}:
        with op.batch_alter_table("outbox_events") as batch_op:
            batch_op.add_column(sa.Column("kind", sa.String(length=16),
                                          server_default=sa.text("'event'"), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("outbox_events") as batch_op:
        batch_op.drop_column("kind")
    op.drop_index(op.f("ix_idempotency_keys_created_at"), table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
