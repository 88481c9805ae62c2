"""A console session remembers the token it was signed in with: it works only while that
token does (revoking the token ends the session too).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("signed_in_with", sa.Integer(), nullable=True))
        batch.create_index("ix_tokens_signed_in_with", ["signed_in_with"])


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.drop_index("ix_tokens_signed_in_with")
        batch.drop_column("signed_in_with")
