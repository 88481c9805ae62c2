"""Never reuse ids on SQLite: a stale queued task must not pick up a newer row's id.

SQLite hands out the highest id + 1, so deleting the newest build (with its Space) made the
next build reuse its id while the old build's Celery task was still queued. AUTOINCREMENT
ids only grow. PostgreSQL sequences already behave so; nothing changes there.

Revision ID: 0003
Revises: 0002_runtime
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002_runtime"
branch_labels = None
depends_on = None

TABLES = ("spaces", "builds", "deployments", "tokens", "users")


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ):
            pass


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(table, recreate="always"):
            pass


_ = sa  # keep the conventional import for future edits
