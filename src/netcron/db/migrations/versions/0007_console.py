"""console: signed-in sessions, and runs by time across devices (the overview's last hour)

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.String(length=64), primary_key=True),
        sa.Column("api_key", sa.Text(), nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_command_results_scheduled_status", "command_results", ["scheduled_at", "status"]
    )


def downgrade() -> None:
    op.drop_index("ix_command_results_scheduled_status", table_name="command_results")
    op.drop_table("console_sessions")
