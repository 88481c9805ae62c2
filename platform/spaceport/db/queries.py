"""Queries several components ask the same way: one place for each."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from spaceport.db.models import Build, Deployment
from spaceport.stages import DeploymentStatus


def deployments(session: Session, space_pk: int, status: DeploymentStatus) -> list[Deployment]:
    """The Space's deployments with this status, newest first."""
    return list(
        session.scalars(
            select(Deployment)
            .where(Deployment.space_id == space_pk, Deployment.status == status.value)
            .order_by(Deployment.id.desc())
        )
    )


def active_deployment(session: Session, space_pk: int) -> Deployment | None:
    """The deployment serving the Space (the newest, should a swap leave two for a moment)."""
    return session.scalar(
        select(Deployment)
        .where(Deployment.space_id == space_pk, Deployment.status == DeploymentStatus.ACTIVE)
        .order_by(Deployment.id.desc())
        .limit(1)
    )


def latest_build(session: Session, space_pk: int) -> Build | None:
    """The Space's newest build, whatever its status."""
    return session.scalar(
        select(Build).where(Build.space_id == space_pk).order_by(Build.id.desc()).limit(1)
    )
