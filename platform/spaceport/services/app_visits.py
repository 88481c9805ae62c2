"""Who and what a request to an app's URL is about, read in sessions of their own (the app
status pages run outside the request's session): the Space an app host or path names, the
visitor its tokens or app cookie name, and the upstream of its serving container."""

from __future__ import annotations

from sqlalchemy import select

from spaceport.auth.principal import Principal, org_roles, principal_of
from spaceport.auth.sessions import session_expired
from spaceport.auth.tokens import is_usable, lookup_token
from spaceport.db import queries
from spaceport.db.models import Space, Token
from spaceport.db.session import session_scope
from spaceport.proxy.app_access import Grant as AppGrant
from spaceport.settings import Settings


def space_for_host_label(settings: Settings, label: str) -> Space | None:
    """Subdomain mode: the Space whose app host starts with `label`, detached from its session."""
    with session_scope() as session:
        for space in session.scalars(select(Space)):
            if settings.app_host(space.owner, space.name).split(".", 1)[0] == label:
                session.expunge(space)
                return space
    return None


def space_by_id(space_id: str) -> Space | None:
    """The Space `owner/name`, detached from its session; None if there is none."""
    owner, _, name = space_id.partition("/")
    with session_scope() as session:
        space = session.scalar(select(Space).where(Space.owner == owner, Space.name == name))
        if space is not None:
            session.expunge(space)
    return space


# Bumped after a commit that changes credentials (a token revoked, a user deactivated,
# reactivated or deleted): the app hosts' short authorization cache (api/routes/app_status.py)
# drops what it decided before, so the change holds on this node's next request. (Other nodes'
# caches forget within their few seconds' lifetime.)
_generation = 0


def credentials_changed() -> None:
    global _generation
    _generation += 1


def credentials_generation() -> int:
    return _generation


def visitor(tokens: list[str], cookie: AppGrant | None) -> Principal | None:
    """The first valid token's owner, else the user of the app cookie while the console
    session it came from still works (not signed out, revoked, expired; the user active);
    None: a stranger."""
    with session_scope() as session:
        for token in tokens:
            found = lookup_token(session, token)
            if found is not None:
                who = principal_of(found)
                session.expunge(found.user)
                return who
        if cookie is None or cookie.token_id is None:
            return None
        source = session.get(Token, cookie.token_id)
        if source is None or source.user.name != cookie.user:
            return None
        if not is_usable(source) or session_expired(source):
            return None
        user = source.user
        who = Principal(
            user=user,
            role="read",
            token_name="app cookie",
            orgs=org_roles(user),
            scope=tuple(source.scope) if source.scope is not None else None,
            token_id=source.id,
        )
        session.expunge(user)
        return who


def upstream(space_pk: int) -> str | None:
    """Where the Space's serving container listens (`host:port`), or None."""
    with session_scope() as session:
        deployment = queries.active_deployment(session, space_pk)
        return deployment.upstream if deployment is not None else None
