"""Initial schema: users, products, orders and their items and history, the outbox, and
who is online (live_presence).

It also adopts a database made the older ``db.create_all()`` way (tables present, no
``alembic_version``): it makes only the tables missing there, and adds ``users.session_epoch``
where the table predates it; Alembic then records this revision.

Revision ID: 9ff7333ffc6e
Revises:
Create Date: 2026-11-26 00:59:30.159282
"""
import sqlalchemy as sa
from alembic import op

from webapp.schema import create_table_if_missing

revision = "9ff7333ffc6e"
down_revision = None
branch_labels = None
depends_on = None

STATUS = sa.Enum("pending", "paid", "processing", "shipped", "delivered", "cancelled", "refunded",
                 name="orderstatus", native_enum=False, length=20)


def _add_session_epoch_where_missing() -> None:
    """``users.session_epoch`` came after the users table's first release."""
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("users")}
    if "session_epoch" not in columns:
        op.add_column("users", sa.Column("session_epoch", sa.Integer(), nullable=False,
                                         server_default=sa.text("0")))


def upgrade() -> None:
    create_table_if_missing(
        "live_presence",
        sa.Column("channel", sa.String(length=200), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("present", sa.Boolean(), nullable=False),
        sa.Column("time_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("channel", "user_id", name="pk_live_presence"),
        indexes={},
    )
    create_table_if_missing(
        "outbox_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("channels", sa.Text(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("socket_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("failed_at", sa.DateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox_events"),
        indexes={},
    )
    create_table_if_missing(
        "products",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("price_cents", sa.Integer(), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_products"),
        sa.UniqueConstraint("name", name="uq_products_name"),
        indexes={},
    )
    create_table_if_missing(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("session_epoch", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        indexes={"ix_users_email": ("email", True)},
    )
    _add_session_epoch_where_missing()
    create_table_if_missing(
        "orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_number", sa.String(length=32), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("status", STATUS, nullable=False),
        sa.Column("total_cents", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_orders_user_id_users"),
        sa.PrimaryKeyConstraint("id", name="pk_orders"),
        sa.UniqueConstraint("order_number", name="uq_orders_order_number"),
        indexes={"ix_orders_user_id": ("user_id", False)},
    )
    create_table_if_missing(
        "order_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price_cents", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"],
                                name="fk_order_items_order_id_orders"),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"],
                                name="fk_order_items_product_id_products"),
        sa.PrimaryKeyConstraint("id", name="pk_order_items"),
        indexes={"ix_order_items_order_id": ("order_id", False)},
    )
    create_table_if_missing(
        "order_status_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("from_status", STATUS, nullable=True),
        sa.Column("to_status", STATUS, nullable=False),
        sa.Column("changed_by_id", sa.Integer(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["changed_by_id"], ["users.id"],
                                name="fk_order_status_history_changed_by_id_users"),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"],
                                name="fk_order_status_history_order_id_orders"),
        sa.PrimaryKeyConstraint("id", name="pk_order_status_history"),
        indexes={"ix_order_status_history_order_id": ("order_id", False)},
    )


def downgrade() -> None:
    for table in ("order_status_history", "order_items", "orders", "users", "products",
                  "outbox_events", "live_presence"):
        op.drop_table(table)
