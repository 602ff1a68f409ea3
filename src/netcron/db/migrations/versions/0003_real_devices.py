"""real devices: host keys, session limit, connect timeout, last check, error kinds

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "devices",
        sa.Column(
            "host_key_policy",
            sa.String(length=32),
            server_default="trust_on_first_use",
            nullable=False,
        ),
    )
    op.add_column("devices", sa.Column("host_key", sa.String(length=128), nullable=True))
    op.add_column(
        "devices", sa.Column("session_limit", sa.Integer(), server_default="1", nullable=False)
    )
    op.add_column(
        "devices", sa.Column("connect_timeout", sa.Float(), server_default="10", nullable=False)
    )
    op.add_column(
        "devices",
        sa.Column("last_check", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.add_column("command_results", sa.Column("error_kind", sa.String(length=32), nullable=True))


def downgrade() -> None:
    op.drop_column("command_results", "error_kind")
    op.drop_column("devices", "last_check")
    op.drop_column("devices", "connect_timeout")
    op.drop_column("devices", "session_limit")
    op.drop_column("devices", "host_key")
    op.drop_column("devices", "host_key_policy")
