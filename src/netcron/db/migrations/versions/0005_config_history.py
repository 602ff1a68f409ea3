"""config history: content-addressed outputs, change tracking, parsed output

Every run's output moves into ``outputs`` (one zlib-compressed row per distinct text,
keyed by its SHA-256), in batches; ``command_results.output`` goes.

Revision ID: 0005
Revises: 0004
"""

import hashlib
import zlib

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BATCH = 1000


def upgrade() -> None:
    op.create_table(
        "outputs",
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("volatile", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("hash"),
    )
    # already compressed: PostgreSQL's own TOAST compression would only cost CPU
    op.execute("ALTER TABLE outputs ALTER COLUMN data SET STORAGE EXTERNAL")
    op.add_column(
        "commands",
        sa.Column("track_changes", sa.Boolean(), server_default="false", nullable=False),
    )
    op.add_column(
        "commands",
        sa.Column(
            "ignore_lines",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[]",
            nullable=False,
        ),
    )
    op.add_column(
        "commands",
        sa.Column(
            "mask", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False
        ),
    )
    op.add_column(
        "commands", sa.Column("parse", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )
    op.add_column("command_results", sa.Column("output_hash", sa.LargeBinary(), nullable=True))
    op.add_column(
        "command_results",
        sa.Column("output_volatile", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.add_column("command_results", sa.Column("changed", sa.Boolean(), nullable=True))
    op.add_column("command_results", sa.Column("lines_added", sa.Integer(), nullable=True))
    op.add_column("command_results", sa.Column("lines_removed", sa.Integer(), nullable=True))
    op.add_column(
        "command_results",
        sa.Column("parsed", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.add_column("command_results", sa.Column("parse_error", sa.Text(), nullable=True))
    _move_outputs_into_blobs()
    op.drop_column("command_results", "output")
    op.create_foreign_key(
        "command_results_output_hash_fkey", "command_results", "outputs", ["output_hash"], ["hash"]
    )
    op.create_index("ix_command_results_output_hash", "command_results", ["output_hash"])
    op.create_index(
        "ix_command_results_versions",
        "command_results",
        ["command_id", "scheduled_at"],
        postgresql_where=sa.text("changed"),
    )
    op.create_index(
        "ix_command_results_scheduled_brin",
        "command_results",
        ["scheduled_at"],
        postgresql_using="brin",
    )


def _move_outputs_into_blobs() -> None:
    bind = op.get_bind()
    last = None
    while True:
        rows = bind.execute(
            sa.text(
                "SELECT id, output FROM command_results WHERE output IS NOT NULL"
                + (" AND id > :last" if last is not None else "")
                + " ORDER BY id LIMIT :batch"
            ),
            {"last": last, "batch": BATCH} if last is not None else {"batch": BATCH},
        ).all()
        if not rows:
            return
        blobs = {}
        links = []
        for run_id, output in rows:
            data = output.encode()
            digest = hashlib.sha256(data).digest()
            blobs[digest] = {"hash": digest, "size": len(data), "data": zlib.compress(data, 6)}
            links.append({"id": run_id, "hash": digest})
        bind.execute(
            sa.text(
                "INSERT INTO outputs (hash, size, data) VALUES (:hash, :size, :data)"
                " ON CONFLICT (hash) DO NOTHING"
            ),
            list(blobs.values()),
        )
        bind.execute(
            sa.text("UPDATE command_results SET output_hash = :hash WHERE id = :id"), links
        )
        last = rows[-1][0]


def downgrade() -> None:
    op.drop_index("ix_command_results_scheduled_brin", table_name="command_results")
    op.drop_index("ix_command_results_versions", table_name="command_results")
    op.drop_index("ix_command_results_output_hash", table_name="command_results")
    op.add_column("command_results", sa.Column("output", sa.Text(), nullable=True))
    bind = op.get_bind()
    for blob_hash, data in bind.execute(sa.text("SELECT hash, data FROM outputs")):
        bind.execute(
            sa.text(
                "UPDATE command_results SET output = :output"
                " WHERE output_hash = :hash AND output_volatile IS NULL"
            ),
            {"output": zlib.decompress(data).decode(), "hash": blob_hash},
        )
    # Runs with lines set aside are restored in Python (their residue is JSON on the row,
    # or relative to the one on their blob: see netcron.history.normalize).
    rows = bind.execute(
        sa.text(
            "SELECT r.id, o.data, r.output_volatile, o.volatile FROM command_results r"
            " JOIN outputs o ON o.hash = r.output_hash WHERE r.output_volatile IS NOT NULL"
        )
    ).all()
    for run_id, data, residue, reference in rows:
        if "changed" in residue:
            lines = {int(i): line for i, line in reference["at"]}
            lines.update((int(i), line) for i, line in residue["changed"])
            residue = {"lines": reference["lines"], "at": sorted(lines.items())}
        text = zlib.decompress(data).decode()
        at = {int(i): line for i, line in residue["at"]}
        kept = iter(text.split("\n") if residue["lines"] > len(at) else [])
        restored = "\n".join(at[i] if i in at else next(kept) for i in range(residue["lines"]))
        bind.execute(
            sa.text("UPDATE command_results SET output = :output WHERE id = :id"),
            {"output": restored, "id": run_id},
        )
    op.drop_constraint("command_results_output_hash_fkey", "command_results", type_="foreignkey")
    for column in (
        "parse_error",
        "parsed",
        "lines_removed",
        "lines_added",
        "changed",
        "output_volatile",
        "output_hash",
    ):
        op.drop_column("command_results", column)
    op.drop_table("outputs")
    for column in ("parse", "mask", "ignore_lines", "track_changes"):
        op.drop_column("commands", column)
