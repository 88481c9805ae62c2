"""Indexes for a node of a thousand Spaces (bench/bench_controlplane.py).

- spaces.created_at: `GET /api/spaces` pages by (created_at, id), newest first: with the index
  the database reads one page's rows instead of sorting every Space for each page;
- deployments.status and builds.status: the reconciler's steps (every few seconds) and the admin
  view ask for the ACTIVE deployments and the QUEUED or RUNNING builds, a few rows among every
  deployment and build a node ever had.

Revision ID: 0005
Revises: 0004_deployment_node
"""

from alembic import op

revision = "0005"
down_revision = "0004_deployment_node"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_spaces_created_at", "spaces", "created_at"),
    ("ix_deployments_status", "deployments", "status"),
    ("ix_builds_status", "builds", "status"),
)


def upgrade() -> None:
    for name, table, column in INDEXES:
        op.create_index(name, table, [column])


def downgrade() -> None:
    for name, table, _ in INDEXES:
        op.drop_index(name, table_name=table)
