"""The composition root: where one process of a node gets its parts wired together.

Every process (the API, the worker, the CLI's node commands, the tests) asks here for the
database ready to use (`prepare`), the container engine (`engine`) and the proxy (`proxy`);
nothing below picks an implementation itself. Which implementations: the settings
(`SPACEPORT_PROXY`; the engine is Docker today, a Swarm backend is one more `engine` choice).
"""

from __future__ import annotations

from sqlalchemy import select

from spaceport.auth.bootstrap import ensure_admin
from spaceport.db.migrate import upgrade
from spaceport.db.models import Space
from spaceport.db.session import session_scope
from spaceport.engine import make_backend
from spaceport.engine.base import RuntimeBackend
from spaceport.git.repos import init_repo
from spaceport.proxy import make_proxy
from spaceport.proxy.base import Proxy
from spaceport.settings import Settings


def prepare(settings: Settings) -> str | None:
    """Migrate the database and make sure the admin exists; returns a new admin token."""
    settings.ensure_dirs()
    upgrade()
    with session_scope() as session:
        token = ensure_admin(session, settings)
        # Re-apply the hardened repo config (hooks path, limits) to every repo on start.
        for space in session.scalars(select(Space)):
            init_repo(settings, space.owner, space.name, settings.git_max_push_bytes)
        return token


def engine(settings: Settings) -> RuntimeBackend:
    """The node's container engine."""
    return make_backend(settings)


def proxy(settings: Settings) -> Proxy:
    """The node's proxy (its route table; not the process, see `proxy.proxy_process`)."""
    return make_proxy(settings)
