"""Quotas, `/api/v1/quotas`: an admin sets a namespace's limits; its user or members read them.

A limit left out of a PUT keeps its value; `null` makes it unlimited. Every change is in the
audit log (`quota.set`). Refusals of what would exceed a limit come from services/quotas.py
wherever usage would grow (a 403 in Hugging Face's error shape).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from spaceport.api.deps import Principal, client_address, require_admin, require_principal
from spaceport.db.session import get_session
from spaceport.errors import Forbidden, NotFound
from spaceport.services import access, audit, quotas
from spaceport.settings import QuotaConfig, get_settings

router = APIRouter(prefix="/api/v1", tags=["native"])


class QuotaLimits(QuotaConfig):
    """The limits to change; each left out keeps its value, `null` is unlimited."""


def _known(session: Session, namespace: str) -> None:
    if not quotas.namespace_exists(session, namespace):
        raise NotFound(f"No user or organization named {namespace!r}")


@router.get("/quotas")
def list_quotas(
    _: Principal = Depends(require_admin), session: Session = Depends(get_session)
) -> list[dict[str, Any]]:
    """Every namespace's limits and usage (administrators)."""
    settings = get_settings()
    return [quotas.report(session, settings, ns) for ns in quotas.namespaces(session)]


@router.get("/quotas/{namespace}")
def get_quota(
    namespace: str,
    who: Principal = Depends(require_principal),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """A namespace's limits and usage, with the Spaces behind each (its user, its
    organization's members, administrators)."""
    if not access.can_see_namespace(namespace, who):
        raise Forbidden(f"Only {namespace} (or its members) and administrators see its quota")
    _known(session, namespace)
    return quotas.report(session, get_settings(), namespace)


@router.put("/quotas/{namespace}")
def set_quota(
    namespace: str,
    body: QuotaLimits,
    request: Request,
    who: Principal = Depends(require_admin),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """Set a namespace's limits (administrators). Lowering one below the usage stops nothing:
    it only refuses what would add to it."""
    _known(session, namespace)
    changes = {k: getattr(body, k) for k in body.model_fields_set}
    quotas.set_limits(session, get_settings(), namespace, changes)
    audit.record(
        session,
        who,
        "quota.set",
        namespace=namespace,
        target=namespace,
        ip=client_address(request),
        **changes,
    )
    session.commit()
    return quotas.report(session, get_settings(), namespace)
