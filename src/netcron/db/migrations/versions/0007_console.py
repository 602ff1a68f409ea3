"""console: runs by time across devices (the overview's last hour, latest runs)

Revision ID: 0007
Revises: 0004
"""

from alembic import op

revision = "0007"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_command_results_scheduled_status", "command_results", ["scheduled_at", "status"]
    )


def downgrade() -> None:
    op.drop_index("ix_command_results_scheduled_status", table_name="command_results")
