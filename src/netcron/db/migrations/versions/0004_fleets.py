"""fleets: jobs over label selectors, their fires, and job runs beside schedule runs

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(length=128), nullable=False, unique=True),
        sa.Column("command", sa.Text(), nullable=False),
        sa.Column("params", postgresql.JSONB(), nullable=False, server_default="{}"),
        sa.Column("target", postgresql.JSONB(), nullable=False),
        sa.Column("cron", sa.String(length=128), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False, server_default="UTC"),
        sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("ttl_seconds", sa.Integer(), nullable=False, server_default="300"),
        sa.Column("overlap", sa.String(length=16), nullable=False, server_default="skip"),
        sa.Column("starting_deadline_seconds", sa.Integer(), nullable=False, server_default="60"),
        sa.Column("retry_max_attempts", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("retry_backoff_seconds", sa.Float(), nullable=False, server_default="10"),
        sa.Column("timeout", sa.Float(), nullable=False, server_default="30"),
        sa.Column("max_in_flight", sa.Integer(), nullable=False, server_default="100"),
        sa.Column("per_label", postgresql.JSONB(), nullable=False, server_default="{}"),
        sa.Column("track_changes", sa.Boolean(), nullable=False, server_default="false"),
        sa.Column("ignore_lines", postgresql.JSONB(), nullable=False, server_default="[]"),
        sa.Column("mask", postgresql.JSONB(), nullable=False, server_default="[]"),
        sa.Column("parse", postgresql.JSONB(), nullable=True),
        sa.Column("spec_version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("workflow_id", sa.String(length=128), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    )
    op.create_table(
        "job_fires",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "job_id", sa.Uuid(), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("manual", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("missed", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("total", sa.Integer(), nullable=False, server_default="0"),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    )
    op.create_index("ix_job_fires_job_scheduled", "job_fires", ["job_id", "scheduled_at"])
    op.alter_column("command_results", "schedule_id", nullable=True)
    op.alter_column("command_results", "command_id", nullable=True)
    op.add_column(
        "command_results",
        sa.Column("job_id", sa.Uuid(), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=True),
    )
    op.add_column(
        "command_results",
        sa.Column(
            "fire_id", sa.Uuid(), sa.ForeignKey("job_fires.id", ondelete="CASCADE"), nullable=True
        ),
    )
    op.create_check_constraint(
        "ck_command_results_owner",
        "command_results",
        "(schedule_id IS NOT NULL AND command_id IS NOT NULL) OR "
        "(job_id IS NOT NULL AND fire_id IS NOT NULL)",
    )
    op.create_index("ix_command_results_fire_status", "command_results", ["fire_id", "status"])
    op.create_index(
        "ix_command_results_job_device_scheduled",
        "command_results",
        ["job_id", "device_id", "scheduled_at"],
    )


def downgrade() -> None:
    op.execute("DELETE FROM command_results WHERE job_id IS NOT NULL")
    op.drop_index("ix_command_results_job_device_scheduled", table_name="command_results")
    op.drop_index("ix_command_results_fire_status", table_name="command_results")
    op.drop_constraint("ck_command_results_owner", "command_results", type_="check")
    op.drop_column("command_results", "fire_id")
    op.drop_column("command_results", "job_id")
    op.alter_column("command_results", "command_id", nullable=False)
    op.alter_column("command_results", "schedule_id", nullable=False)
    op.drop_index("ix_job_fires_job_scheduled", table_name="job_fires")
    op.drop_table("job_fires")
    op.drop_table("jobs")
