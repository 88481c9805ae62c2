"""Where a deployment runs: the cluster node of its container (cluster mode; NULL on one node).

Revision ID: 0004_deployment_node
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_deployment_node"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("node", sa.String(100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("node")
