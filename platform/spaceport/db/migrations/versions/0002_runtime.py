"""runtime: crash backoff on spaces, GPU allocations

Revision ID: 0002_runtime
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_runtime"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("spaces", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("crash_count", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("retry_at", sa.DateTime(), nullable=True))

    op.create_table(
        "gpu_allocations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node", sa.String(length=64), nullable=False),
        sa.Column("device_uuid", sa.String(length=100), nullable=False),
        sa.Column("space_id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["space_id"], ["spaces.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["deployment_id"], ["deployments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("node", "device_uuid", name="uq_gpu_allocation_device"),
    )
    with op.batch_alter_table("gpu_allocations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_gpu_allocations_deployment_id"), ["deployment_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("gpu_allocations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gpu_allocations_deployment_id"))
    op.drop_table("gpu_allocations")
    with op.batch_alter_table("spaces", schema=None) as batch_op:
        batch_op.drop_column("retry_at")
        batch_op.drop_column("crash_count")
